"""io layer of the engine (Qt-free): readers into the AnnData sample type, and whole-slide images.

- :mod:`.her2st` — her2st legacy Spatial Transcriptomics folders (``read_her2st``).
- :mod:`.visium` — 10x Visium Space Ranger folders (``read_visium``).
- :mod:`.h5ad` — validated ``.h5ad`` samples (``read_sample``, ``write_h5ad``).
- :mod:`.wsi` — lazy multiscale slides (``open_slide``); :mod:`.wsi_write` — pyramidal OME-TIFF writer.

Submodules are imported on demand so that ``import napari_mclstexp.io`` stays cheap.
"""

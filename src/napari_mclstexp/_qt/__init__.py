"""napari dock widgets: the only part of the package that imports Qt and napari."""

"""Usability fixes found by walking through the plugin with real her2st data (each test failed first)."""

from __future__ import annotations

from napari_mclstexp.progress import run


def test_flat_slide_takes_the_spots_pixel_size(tmp_path):
    """A JPEG/PNG slide has no pixel size: loaded with spots, it must share their µm scale (else the
    spots sit at 0.69× the slide, off the tissue, as with her2st JPEGs + ``.h5ad``)."""
    from napari_mclstexp._qt.load import load_layers
    from napari_mclstexp.synthetic import make_synthetic_sample

    adata = make_synthetic_sample(tmp_path, seed=4, section="FLAT", image_format="png", mpp=0.5)
    adata.write_h5ad(tmp_path / "FLAT.h5ad")
    slide, spots = run(load_layers(str(tmp_path / "FLAT.png"), str(tmp_path / "FLAT.h5ad")))
    assert slide[2] == "image" and spots[2] == "points"
    assert slide[1]["scale"] == spots[1]["scale"] == (0.5, 0.5)
    assert slide[1]["metadata"]["mclstexp"]["mpp"] == 0.5

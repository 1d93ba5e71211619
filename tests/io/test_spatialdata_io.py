"""SpatialData in and out: spots land on the image through the store's transforms; our output reads back
with spatialdata.read_zarr lined up on the slide."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from napari_mclstexp.io.spatialdata_io import read_spatialdata, write_spatialdata
from napari_mclstexp.synthetic.spatialdata import write_synthetic_spatialdata

DEMO_BUNDLE = Path(__file__).resolve().parents[2] / "sample_data" / "demo_quick.mclst"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return write_synthetic_spatialdata(tmp_path_factory.mktemp("sd") / "syn.zarr")


def test_read_puts_spots_on_image_pixels(store, tmp_path):
    from napari_mclstexp.io.wsi import open_slide

    path, xy = store
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = read_spatialdata(path, image_out=tmp_path / "syn.ome.tif")
    np.testing.assert_allclose(adata.obsm["spatial"], xy, atol=1e-9)  # µm shapes → px of the image
    lib = adata.obs["section"].iloc[0]
    assert lib == "syn"
    assert adata.uns["spatial"][lib]["scalefactors"]["spot_diameter_fullres"] == pytest.approx(110.0)  # 55 µm
    assert adata.obs["sd_cell"].iloc[0] == "100" and adata.X.shape == (len(xy), 8)
    with open_slide(tmp_path / "syn.ome.tif") as slide:
        assert slide.shape == (400, 480)


def _round_trip(pred, path, **kw):
    import spatialdata as sd
    from spatialdata.transformations import get_transformation_between_coordinate_systems

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_spatialdata(pred, path, **kw)
        back = sd.read_zarr(path)
    table = back.tables["table"]
    region = table.uns["spatialdata_attrs"]["region"]
    shapes = back.shapes[region]
    if (shapes.geometry.geom_type == "Point").all():
        centres = np.stack([shapes.geometry.x, shapes.geometry.y], 1)
    else:
        c = shapes.geometry.centroid
        centres = np.stack([c.x, c.y], 1)
    centres = centres[table.obs["instance_id"].to_numpy()]
    return back, table, shapes, centres, get_transformation_between_coordinate_systems


def test_write_spots_as_circles_referencing_the_slide(store, tmp_path):
    path, xy = store
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = read_spatialdata(path, image_out=tmp_path / "syn.ome.tif")
    back, table, shapes, centres, _ = _round_trip(adata, tmp_path / "out.zarr")
    np.testing.assert_allclose(centres, xy)
    assert np.allclose(shapes["radius"], 55.0)
    assert table.uns["mclstexp"]["source_image_path"].endswith("syn.ome.tif")
    np.testing.assert_array_equal(table.X, adata.X)
    with pytest.raises(Exception, match="already exists"):
        write_spatialdata(adata, tmp_path / "out.zarr")


def test_write_bins_as_squares_with_embedded_slide(tmp_path):
    from napari_mclstexp.io.visium_hd import read_visium_hd
    from napari_mclstexp.synthetic.visium_hd import HDGeometry, write_visium_hd

    write_visium_hd(
        tmp_path / "HDS", n_rows=24, n_cols=32, bins=(8,), geometry=HDGeometry(0.5, (40.0, 30.0)), image=True, seed=7
    )
    hd = read_visium_hd(tmp_path / "HDS", 8)
    back, table, shapes, centres, between = _round_trip(hd, tmp_path / "hd.zarr", image="embed")
    np.testing.assert_allclose(centres, hd.obsm["spatial"], atol=1e-6)
    np.testing.assert_allclose(shapes.geometry.area, 16.0 * 16.0)  # 8 µm at 0.5 µm/px
    # the slide embedded in the same frame: shapes → image is the identity
    m = between(back, shapes, back.images["slide"]).to_affine_matrix(input_axes=("x", "y"), output_axes=("x", "y"))
    np.testing.assert_allclose(m, np.eye(3))
    # and a bin's centre pixel shows the slide there (same frame, same pixels)
    from napari_mclstexp.io.wsi import open_slide

    i = 5
    x, y = np.floor(hd.obsm["spatial"][i]).astype(int)
    with open_slide(tmp_path / "HDS" / "fullres.tif") as slide:
        expected = slide.read_region(x, y, 1, 1)[0, 0]
    level0 = (
        back.images["slide"]["scale0"].ds["image"]
        if "scale0" in getattr(back.images["slide"], "children", {})
        else back.images["slide"]
    )
    np.testing.assert_array_equal(np.asarray(level0[:, y, x]), expected)


def test_cli_import_and_export_spatialdata(store, tmp_path):
    import spatialdata as sd

    from napari_mclstexp.cli import main
    from napari_mclstexp.io.h5ad import read_sample

    path, xy = store
    out = tmp_path / "syn.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["import", "spatialdata", str(path), "--out", str(out)]) == 0
        sample = read_sample(out, require_image=True)
        np.testing.assert_allclose(sample.obsm["spatial"], xy)
        assert main(["export", str(out), "--spatialdata", str(tmp_path / "e.zarr"), "--embed-slide"]) == 0
        back = sd.read_zarr(tmp_path / "e.zarr")
    assert set(back.images) == {"slide"} and back.tables["table"].n_obs == len(xy)


def test_cli_prediction_exported_to_spatialdata_imports_back(synthetic_sample, tmp_path):
    """``mclstexp export PRED.h5ad --spatialdata out.zarr`` then ``mclstexp import spatialdata out.zarr``:
    the same spots at the same slide pixels, the same genes and predicted values."""
    import spatialdata as sd

    from napari_mclstexp.cli import main
    from napari_mclstexp.io.h5ad import read_sample, write_h5ad

    sample, pred_path = tmp_path / "SYN.h5ad", tmp_path / "PRED.h5ad"
    write_h5ad(synthetic_sample, sample)
    store, back_path = tmp_path / "out.zarr", tmp_path / "back.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["-q", "predict", str(DEMO_BUNDLE), str(sample), "--out", str(pred_path), "--device", "cpu"]) == 0
        assert main(["export", str(pred_path), "--spatialdata", str(store)]) == 0
        assert sd.read_zarr(store).tables["table"].n_obs == synthetic_sample.n_obs  # a real SpatialData store
        assert main(["import", "spatialdata", str(store), "--out", str(back_path)]) == 0
    pred, back = read_sample(pred_path), read_sample(back_path)
    assert pred.n_vars > 0 and list(back.var_names) == list(pred.var_names)
    assert list(back.obs_names) == list(pred.obs_names)
    np.testing.assert_allclose(back.obsm["spatial"], pred.obsm["spatial"], atol=1e-6)
    np.testing.assert_allclose(back.obsm["spatial"], synthetic_sample.obsm["spatial"], atol=1e-6)
    np.testing.assert_allclose(np.asarray(back.X, np.float64), np.asarray(pred.X, np.float64), rtol=1e-6)
    assert not np.allclose(np.asarray(pred.X)[:, 0], np.asarray(pred.X)[0, 0])  # real predictions, not a constant

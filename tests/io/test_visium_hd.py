"""Visium HD reader against a synthetic Space Ranger folder whose bin centres are computed by hand.

Geometry of the fixture: 0.5 µm/px, 2 µm bin (row 0, col 0) centred at x = 40, y = 30 px, no rotation,
so one 2 µm step is 4 px; an f × f block of 2 µm bins is centred (f - 1) / 2 steps from its first one.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from napari_mclstexp.errors import InputError, MissingInputError
from napari_mclstexp.io.visium_hd import is_visium_hd_folder, read_visium_hd
from napari_mclstexp.synthetic.visium_hd import HDGeometry, write_visium_hd


@pytest.fixture
def hd_dir(tmp_path):
    write_visium_hd(tmp_path / "HD1", n_rows=48, n_cols=64, geometry=HDGeometry(0.5, (40.0, 30.0), 0.0), seed=1)
    return tmp_path / "HD1"


def _centre(adata, barcode):
    return adata.obsm["spatial"][adata.obs_names.get_loc(barcode)]


def test_bin_centres_land_where_space_ranger_says(hd_dir):
    a8 = read_visium_hd(hd_dir / "outs", 8)
    # 8 µm bin (row 5, col 7) = 2 µm rows 20..23, cols 28..31: centre 21.5, 29.5 steps → y 116, x 158
    np.testing.assert_allclose(_centre(a8, "s_008um_00005_00007-1"), [158.0, 116.0])
    table = pd.read_parquet(hd_dir / "outs/binned_outputs/square_008um/spatial/tissue_positions.parquet")
    row = table.set_index("barcode").loc["s_008um_00005_00007-1"]
    assert (row.pxl_col_in_fullres, row.pxl_row_in_fullres) == (158.0, 116.0)
    a2 = read_visium_hd(hd_dir, 2)
    np.testing.assert_allclose(_centre(a2, "s_002um_00020_00030-1"), [40 + 4 * 30, 30 + 4 * 20])
    a16 = read_visium_hd(hd_dir, 16)
    # 16 µm (row 2, col 3): 2 µm rows 16..23, cols 24..31, centre 19.5, 27.5 → y 108, x 150
    np.testing.assert_allclose(_centre(a16, "s_016um_00002_00003-1"), [150.0, 108.0])
    # grid map: (array_row, array_col, 1) → (y, x); 8 µm = 16 px per bin
    np.testing.assert_allclose(a8.uns["bin_grid"]["affine"], [[16, 0, 36], [0, 16, 46]], atol=1e-9)
    lib = a8.obs["section"].iloc[0]
    assert lib == "HD1"
    meta, sf = a8.uns["spatial"][lib]["metadata"], a8.uns["spatial"][lib]["scalefactors"]
    assert meta["microns_per_pixel"] == 0.5 and sf["spot_diameter_fullres"] == 16.0 and sf["bin_size_um"] == 8.0
    assert a8.obs["array_row"].dtype == np.int64


def test_only_in_tissue_bins_and_counts_are_sums(hd_dir):
    a2, a8 = read_visium_hd(hd_dir, 2), read_visium_hd(hd_dir, 8)
    assert a8.n_obs < 12 * 16 and a2.n_obs < 48 * 64  # the ellipse leaves corners out
    assert np.isclose(a2.X.sum(), a8.X.sum())
    # one 8 µm bin = the sum of its sixteen 2 µm bins
    members = (a2.obs["array_row"] // 4 == 5) & (a2.obs["array_col"] // 4 == 7)
    i = a8.obs_names.get_loc("s_008um_00005_00007-1")
    np.testing.assert_array_equal(np.asarray(a2.X[members.to_numpy()].sum(0)).ravel(), a8.X[i].toarray().ravel())


def test_sizes_not_written_are_summed_from_2um(hd_dir):
    native = read_visium_hd(hd_dir, 8)
    shutil.rmtree(hd_dir / "outs/binned_outputs/square_008um")
    summed = read_visium_hd(hd_dir, 8)
    assert list(summed.obs_names) == list(native.obs_names)
    assert abs(summed.X - native.X).max() == 0
    np.testing.assert_allclose(summed.obsm["spatial"], native.obsm["spatial"], atol=1e-9)
    np.testing.assert_allclose(summed.uns["bin_grid"]["affine"], native.uns["bin_grid"]["affine"], atol=1e-9)
    a4 = read_visium_hd(hd_dir, 4)
    # 4 µm (row 10, col 14) = 2 µm rows 20-21, cols 28-29: centre 20.5, 28.5 steps → y 112, x 154
    np.testing.assert_allclose(_centre(a4, "s_004um_00010_00014-1"), [154.0, 112.0])
    assert a4.uns["spatial"]["HD1"]["scalefactors"]["spot_diameter_fullres"] == 8.0


def test_rotated_grid_and_recorded_image(tmp_path):
    geo = HDGeometry(0.5, (60.0, 50.0), 10.0)
    write_visium_hd(tmp_path / "R", n_rows=32, n_cols=32, bins=(2, 8), geometry=geo, image=True, seed=2)
    a8 = read_visium_hd(tmp_path / "R", 8)
    rows, cols = a8.obs["array_row"].to_numpy(), a8.obs["array_col"].to_numpy()
    np.testing.assert_allclose(a8.obsm["spatial"], geo.bin_centres(8, rows, cols), atol=1e-9)
    # the image Space Ranger was given is found in _invocation
    assert a8.uns["spatial"]["R"]["metadata"]["source_image_path"].endswith("fullres.tif")


def test_bad_input_is_one_clear_error(hd_dir, tmp_path):
    with pytest.raises(MissingInputError, match="Visium HD"):
        read_visium_hd(tmp_path, 8)
    with pytest.raises(InputError, match="no 7 µm bins"):
        read_visium_hd(hd_dir, 7)
    (hd_dir / "outs/binned_outputs/square_016um/spatial/tissue_positions.parquet").unlink()
    with pytest.raises(MissingInputError, match="tissue_positions"):
        read_visium_hd(hd_dir, 16)
    assert is_visium_hd_folder(hd_dir) and not is_visium_hd_folder(tmp_path)


def test_cli_import_visium_hd(hd_dir, tmp_path, capsys):
    from napari_mclstexp.cli import main
    from napari_mclstexp.io.h5ad import read_sample

    out = tmp_path / "hd16.h5ad"
    assert main(["import", "visium-hd", str(hd_dir), "--bin", "16", "--out", str(out)]) == 0
    assert "bins of 16 µm" in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = read_sample(out)
    np.testing.assert_allclose(_centre(back, "s_016um_00002_00003-1"), [150.0, 108.0])
    np.testing.assert_allclose(back.uns["bin_grid"]["affine"], [[32, 0, 44], [0, 32, 54]], atol=1e-9)
    assert main(["import", "visium-hd", str(hd_dir), "--bin", "5", "--out", str(tmp_path / "x.h5ad")]) == 2


def test_napari_reader_picks_visium_hd(hd_dir):
    from napari_mclstexp._reader import get_reader, read_visium_hd_layers

    assert get_reader(str(hd_dir)) is read_visium_hd_layers
    assert get_reader(str(hd_dir / "outs")) is read_visium_hd_layers

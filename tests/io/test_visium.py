"""Visium Space Ranger reader: real visium_tiny (skipped when absent) and synthetic folders."""

from __future__ import annotations

import json
import warnings

import h5py
import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_mclstexp.errors import CountsError, ImageReadError, MissingInputError, SpotMatchError
from napari_mclstexp.io.visium import read_10x_h5, read_visium
from napari_mclstexp.sample import (
    image_path,
    library_id,
    microns_per_pixel,
    spot_diameter_px,
    validate_sample,
)


def test_real_visium_tiny(visium_tiny_dir):
    adata = read_visium(visium_tiny_dir / "1.0.0")
    assert adata.shape == (100, 100)
    validate_sample(adata)
    pos = pd.read_csv(visium_tiny_dir / "1.0.0" / "spatial" / "tissue_positions_list.csv", header=None, index_col=0)
    row = pos.loc[adata.obs_names]
    np.testing.assert_array_equal(adata.obsm["spatial"][:, 0], row[5])  # x = pxl_col_in_fullres
    np.testing.assert_array_equal(adata.obsm["spatial"][:, 1], row[4])  # y = pxl_row_in_fullres
    np.testing.assert_array_equal(adata.obs["array_row"], row[2])
    # full-resolution coordinates: far beyond the 2000 px hires image
    assert adata.obsm["spatial"].max() > 5000
    sf = json.loads((visium_tiny_dir / "1.0.0" / "spatial" / "scalefactors_json.json").read_text())
    assert spot_diameter_px(adata) == pytest.approx(sf["spot_diameter_fullres"])
    assert microns_per_pixel(adata) == pytest.approx(55 / sf["spot_diameter_fullres"])
    images = adata.uns["spatial"][library_id(adata)]["images"]
    assert images["hires"].shape == (2000, 2000, 3) and images["lowres"].dtype == np.uint8
    assert "gene_ids" in adata.var and image_path(adata) is None


def test_synthetic_list_format(tmp_path, make_visium_dir):
    root = make_visium_dir(tmp_path / "v")
    adata = read_visium(root)
    # 12 in-tissue barcodes; TTTT0000 is off tissue and TTTT0001 is not in the matrix
    assert adata.shape == (12, 5)
    assert library_id(adata) == "tinylib" and set(adata.obs["section"]) == {"tinylib"}
    assert list(adata.var["gene_ids"][:2]) == ["ENSG00000", "ENSG00001"]
    with h5py.File(root / "filtered_feature_bc_matrix.h5") as f:
        g = f["matrix"]
        from scipy import sparse

        expected = sparse.csc_matrix((g["data"][:], g["indices"][:], g["indptr"][:]), shape=tuple(g["shape"][:])).T
    np.testing.assert_array_equal(adata.X.toarray(), expected.toarray())
    np.testing.assert_array_equal(adata.obsm["spatial"][1], [60 + 40 * 2, 100])
    assert adata.uns["spatial"]["tinylib"]["images"]["hires"].shape == (300, 300, 3)  # RGBA → RGB


def test_synthetic_header_format_and_outs_folder(tmp_path, make_visium_dir):
    make_visium_dir(tmp_path / "run" / "outs", positions="header")
    adata = read_visium(tmp_path / "run", library_id="mine")
    assert adata.shape == (12, 5) and library_id(adata) == "mine"
    assert list(adata.obs["array_col"][:4]) == [0, 2, 4, 6]


def test_full_resolution_image(tmp_path, make_visium_dir):
    root = make_visium_dir(tmp_path / "v")
    image = tmp_path / "full.tif"
    tifffile.imwrite(
        image,
        np.zeros((400, 400, 3), np.uint8),
        photometric="rgb",
        resolution=(1e4 / 0.5, 1e4 / 0.5),
        resolutionunit="CENTIMETER",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every spot inside: no warning
        adata = read_visium(root, image=image)
    assert adata.n_obs == 12
    assert image_path(adata) == image.resolve()
    assert microns_per_pixel(adata) == pytest.approx(0.5)  # stated by the image beats 55 µm / diameter
    # columns up to x = 60 + 40*7 = 340 > 300 px: those spots are dropped
    with pytest.warns(UserWarning, match="spots lie outside"):
        small = tmp_path / "small.tif"
        tifffile.imwrite(small, np.zeros((400, 250, 3), np.uint8), photometric="rgb")
        cut = read_visium(root, image=small)
    assert (cut.obsm["spatial"][:, 0] < 250).all() and cut.n_obs < 12
    (tmp_path / "fake.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(ImageReadError, match="fake.tif"):
        read_visium(root, image=tmp_path / "fake.tif")


def test_duplicate_gene_symbols(tmp_path, make_visium_dir):
    root = make_visium_dir(tmp_path / "v", dup_gene=True)
    with pytest.warns(UserWarning, match="1 duplicate gene names"):
        adata = read_visium(root)
    assert list(adata.var_names[:2]) == ["G0", "G0-1"]
    assert list(adata.var["gene_ids"][:2]) == ["ENSG00000", "ENSG00001"]


def test_barcodes_without_spots(tmp_path, make_visium_dir):
    root = make_visium_dir(tmp_path / "v", extra_barcodes=3)
    with pytest.warns(UserWarning, match="12 of 15 matrix barcodes"):
        adata = read_visium(root)
    assert adata.n_obs == 12
    positions = root / "spatial" / "tissue_positions_list.csv"
    table = pd.read_csv(positions, header=None)
    table[0] = "XXXX-" + table.index.astype(str)
    table.to_csv(positions, header=False, index=False)
    with pytest.raises(SpotMatchError, match="none of the 15 barcodes"):
        read_visium(root)


def test_missing_pieces(tmp_path, make_visium_dir):
    with pytest.raises(MissingInputError, match="not found"):
        read_visium(tmp_path / "nothing")
    root = make_visium_dir(tmp_path / "v")
    (root / "spatial" / "tissue_positions_list.csv").unlink()
    with pytest.raises(MissingInputError, match="tissue_positions"):
        read_visium(root)
    (root / "filtered_feature_bc_matrix.h5").unlink()
    with pytest.raises(MissingInputError, match="filtered_feature_bc_matrix.h5"):
        read_visium(root)


def test_bad_matrix_files(tmp_path, make_visium_dir):
    bad = tmp_path / "m.h5"
    bad.write_text("not hdf5")
    with pytest.raises(CountsError, match="m.h5"):
        read_10x_h5(bad)
    root = make_visium_dir(tmp_path / "v")
    with h5py.File(root / "filtered_feature_bc_matrix.h5", "r+") as f:
        data = f["matrix"]["data"][:]
        data[0] = -1
        f["matrix"]["data"][...] = data
    with pytest.raises(CountsError, match="negative"):
        read_visium(root)

"""Builders of tiny her2st-layout and Visium-layout folders, and the once-per-session real her2st read."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image

STEP_PX = 50.0  # pixels per array step in the tiny her2st folders (200 µm → mpp 4.0)


def write_her2st_dir(
    root: Path,
    sections: tuple[str, ...] = ("A1", "A2", "B1"),
    image_sections: tuple[str, ...] = ("A2",),
    *,
    n_genes: int = 6,
    seed: int = 0,
) -> Path:
    """A her2st-like folder: 4 × 3 grid of spots per section, ``n_genes`` genes, optional images/labels."""
    rng = np.random.default_rng(seed)
    for sub in ("ST-cnts", "ST-spotfiles", "ST-pat/lbl", "ST-cluster"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    genes = [f"GENE{i}" for i in range(n_genes)]
    for section in sections:
        xs, ys = np.meshgrid(np.arange(2, 6), np.arange(3, 6))
        xs, ys = xs.ravel(), ys.ravel()
        counts = rng.poisson(5, size=(len(xs), n_genes))
        table = pd.DataFrame(counts, index=[f"{x}x{y}" for x, y in zip(xs, ys, strict=True)], columns=genes)
        with gzip.open(root / "ST-cnts" / f"{section}.tsv.gz", "wt") as fh:
            table.to_csv(fh, sep="\t")
        jitter = rng.normal(0, 0.02, size=(len(xs), 2))
        spots = pd.DataFrame(
            {
                "x": xs,
                "y": ys,
                "new_x": xs + jitter[:, 0],
                "new_y": ys + jitter[:, 1],
                "pixel_x": 10 + STEP_PX * (xs + jitter[:, 0]),
                "pixel_y": 20 + STEP_PX * (ys + jitter[:, 1]),
                "selected": 1,
            }
        )
        spots.to_csv(root / "ST-spotfiles" / f"{section}_selection.tsv", sep="\t", index=False)
        labels = pd.DataFrame(
            {"x": xs + 0.01, "y": ys - 0.01, "pixel_x": 0, "pixel_y": 0, "label": np.where(xs < 4, "tumour", "stroma")}
        )
        labels.index = [f"{i}x{i}" for i in range(len(xs))]
        labels.to_csv(root / "ST-pat" / "lbl" / f"{section}_labeled_coordinates.tsv", sep="\t", index_label="Row.names")
        clusters = pd.DataFrame({"label": ys % 2, "x": xs, "y": ys})
        with gzip.open(root / "ST-cluster" / f"{section}-cluster-annotation.tsv.gz", "wt") as fh:
            clusters.to_csv(fh, sep="\t")
        if section in image_sections:
            folder = root / "ST-imgs" / section[0] / section
            folder.mkdir(parents=True, exist_ok=True)
            img = rng.integers(0, 255, size=(340, 360, 3), dtype=np.uint8)
            Image.fromarray(img).save(folder / f"HE_{section}.jpg")
    return root


def write_visium_dir(
    root: Path,
    *,
    positions: str = "list",
    n_spots: int = 12,
    n_genes: int = 5,
    dup_gene: bool = False,
    extra_barcodes: int = 0,
    seed: int = 0,
) -> Path:
    """A Space Ranger-like folder with a 10x v3 HDF5 matrix, positions, scale factors and a hires PNG."""
    rng = np.random.default_rng(seed)
    (root / "spatial").mkdir(parents=True, exist_ok=True)
    barcodes = [f"AAAC{i:04d}-1" for i in range(n_spots + extra_barcodes)]
    names = [f"G{i}" for i in range(n_genes)]
    if dup_gene:
        names[1] = names[0]
    dense = rng.poisson(3, size=(len(barcodes), n_genes)).astype(np.float64)
    from scipy import sparse

    csr = sparse.csr_matrix(dense)  # barcodes × genes CSR == genes × barcodes CSC
    with h5py.File(root / "filtered_feature_bc_matrix.h5", "w") as f:
        f.attrs["library_ids"] = np.array([b"tinylib"])
        g = f.create_group("matrix")
        g["barcodes"] = np.array(barcodes, dtype="S")
        g["data"], g["indices"], g["indptr"] = csr.data, csr.indices.astype(np.int32), csr.indptr.astype(np.int32)
        g["shape"] = np.array([n_genes, len(barcodes)], dtype=np.int32)
        ft = g.create_group("features")
        ft["name"] = np.array(names, dtype="S")
        ft["id"] = np.array([f"ENSG{i:05d}" for i in range(n_genes)], dtype="S")
        ft["feature_type"] = np.array(["Gene Expression"] * n_genes, dtype="S")
    rows = np.arange(n_spots) // 4
    cols = 2 * (np.arange(n_spots) % 4) + rows % 2
    table = pd.DataFrame(
        {
            "barcode": barcodes[:n_spots] + ["TTTT0000-1", "TTTT0001-1"],
            "in_tissue": [1] * n_spots + [0, 1],
            "array_row": list(rows) + [9, 9],
            "array_col": list(cols) + [0, 2],
            "pxl_row_in_fullres": list(100 + 80 * rows) + [900, 900],
            "pxl_col_in_fullres": list(60 + 40 * cols) + [60, 140],
        }
    )
    if positions == "list":
        table.to_csv(root / "spatial" / "tissue_positions_list.csv", header=False, index=False)
    else:
        table.to_csv(root / "spatial" / "tissue_positions.csv", index=False)
    (root / "spatial" / "scalefactors_json.json").write_text(
        json.dumps({"spot_diameter_fullres": 27.5, "tissue_hires_scalef": 0.5, "tissue_lowres_scalef": 0.1})
    )
    Image.fromarray(rng.integers(0, 255, (300, 300, 4), dtype=np.uint8)).save(
        root / "spatial" / "tissue_hires_image.png"
    )
    return root


@pytest.fixture
def her2st_tiny(tmp_path) -> Path:
    return write_her2st_dir(tmp_path / "her2st")


@pytest.fixture
def visium_tiny_synth(tmp_path) -> Path:
    return write_visium_dir(tmp_path / "visium")


@pytest.fixture(scope="session")
def her2st_all(her2st_dir):
    """Every real her2st section, read once per test session (about 10–30 s)."""
    from napari_mclstexp.io.her2st import read_her2st

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return read_her2st(her2st_dir)


@pytest.fixture
def make_visium_dir():
    """The :func:`write_visium_dir` builder (conftest modules are not importable under importlib mode)."""
    return write_visium_dir

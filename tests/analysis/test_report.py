"""JSON without NaN, h5ad writing, provenance."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd

from napari_mclstexp.analysis.report import data_hash, json_safe, versions, write_json
from napari_mclstexp.io.h5ad import write_h5ad


def test_json_safe_and_write_json(tmp_path):
    data = {"a": float("nan"), "b": np.float32(0.5), "c": (1, np.int64(2)), "d": {"e": float("inf")}}
    assert json_safe(data) == {"a": None, "b": 0.5, "c": [1, 2], "d": {"e": None}}
    write_json(data, tmp_path / "x.json")
    assert json.loads((tmp_path / "x.json").read_text())["b"] == 0.5
    assert not list(tmp_path.glob(".*part"))


def test_write_h5ad_with_string_columns(tmp_path):
    a = ad.AnnData(X=np.ones((3, 2), dtype=np.float32), obs=pd.DataFrame({"s": ["x", "y", "z"]}, index=list("abc")))
    a.obsm["spatial"] = np.zeros((3, 2))
    write_h5ad(a, tmp_path / "a.h5ad")
    assert list(ad.read_h5ad(tmp_path / "a.h5ad").obs["s"]) == ["x", "y", "z"]


def test_data_hash_and_versions(synthetic_samples):
    h = data_hash(synthetic_samples, ["A", "B", "C"])
    assert h == data_hash(synthetic_samples, ["A", "B", "C"]) != data_hash(synthetic_samples, ["A", "B", "D"])
    assert {"napari_mclstexp", "torch", "numpy", "anndata"} <= set(versions())

"""``mclstexp regions``: a QuPath GeoJSON + a prediction → a per-class CSV."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from napari_mclstexp.cli import main


@pytest.fixture
def pred_file(tmp_path):
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:20, 0:20]
    xy = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(float) * 50.0
    X = rng.normal(1.0, 0.1, size=(len(xy), 5)).astype(np.float32)
    tumour = (xy[:, 0] < 300) & (xy[:, 1] < 300)
    X[tumour, 2] += 1.0
    a = ad.AnnData(X, var=pd.DataFrame(index=["A", "B", "ERBB2", "D", "E"]))
    a.obs_names = [f"s{i}" for i in range(len(xy))]
    a.obsm["spatial"] = xy
    a.uns["mclstexp"] = {"normalization": "log10_1e4"}
    path = tmp_path / "pred.h5ad"
    a.write_h5ad(path)
    return path


def _geojson(tmp_path):
    square = [[-10, -10], [290, -10], [290, 290], [-10, 290], [-10, -10]]
    other = [[600, 600], [900, 600], [900, 900], [600, 900], [600, 600]]
    features = [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": props}
        for ring, props in [
            (square, {"objectType": "annotation", "classification": {"name": "Tumor", "color": [200, 0, 0]}}),
            (other, {"objectType": "annotation", "classification": {"name": "Stroma", "color": -16711936}}),
            (other, {"objectType": "detection"}),
        ]
    ]
    path = tmp_path / "ann.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_regions_writes_per_class_table(pred_file, tmp_path, capsys):
    out = tmp_path / "regions.csv"
    argv = ["-q", "regions", str(pred_file), "--annotations", str(_geojson(tmp_path)), "--out", str(out)]
    assert main([*argv, "--placements", "100"]) == 0
    table = pd.read_csv(out)
    assert table["class"].unique().tolist() == ["Tumor", "Stroma"] and len(table) == 10
    tumour = table[table["class"] == "Tumor"]
    assert tumour["gene"].iloc[0] == "ERBB2" and tumour["n_inside"].iloc[0] == 36
    assert tumour["log2_fold_change"].iloc[0] > 2 and tumour["p_adjusted"].iloc[0] < 0.01
    text = capsys.readouterr().out
    assert "1 detections/cells skipped" in text and "Tumor: 36 spots inside" in text and "up: ERBB2" in text


def test_regions_broken_annotations_is_one_line(pred_file, tmp_path, capsys):
    bad = tmp_path / "bad.geojson"
    bad.write_text("{oops")
    argv = ["-q", "regions", str(pred_file), "--annotations", str(bad), "--out", str(tmp_path / "r.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}: not valid JSON" in err
    assert not (tmp_path / "r.csv").exists()


def test_regions_help(capsys):
    with pytest.raises(SystemExit):
        main(["regions", "--help"])
    text = capsys.readouterr().out
    assert "examples:\n  mclstexp regions" in text and max(len(line) for line in text.splitlines()) <= 110


def test_regions_rank_by(pred_file, tmp_path, capsys):
    argv = ["-q", "regions", str(pred_file), "--annotations", str(_geojson(tmp_path)), "--placements", "50"]
    for column in ("log2_fold_change", "difference", "z"):
        out = tmp_path / f"{column}.csv"
        assert main([*argv, "--out", str(out), "--rank-by", column]) == 0
        for _, sub in pd.read_csv(out).groupby("class", sort=False):
            assert sub[column].is_monotonic_decreasing, column
    assert main([*argv, "--out", str(tmp_path / "bad.csv"), "--rank-by", "p_value"]) == 2
    assert "cannot rank genes by 'p_value'" in capsys.readouterr().err

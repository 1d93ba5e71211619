"""``mclstexp export``: QuPath GeoJSON and CSV from a prediction, one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from napari_mclstexp.cli import main


@pytest.fixture
def pred_file(synthetic_sample, tmp_path):
    from napari_mclstexp.data.genes import expression_matrix
    from napari_mclstexp.io.h5ad import write_h5ad

    pred = synthetic_sample
    pred.X = expression_matrix(pred, list(pred.var_names), "log10_1e4").astype(np.float32)
    pred.obs["uncertainty"] = np.linspace(0.0, 1.0, pred.n_obs)
    pred.obs["domain"] = pd.Categorical(np.arange(pred.n_obs) % 3)
    path = tmp_path / "pred.h5ad"
    write_h5ad(pred, path)
    return path, pred


def test_export_geojson_and_csv(pred_file, tmp_path, capsys):
    path, pred = pred_file
    genes = list(map(str, pred.var_names[:2]))
    gj, csv = tmp_path / "p.geojson", tmp_path / "p.csv"
    assert main(["export", str(path), "--geojson", str(gj), "--csv", str(csv), "--genes", ",".join(genes)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"wrote {gj} (QuPath detections: {pred.n_obs} spots, 2 genes, domains from obs['domain'])",
        f"wrote {csv} ({pred.n_obs} spots, 2 genes, domains from obs['domain'])",
    ]
    features = json.loads(gj.read_text())["features"]
    assert len(features) == pred.n_obs
    props = features[5]["properties"]
    assert props["objectType"] == "detection" and props["classification"]["name"] == "Domain 2"
    assert props["measurements"][genes[1]] == pytest.approx(float(pred.X[5, 1]), rel=1e-5)
    table = pd.read_csv(csv)
    assert list(table.columns) == ["spot", "x", "y", "uncertainty", "domain", *genes]
    assert np.allclose(table[["x", "y"]].to_numpy(), pred.obsm["spatial"], atol=1e-3)


def test_export_refusals_are_one_line(pred_file, tmp_path, capsys):
    path, _ = pred_file
    before = path.read_bytes()
    cases = [
        ([], "nothing to export"),
        (["--csv", str(tmp_path / "a.csv"), "--genes", "NOPE"], f"{path}: --genes NOPE: not among"),
        (["--csv", str(tmp_path / "a.csv"), "--domains-key", "cluster"], f"{path}: no obs column 'cluster'"),
        (["--csv", str(path)], "would overwrite an input"),
    ]
    for extra, needle in cases:
        assert main(["export", str(path), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err
    assert main(["export", str(tmp_path / "absent.h5ad"), "--csv", str(tmp_path / "a.csv")]) == 2
    assert "absent.h5ad: file not found" in capsys.readouterr().err
    assert path.read_bytes() == before and not (tmp_path / "a.csv").exists()

"""``mclstexp evaluate``: scores, JSON, per-gene CSV, figure, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from napari_mclstexp.cli import main


@pytest.fixture
def files(synthetic_sample, tmp_path, rng):
    from napari_mclstexp.data.genes import expression_matrix

    truth = synthetic_sample
    pred = truth.copy()
    norm = expression_matrix(truth, list(truth.var_names), "log10_1e4")
    pred.X = (norm + rng.normal(0, 0.2, size=norm.shape)).astype(np.float32)
    pred.uns["mclstexp"] = {"normalization": "log10_1e4"}
    pred.obsm["embedding"] = rng.normal(size=(pred.n_obs, 8)).astype(np.float32)
    truth.write_h5ad(tmp_path / "truth.h5ad")
    pred.write_h5ad(tmp_path / "pred.h5ad")
    return tmp_path / "pred.h5ad", tmp_path / "truth.h5ad", norm


def test_evaluate_writes_json_and_gene_table(files, tmp_path, capsys):
    pred, truth, norm = files
    rc = main(
        [
            "evaluate",
            str(pred),
            "--truth",
            str(truth),
            "--json",
            str(tmp_path / "m.json"),
            "--genes-csv",
            str(tmp_path / "g.csv"),
        ]
    )
    assert rc == 0
    data = json.loads((tmp_path / "m.json").read_text())
    for key in ("acg", "heg50", "hvg50", "mse", "mae", "n_spots", "n_genes"):
        assert key in data
    assert data["n_spots"] == norm.shape[0] and data["n_genes"] == 24
    assert data["mse"] == pytest.approx(0.04, rel=0.2)  # noise sd 0.2
    assert 0.3 < data["acg"] < 1.0
    table = pd.read_csv(tmp_path / "g.csv", index_col="gene")
    assert len(table) == 24 and table["r"].is_monotonic_decreasing and table["rank"].iloc[0] == 1
    assert "ACG" in capsys.readouterr().out


def test_evaluate_figure(files, tmp_path):
    pred, truth, _ = files
    rc = main(
        ["evaluate", str(pred), "--truth", str(truth), "--figure", str(tmp_path / "f.png"), "--figure-genes", "MARK0_0"]
    )
    assert rc == 0 and (tmp_path / "f.png").stat().st_size > 1000


def test_evaluate_errors_are_one_line(files, tmp_path, synthetic_samples, capsys):
    pred, _, _ = files
    other = synthetic_samples[2].copy()
    other.obsm["spatial"] = other.obsm["spatial"] + 5000.0
    other.write_h5ad(tmp_path / "other.h5ad")
    assert main(["evaluate", str(pred), "--truth", str(tmp_path / "other.h5ad")]) == 2
    assert "share no spot" in capsys.readouterr().err
    assert main(["evaluate", str(pred), "--truth", str(tmp_path / "missing.h5ad")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["evaluate", str(pred), "--truth", str(pred), "--json", str(pred)]) == 2
    assert "overwrite" in capsys.readouterr().err


def test_through_cli_main(files, tmp_path, capsys):
    from napari_mclstexp.cli import main

    pred, truth, _ = files
    assert main(["evaluate", str(pred), "--truth", str(truth), "--json", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["n_genes"] == 24
    assert main(["evaluate", str(pred), "--truth", str(tmp_path / "nope.h5ad")]) == 2
    assert "mclstexp evaluate: error:" in capsys.readouterr().err

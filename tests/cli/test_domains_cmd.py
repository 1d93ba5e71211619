"""``mclstexp domains``: labels saved into the AnnData, ARI/NMI against a label column."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pytest

from napari_mclstexp.cli import main


@pytest.fixture
def pred_file(tmp_path, rng):
    k, n_per = 3, 40
    truth = np.repeat(np.arange(k), n_per)
    X = rng.normal(0, 5, size=(k, 30))[truth] + rng.normal(size=(k * n_per, 30))
    a = ad.AnnData(X=X.astype(np.float32))
    a.obs_names = [f"s{i}" for i in range(a.n_obs)]
    labels = np.array([f"region{t}" for t in truth], dtype=object)
    labels[:5] = "undetermined"
    a.obs["annotation"] = labels
    a.obsm["spatial"] = np.c_[np.arange(a.n_obs) * 10.0, np.zeros(a.n_obs)]
    a.obsm["embedding"] = rng.normal(0, 5, size=(k, 8))[truth] + rng.normal(size=(k * n_per, 8))
    path = tmp_path / "pred.h5ad"
    a.write_h5ad(path)
    return path


def test_domains_in_place_with_scores(pred_file, tmp_path, capsys):
    rc = main(["domains", str(pred_file), "--k", "3", "--truth-key", "annotation", "--json", str(tmp_path / "d.json")])
    assert rc == 0
    a = ad.read_h5ad(pred_file)
    assert sorted(a.obs["domain"].astype(str).unique()) == ["0", "1", "2"]
    data = json.loads((tmp_path / "d.json").read_text())
    assert data["ari"] > 0.9 and data["nmi"] > 0.9 and data["n_dropped"] == 5 and sum(data["sizes"]) == 120
    assert "ARI" in capsys.readouterr().out


def test_embedding_clusters_to_new_file_with_external_truth(pred_file, tmp_path):
    truth = ad.read_h5ad(pred_file)
    truth.obs["ref"] = truth.obs["annotation"]
    truth.write_h5ad(tmp_path / "truth.h5ad")
    out = tmp_path / "out.h5ad"
    rc = main(
        [
            "domains",
            str(pred_file),
            "--k",
            "3",
            "--source",
            "embedding",
            "--truth",
            str(tmp_path / "truth.h5ad"),
            "--truth-key",
            "ref",
            "--out",
            str(out),
            "--json",
            str(tmp_path / "d.json"),
        ]
    )
    assert rc == 0
    assert "embedding_cluster" in ad.read_h5ad(out).obs
    assert "embedding_cluster" not in ad.read_h5ad(pred_file).obs
    assert json.loads((tmp_path / "d.json").read_text())["ari"] > 0.9


def test_domains_errors(pred_file, capsys):
    assert main(["domains", str(pred_file), "--k", "3", "--truth-key", "nope"]) == 2
    assert "no obs column 'nope'" in capsys.readouterr().err
    assert main(["domains", str(pred_file), "--k", "500"]) == 2

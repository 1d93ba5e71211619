"""Metrics and domains on one real HER2+ section (skipped without ../shared/data)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def c2(her2st_dir):
    from napari_mclstexp.io.her2st import read_her2st_section

    return read_her2st_section(her2st_dir, "C2")


def test_measured_expression_as_prediction_scores_one_on_785_genes(c2, her2st_dir):
    from napari_mclstexp.analysis.metrics import evaluate
    from napari_mclstexp.data.genes import expression_matrix, select_genes

    genes = select_genes([c2], str(her2st_dir / "her_hvg_785.npy"))
    pred = c2[:, genes].copy()
    pred.X = expression_matrix(c2, genes, "log10_1e4")
    pred.uns["mclstexp"] = {"normalization": "log10_1e4"}
    res = evaluate(pred, c2)
    assert res["n_genes"] == len(genes) > 700 and res["n_spots"] == c2.n_obs
    defined = res["n_genes"] - res["n_nan_genes"]
    assert defined > 0.9 * res["n_genes"]  # a few genes can be zero in every spot of C2
    assert res["acg"] == pytest.approx(1.0) and res["mse"] == pytest.approx(0.0, abs=1e-10)


def test_domains_of_measured_expression_agree_with_study_clusters(c2, her2st_dir):
    from napari_mclstexp.analysis.domains import determined_mask, find_domains, score_domains
    from napari_mclstexp.data.genes import expression_matrix, select_genes

    genes = select_genes([c2], str(her2st_dir / "her_hvg_785.npy"))
    truth = c2.obs["cluster_ref"].astype(object).to_numpy()
    k = len(set(truth[determined_mask(truth)]))
    labels = find_domains(expression_matrix(c2, genes, "log10_1e4"), k)
    scores = score_domains(labels, truth)
    # measured: ARI 0.22 / NMI 0.37 (the study's clusters came from expression, with other genes)
    assert scores["ari"] > 0.1 and scores["nmi"] > 0.2
    assert scores["n_dropped"] == int(np.sum(~determined_mask(truth)))

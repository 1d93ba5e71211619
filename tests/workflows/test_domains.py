"""domains_task: the Domains widget's work, as an engine generator (progress, cancel, scores)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.errors import Cancelled
from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.progress import CancelToken, run
from napari_mclstexp.workflows.domains import domains_task


def test_domains_task_clusters_scores_and_cancels(tiny_bundle, synthetic_samples):
    from napari_mclstexp.predict.spots import predict_at_spots

    pred = run(predict_at_spots(tiny_bundle, synthetic_samples[2], PredictOptions(device="cpu")))
    truth = synthetic_samples[2].obs["annotation"].to_numpy()
    events = []
    labels, scores = run(domains_task(pred, 3, "expression", truth), events.append)
    assert labels.shape == (pred.n_obs,) and set(np.unique(labels)) <= {0, 1, 2}
    assert {"ari", "nmi"} <= set(scores) and -1 <= scores["ari"] <= 1
    assert [e.stage for e in events] == ["domains"] * 3
    assert run(domains_task(pred, 3, "embedding"))[1] == {}
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        run(domains_task(pred, 3, "expression", cancel=token))


def test_domains_task_chooses_k_when_none_is_given(tiny_bundle, synthetic_samples):
    """k ``None``: the number of domains with the best silhouette, reported with every k's silhouette."""
    from napari_mclstexp.analysis.domains import choose_k, domain_features
    from napari_mclstexp.predict.spots import predict_at_spots

    pred = run(predict_at_spots(tiny_bundle, synthetic_samples[2], PredictOptions(device="cpu")))
    events = []
    labels, scores = run(domains_task(pred, None, "expression"), events.append)
    k, silhouettes = choose_k(domain_features(pred, "expression"))
    assert scores == {"k": k, "silhouettes": silhouettes} and len(np.unique(labels)) == k
    assert events[0].message.startswith("choosing k") and len(events) == 4

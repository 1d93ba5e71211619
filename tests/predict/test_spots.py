"""predict_at_spots: keeps spot names and coordinates, never touches the input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.predict.spots import predict_at_spots
from napari_mclstexp.progress import run


def test_predict_at_spots_keeps_names_and_coordinates(tiny_bundle, synthetic_sample):
    before = synthetic_sample.copy()
    events = []
    pred = run(predict_at_spots(tiny_bundle, synthetic_sample, PredictOptions(device="cpu", k=5)), events.append)
    assert list(pred.obs_names) == list(synthetic_sample.obs_names)
    np.testing.assert_array_equal(pred.obsm["spatial"], synthetic_sample.obsm["spatial"])
    assert list(pred.var_names) == tiny_bundle.genes
    assert pred.X.dtype == np.float32 and pred.X.shape == (synthetic_sample.n_obs, len(tiny_bundle.genes))
    assert pred.obsm["embedding"].shape == (synthetic_sample.n_obs, 16)
    assert (pred.obs["uncertainty"] >= 0).all() and pred.obs["uncertainty"].max() > 0
    assert list(pred.obs["annotation"]) == list(synthetic_sample.obs["annotation"])
    info = pred.uns["mclstexp"]
    assert info["k"] == 5 and info["distance"] == "l2" and info["source_sample"] == "SYN1"
    assert info["bundle"]["preset"] == "quick"
    # predictions are convex combinations of bank expression: inside the bank's per-gene range
    bank = tiny_bundle.bank.expression
    assert (pred.X >= bank.min(0) - 1e-5).all() and (pred.X <= bank.max(0) + 1e-5).all()
    assert {e.stage for e in events} >= {"patches", "embed", "retrieve"}
    # the input is untouched
    np.testing.assert_array_equal(synthetic_sample.X.toarray(), before.X.toarray())
    assert list(synthetic_sample.obs.columns) == list(before.obs.columns)
    assert "mclstexp" not in synthetic_sample.uns


def test_training_spot_retrieves_itself_when_embeddings_match(tiny_bundle, synthetic_samples):
    """With k = 1, a query equal to a bank key predicts exactly that key's expression."""
    from napari_mclstexp.predict.retrieval import retrieve

    keys = tiny_bundle.bank.embeddings[:10]
    r = retrieve(keys, tiny_bundle.bank, k=1, distance="l2")
    np.testing.assert_array_equal(r.indices[:, 0], np.arange(10))
    np.testing.assert_allclose(r.prediction, tiny_bundle.bank.expression[:10])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA: needs a CUDA device")
def test_cuda_padding_of_short_batches_changes_nothing(tiny_bundle, rng):
    from napari_mclstexp.predict.embedder import ImageEmbedder
    from napari_mclstexp.predict.spots import prepare_model

    dev = torch.device("cuda")
    model = prepare_model(tiny_bundle, dev)
    patches = rng.integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)
    a = ImageEmbedder(model, dev, "fp32", use_graph=False)(patches)
    b = ImageEmbedder(model, dev, "fp32", 16, use_graph=False)(patches)
    assert b.shape == (5, 16)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)

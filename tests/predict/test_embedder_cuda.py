"""ImageEmbedder with a real CUDA graph (skipped without CUDA): replays embed each new batch as eager does.

``test_embedder.py`` checks the plumbing with a stand-in graph on the CPU; here the forward pass
(uint8 → antialiased resize → network under bf16 autocast and ``inference_mode`` → embeddings) is
really captured, so a stale input buffer or a baked-in weight cast would show.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_mclstexp.predict.embedder import WARMUP_BATCHES, ImageEmbedder
from napari_mclstexp.predict.retrieval import retrieve
from napari_mclstexp.predict.spots import prepare_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA: needs a CUDA device")


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_graph_replays_embed_each_batch_like_eager(tiny_bundle, precision):
    dev = torch.device("cuda")
    model = prepare_model(tiny_bundle, dev)
    rng = np.random.default_rng(5)
    # 48 px crops → the model's 32 px input: the antialiased resize is part of the captured pass
    data = [rng.integers(0, 256, (6, 48, 48, 3), dtype=np.uint8) for _ in range(WARMUP_BATCHES + 4)]
    embed = ImageEmbedder(model, dev, precision, batch_size=8)  # 6 rows padded to 8
    outs = [embed(b) for b in data]
    assert embed.mode == "graph", embed.fallback_reason
    refs = [ImageEmbedder(model, dev, precision, 8, use_graph=False)(b) for b in data]  # eager, padded
    for i, (out, ref) in enumerate(zip(outs, refs, strict=True)):
        assert out.shape == ref.shape == (6, 16)
        torch.testing.assert_close(out, ref, rtol=2e-2, atol=2e-2)
        if i and (ref - refs[i - 1]).abs().max() > 0.1:  # the replay saw this batch, not the previous one
            assert (out - ref).abs().max() < (out - refs[i - 1]).abs().max()
    # replayed embeddings (inference tensors) feed retrieval like eager ones
    r = retrieve(outs[-1], tiny_bundle.bank, k=4, distance="l2")
    assert r.prediction.shape == (6, len(tiny_bundle.genes)) and bool(torch.isfinite(r.prediction).all())
    torch.testing.assert_close(r.weights.sum(dim=1), torch.ones(6, device=dev))

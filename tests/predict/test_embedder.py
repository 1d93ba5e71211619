"""ImageEmbedder: warm-up, capture and replay plumbing checked on the CPU with a stand-in graph.

A real CUDA graph needs a GPU; the stand-in's "replay" re-runs the captured forward function on the
static input buffer, which is what a graph replay does with the recorded kernels.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_mclstexp.predict import embedder as emb_mod
from napari_mclstexp.predict.embedder import WARMUP_BATCHES, ImageEmbedder


@pytest.fixture
def model(tiny_bundle):
    return tiny_bundle.build_model(torch.device("cpu"))


def batches(n_batches, size=6, px=64):
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (size, px, px, 3), dtype=np.uint8) for _ in range(n_batches)]


def eager(model, patches):
    with torch.inference_mode():
        return model.encode_images(torch.from_numpy(patches)).float()


def test_replays_after_warm_up_give_the_eager_embeddings(model, monkeypatch):
    captured = []

    def make_graph(self, fn):
        captured.append(fn)
        return fn, None  # replay = run the recorded function again on the static input

    monkeypatch.setattr(emb_mod, "GRAPH_DEVICES", ("cpu", "cuda"))
    monkeypatch.setattr(ImageEmbedder, "_make_graph", make_graph)
    embed = ImageEmbedder(model, torch.device("cpu"), batch_size=6)
    data = batches(WARMUP_BATCHES + 3)
    outs = [embed(b) for b in data]
    assert embed.mode == "graph" and len(captured) == 1
    for b, out in zip(data, outs, strict=True):
        assert torch.equal(out, eager(model, b))  # static buffer refreshed every batch
    # a replayed result is a copy: the next batch does not overwrite it
    first = outs[-2].clone()
    embed(data[0])
    assert torch.equal(outs[-2], first)
    # another shape has its own warm-up (and graph)
    short = batches(1, size=4)[0]
    assert torch.equal(embed(short), eager(model, short))


def test_capture_failure_falls_back_to_eager(model, monkeypatch, caplog):
    def broken(self, fn):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(emb_mod, "GRAPH_DEVICES", ("cpu", "cuda"))
    monkeypatch.setattr(ImageEmbedder, "_make_graph", broken)
    embed = ImageEmbedder(model, torch.device("cpu"), batch_size=6)
    data = batches(WARMUP_BATCHES + 2)
    with caplog.at_level("WARNING", logger="napari_mclstexp.predict.embedder"):
        outs = [embed(b) for b in data]
    assert embed.mode == "eager" and "not permitted" in (embed.fallback_reason or "")
    assert "capture of the image encoder failed" in caplog.text
    assert all(torch.equal(o, eager(model, b)) for o, b in zip(outs, data, strict=True))


def test_no_graph_on_cpu_by_default(model):
    embed = ImageEmbedder(model, torch.device("cpu"), batch_size=6)
    data = batches(WARMUP_BATCHES + 2)
    assert all(torch.equal(embed(b), eager(model, b)) for b in data)
    assert embed.mode == "eager" and not embed.want_graph


def test_tta_override(model):
    """``tta`` overrides the config: on, the 8-symmetry mean; off, the plain embedding."""
    data = batches(1)[0]
    plain = ImageEmbedder(model, torch.device("cpu"), tta=False)(data)
    averaged = ImageEmbedder(model, torch.device("cpu"), tta=True)(data)
    with torch.inference_mode():
        assert torch.equal(plain, model.encode_images(torch.from_numpy(data), tta=False).float())
        assert torch.equal(averaged, model.encode_images(torch.from_numpy(data), tta=True).float())
    assert not torch.allclose(plain, averaged)


def test_bundle_embedder_is_reused_on_cuda_only(tiny_bundle, monkeypatch):
    """The next slide of a cohort replays the first one's graph: one embedder per bundle and settings."""
    from napari_mclstexp.predict import spots

    built = []
    monkeypatch.setattr(spots, "prepare_model", lambda bundle, device: built.append(device) or object())
    cuda = torch.device("cuda")
    first = spots.bundle_embedder(tiny_bundle, cuda, "bf16", 256)
    assert spots.bundle_embedder(tiny_bundle, cuda, "bf16", 256) is first and len(built) == 1
    assert spots.bundle_embedder(tiny_bundle, cuda, "fp32", 256) is not first and len(built) == 2
    cpu = torch.device("cpu")
    assert spots.bundle_embedder(tiny_bundle, cpu) is not spots.bundle_embedder(tiny_bundle, cpu)
    tiny_bundle.__dict__.pop("_embedders")

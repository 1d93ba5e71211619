"""The panel's training runs in a worker process: it still reports progress on one bar, cancels, and
saves the bundle in-thread training saves with the same seed."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp._qt.train import train_and_save
from napari_mclstexp.errors import Cancelled
from napari_mclstexp.progress import CancelToken, run

TINY = {"input_px": 16, "patch_px": 32, "batch_size": 32, "embed_dim": 16, "k": 10, "seed": 3}


def _train(samples, out, **kw):
    events = []
    saved = run(
        train_and_save(samples, "quick", epochs=2, genes="hvg:8", device="cpu", out=str(out), overrides=TINY, **kw),
        events.append,
    )
    return saved, events


def test_process_training_equals_thread_training(synthetic_samples, tmp_path, monkeypatch):
    monkeypatch.setenv("MCLSTEXP_CACHE", str(tmp_path / "cache"))
    samples = list(synthetic_samples[:2])
    in_proc, events = _train(samples, tmp_path / "p.mclst", tissue=" synthetic, H&E-like ", notes="")
    in_thread, _ = _train(samples, tmp_path / "t.mclst", in_process=False)
    # one bar through every stage, per mille, reaching the end
    steps = [e.step for e in events]
    assert {e.total for e in events} == {1000} and steps == sorted(steps) and steps[-1] >= 990
    assert any(e.stage == "train" for e in events)
    assert in_proc.path == tmp_path / "p.mclst" and in_proc.bundle.path == in_proc.path
    assert in_proc.result.model is None and len(in_proc.result.history) == 2
    # the panel's Tissue and Notes fields reach the model card (an empty field: not given)
    assert in_proc.bundle.card["tissue"] == "synthetic, H&E-like" and in_proc.bundle.card.get("notes") is None
    assert list(in_proc.bundle.genes) == list(in_thread.bundle.genes)
    a, b = in_proc.bundle.state_dict, in_thread.bundle.state_dict
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), rtol=1e-4, atol=1e-5, err_msg=key)
    np.testing.assert_allclose(
        [h["loss"] for h in in_proc.result.history], [h["loss"] for h in in_thread.result.history], rtol=1e-4
    )


def test_process_training_cancels(synthetic_samples, tmp_path, monkeypatch):
    monkeypatch.setenv("MCLSTEXP_CACHE", str(tmp_path / "cache"))
    token = CancelToken()
    gen = train_and_save(
        list(synthetic_samples[:2]),
        "quick",
        epochs=500,
        genes="hvg:8",
        device="cpu",
        out=str(tmp_path / "never.mclst"),
        overrides=TINY,
        cancel=token,
    )
    for event in gen:
        if event.stage == "train":
            token.cancel()
            break
    with pytest.raises(Cancelled):
        for _ in gen:
            pass
    assert not (tmp_path / "never.mclst").exists()

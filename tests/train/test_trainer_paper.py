"""The reference keeps each epoch's last partial batch (``drop_last=False`` in ``paper``)."""

from __future__ import annotations

import math

from napari_mclstexp.model.presets import get_preset
from napari_mclstexp.progress import run
from napari_mclstexp.train.trainer import train


def _steps(samples, **changes) -> int:
    cfg = get_preset("quick").replace(input_px=16, patch_px=48, batch_size=64, epochs=1, seed=3, **changes)
    events = []
    result = run(train(samples, cfg, device="cpu"), events.append)
    assert result.history and math.isfinite(result.history[0]["loss"])
    return sum(e.stage == "train" for e in events)


def test_last_partial_batch_kept_only_when_asked(synthetic_samples):
    n = sum(a.n_obs for a in synthetic_samples)
    assert n % 64 != 0
    assert _steps(synthetic_samples) == n // 64
    assert _steps(synthetic_samples, drop_last=False) == math.ceil(n / 64)


def test_checkpoint_written_before_the_new_options_resumes(synthetic_samples, tmp_path):
    from napari_mclstexp.train.checkpoint import load_checkpoint, save_checkpoint

    samples = synthetic_samples[:1]
    cfg = get_preset("quick").replace(input_px=16, patch_px=48, batch_size=64, epochs=1, seed=3)
    ckpt = tmp_path / "run.ckpt"
    run(train(samples, cfg, device="cpu", checkpoint=ckpt))
    state = load_checkpoint(ckpt)
    for key in ("final_relu", "drop_last", "rotate_mode", "jitter_order", "test_augment", "value_normalization"):
        del state["meta"]["config"][key]  # as an older version wrote it
    save_checkpoint(ckpt, state)
    result = run(train(samples, cfg.replace(epochs=2), device="cpu", checkpoint=ckpt, resume=True))
    assert [h["epoch"] for h in result.history] == [1, 2]

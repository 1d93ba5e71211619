"""torch.compile-d encoder inside the captured CUDA-graph training step (skipped without CUDA).

Run by ``COMPILE=1 benchmarks/gpu_check.sh`` (compiling with Triton takes a while); the CPU tests of
``TrainConfig.compile`` are in ``test_compile.py``.
"""

from __future__ import annotations

import pytest
import torch

from napari_mclstexp.model.presets import get_preset
from napari_mclstexp.progress import run
from napari_mclstexp.train.trainer import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA: needs a CUDA device")


def test_compiled_encoder_is_captured_and_trains_like_eager(synthetic_samples, caplog):
    caplog.set_level("INFO", logger="napari_mclstexp")
    cfg = get_preset("quick").replace(
        input_px=32,
        patch_px=48,
        batch_size=32,
        epochs=3,
        seed=3,
        lr=3e-3,
        scheduler="cosine",
        precision="bf16",
        channels_last=True,
    )
    compiled = run(train(synthetic_samples, cfg.replace(compile=True), device="cuda"))
    eager = run(train(synthetic_samples, cfg.replace(cuda_graph=False), device="cuda"))
    assert compiled.compiled, caplog.text  # no fallback: Triton compiled the encoder
    assert compiled.step_mode == "graph", caplog.text  # and the compiled step was captured
    assert [h["loss"] for h in compiled.history] == pytest.approx([h["loss"] for h in eager.history], rel=3e-2)

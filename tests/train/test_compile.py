"""``TrainConfig.compile``: the image encoder trained through ``torch.compile``, and its fallback."""

from __future__ import annotations

import shutil

import pytest
import torch

from napari_mclstexp.model import encoders
from napari_mclstexp.model.mclstexp import build_model
from napari_mclstexp.model.presets import get_preset
from napari_mclstexp.progress import run
from napari_mclstexp.train.trainer import train


def tiny_config(**changes):
    base = dict(input_px=16, patch_px=48, batch_size=48, epochs=1, seed=7, lr=3e-3)
    return get_preset("quick").replace(**{**base, **changes})


@pytest.fixture(scope="module")
def eager(synthetic_samples):
    return run(train(synthetic_samples, tiny_config(), device="cpu"))


def state(result) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in result.model.state_dict().items()}


@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")), reason="inductor needs a C++ compiler")
def test_compiled_encoder_trains_like_eager(eager, synthetic_samples, caplog):
    caplog.set_level("INFO", logger="napari_mclstexp")
    compiled = run(train(synthetic_samples, tiny_config(compile=True), device="cpu"))
    assert compiled.compiled and not eager.compiled
    assert "image encoder compiled with torch.compile" in caplog.text
    a, b = state(eager), state(compiled)
    assert a.keys() == b.keys()  # in-place compile: bundles and checkpoints keep their keys
    # fused kernels round differently; one epoch of steps stays close to the eager run: the weights
    # differ by a few % of how far training moved them (1 % on one CPU, 6.5 % on this project's 2-core
    # machine with torch 2.14; Adam amplifies rounding in near-zero gradients, e.g. of conv biases ahead
    # of batch norm, so this is not checked parameter by parameter); a broken compile moves them apart
    # by as much as training moved them
    assert compiled.history[0]["loss"] == pytest.approx(eager.history[0]["loss"], rel=1e-3)
    torch.manual_seed(7)  # the trainer's initial weights
    init = build_model(eager.config, len(eager.genes), eager.pos_shape).state_dict()
    keys = [k for k in a if a[k].is_floating_point()]
    moved = torch.cat([(a[k] - init[k]).flatten() for k in keys]).norm()
    apart = torch.cat([(b[k] - a[k]).flatten() for k in keys]).norm()
    assert apart < 0.1 * moved
    assert compiled.model.image_encoder._compiled_call_impl is None  # returned model runs eagerly


def test_failed_compile_reruns_the_step_eagerly(eager, synthetic_samples, monkeypatch, caplog):
    def broken_backend(gm, example_inputs):
        raise RuntimeError("no C++ compiler here")

    def compile_broken(self, *args, **kwargs):
        torch.nn.Module.compile(self, backend=broken_backend)

    monkeypatch.setattr(encoders.SmallCNN, "compile", compile_broken, raising=False)
    caplog.set_level("WARNING", logger="napari_mclstexp")
    result = run(train(synthetic_samples, tiny_config(compile=True), device="cpu"))
    assert not result.compiled
    assert "torch.compile of the image encoder failed" in caplog.text and "no C++ compiler" in caplog.text
    # the failed first step drew nothing: training is exactly the eager run
    a, b = state(eager), state(result)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert result.history[0]["loss"] == eager.history[0]["loss"]

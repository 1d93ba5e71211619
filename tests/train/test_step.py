"""TrainStep: the graph-replay plumbing (static buffers, device lr, fallback) checked on the CPU.

A real CUDA graph needs a GPU.  Here ``_make_graph`` is replaced by a stand-in whose "replay" runs the
captured step function again on the static buffers, which is what a graph replay does with the
recorded kernels; everything else (warm-up count, static index and patch buffers, learning rate as a
tensor updated in place by the scheduler, checkpoint sanitising, fallback) is the shipped code.
"""

from __future__ import annotations

import math

import pytest
import torch

from napari_mclstexp.errors import Cancelled
from napari_mclstexp.model.presets import get_preset
from napari_mclstexp.progress import CancelToken, run
from napari_mclstexp.train import step as step_mod
from napari_mclstexp.train.checkpoint import load_checkpoint
from napari_mclstexp.train.trainer import train

from .conftest import tiny_config as shared_config


def tiny_config(**changes):
    # cosine schedule: the lr changes every step, so a baked-in lr would show
    return shared_config(**{"scheduler": "cosine", **changes})


@pytest.fixture
def fake_graphs(monkeypatch):
    """Let the CPU 'capture': the stand-in graph replays the step function eagerly."""
    calls = {"captures": 0, "replays": 0}

    def make_graph(self, fn):
        calls["captures"] += 1

        def replay():
            calls["replays"] += 1
            fn()

        return replay

    monkeypatch.setattr(step_mod, "GRAPH_DEVICES", ("cpu", "cuda"))
    monkeypatch.setattr(step_mod.TrainStep, "_make_graph", make_graph)
    return calls


@pytest.fixture
def eager(reference_run):
    """The shared seeded 3-epoch run (``conftest.py``): on the CPU its steps run eagerly."""
    result = reference_run[0]
    assert result.config.scheduler == "cosine" and result.step_mode == "eager"
    return result


def assert_same_models(a, b) -> None:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_replayed_steps_train_like_eager_steps(eager, synthetic_samples, fake_graphs):
    graphed = run(train(synthetic_samples, tiny_config(), device="cpu"))
    n_steps = sum(a.n_obs for a in synthetic_samples) // 48 * 3
    assert graphed.step_mode == "graph" and eager.step_mode == "eager"
    assert fake_graphs["captures"] == 1
    assert fake_graphs["replays"] == n_steps - step_mod.WARMUP_STEPS
    # same batches, augmentations, lr schedule and updates as the eager run
    assert graphed.history[-1]["loss"] == eager.history[-1]["loss"]
    assert_same_models(eager, graphed)


def test_graph_checkpoint_resumes_eagerly(eager, synthetic_samples, fake_graphs, tmp_path, monkeypatch):
    ckpt = tmp_path / "g.ckpt"
    token = CancelToken()
    per_epoch = sum(a.n_obs for a in synthetic_samples) // 48

    def stop_in_epoch_3(ev):
        if ev.stage == "train" and ev.step > 2 * per_epoch:
            token.cancel()

    with pytest.raises(Cancelled):
        run(train(synthetic_samples, tiny_config(), device="cpu", checkpoint=ckpt, cancel=token), stop_in_epoch_3)
    state = load_checkpoint(ckpt)
    groups = state["optimizer"]["param_groups"]
    assert all(isinstance(g["lr"], float) and not g.get("capturable", False) for g in groups)
    assert all(isinstance(v, float) for v in state["scheduler"]["_last_lr"])
    monkeypatch.setattr(step_mod, "GRAPH_DEVICES", ("cuda",))  # resume as a plain CPU run
    resumed = run(train(synthetic_samples, tiny_config(), device="cpu", checkpoint=ckpt, resume=True))
    assert resumed.step_mode == "eager" and len(resumed.history) == 3
    assert_same_models(eager, resumed)


def test_failed_capture_falls_back_to_identical_eager_training(eager, synthetic_samples, monkeypatch, caplog):
    def broken(self, fn):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(step_mod, "GRAPH_DEVICES", ("cpu", "cuda"))
    monkeypatch.setattr(step_mod.TrainStep, "_make_graph", broken)
    with caplog.at_level("WARNING", logger="napari_mclstexp.train.step"):
        result = run(train(synthetic_samples, tiny_config(), device="cpu"))
    assert result.step_mode == "eager"
    assert "capture of the training step failed" in caplog.text and "not permitted" in caplog.text
    assert_same_models(eager, result)
    assert [h["loss"] for h in result.history] == [h["loss"] for h in eager.history]


def test_graphs_only_on_one_cuda_device():
    class Ctx:
        world_size = 2

    cfg = get_preset("quick")
    cpu = torch.zeros(1)
    assert not step_mod.TrainStep(None, None, None, Ctx(), None, cpu, cpu, cfg, 4, True).want_graph
    Ctx.world_size = 1
    assert not step_mod.TrainStep(None, None, None, Ctx(), None, cpu, cpu, cfg, 4, True).want_graph


def test_schedule_updates_the_captured_lr_tensor_in_place():
    from napari_mclstexp.train.result import make_scheduler

    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.AdamW([w], lr=1e-3)
    sched = make_scheduler(opt, get_preset("default").replace(scheduler="cosine"), total_steps=4)
    w.grad = torch.ones(3)
    opt.step()
    sched.step()
    step_mod.make_capturable(opt, torch.device("cpu"))
    lr = opt.param_groups[0]["lr"]
    assert torch.is_tensor(lr) and opt.param_groups[0]["capturable"]
    seen = []
    for _ in range(3):
        sched.step()
        assert opt.param_groups[0]["lr"] is lr  # the tensor a graph would read, updated in place
        seen.append(float(lr))
    # cosine over 4 steps: factors at steps 2, 3, 4
    assert seen == pytest.approx([1e-3 * 0.5 * (1 + math.cos(math.pi * s / 4)) for s in (2, 3, 4)], rel=1e-6)
    state = step_mod.optimizer_state(opt)
    assert state["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert state["param_groups"][0]["capturable"] is False
    assert isinstance(step_mod.scheduler_state(sched)["_last_lr"][0], float)


def test_a_scheduler_assigning_floats_still_reaches_the_graph(monkeypatch):
    """Older torch schedulers replace a tensor lr by a float; the step copies it into the captured tensor."""
    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.Adam([w], lr=1e-3)
    st = step_mod.TrainStep(
        None,
        None,
        opt,
        type("C", (), {"world_size": 1})(),
        None,
        torch.zeros(1),
        torch.zeros(1),
        get_preset("quick"),
        2,
        False,
    )
    step_mod.make_capturable(opt, torch.device("cpu"))
    lr = opt.param_groups[0]["lr"]
    st.graph, st._lr_tensors = (lambda: None), [lr]
    opt.param_groups[0]["lr"] = 5e-4  # what an old scheduler does
    st.after_schedule()
    assert opt.param_groups[0]["lr"] is lr and float(lr) == pytest.approx(5e-4)

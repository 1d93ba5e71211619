"""Trainer: events, determinism, cancel within one step, checkpoints and exact resume (CPU)."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from napari_mclstexp.errors import Cancelled, InputError
from napari_mclstexp.model.presets import get_preset
from napari_mclstexp.progress import CancelToken, run
from napari_mclstexp.train.checkpoint import load_checkpoint
from napari_mclstexp.train.trainer import TrainResult, backward_step, configure_backend, train

from .conftest import tiny_config


def weights(result: TrainResult) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in result.model.state_dict().items()}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture
def reference(reference_run):
    """An uninterrupted seeded 3-epoch run with its events and checkpoint (trained once: ``conftest.py``)."""
    return reference_run


def test_events_history_and_result(reference, synthetic_samples):
    result, events, _ = reference
    stages = [e.stage for e in events]
    assert stages[0] == "patches" and stages[-1] == "train"
    assert stages.index("train") > max(i for i, s in enumerate(stages) if s == "patches")
    patch_events = [e for e in events if e.stage == "patches"]  # one count over all sections, never back
    n_all = sum(a.n_obs for a in synthetic_samples)
    assert {e.total for e in patch_events} == {n_all} and patch_events[-1].step == n_all
    assert all(a.step <= b.step for a, b in zip(patch_events, patch_events[1:], strict=False))
    n = sum(a.n_obs for a in synthetic_samples)
    steps = n // 48
    train_events = [e for e in events if e.stage == "train"]
    assert len(train_events) == 3 * steps and train_events[-1].step == train_events[-1].total
    assert set(train_events[0].metrics) >= {"epoch", "step", "loss", "spots_per_s", "eta_s"}
    assert train_events[-1].metrics["eta_s"] == 0 and train_events[0].metrics["spots_per_s"] > 0
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert result.history[-1]["loss"] < result.history[0]["loss"]  # it learns
    assert result.genes == list(synthetic_samples[0].var_names)
    assert result.train_sections == ["SYN1", "SYN2", "SYN3"]
    assert result.device == "cpu" and not result.model.training and result.is_main


def test_seeded_runs_are_identical(reference, synthetic_samples):
    again = run(train(synthetic_samples, tiny_config(), device="cpu"))
    assert_same_weights(weights(reference[0]), weights(again))
    assert [h["loss"] for h in again.history] == [h["loss"] for h in reference[0].history]
    other = run(train(synthetic_samples, tiny_config(seed=8, epochs=1), device="cpu"))
    assert not torch.equal(other.model.image_head.projection.weight, again.model.image_head.projection.weight)


def test_checkpoint_written_every_epoch(reference):
    _, _, ckpt = reference
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 3 and len(state["history"]) == 3
    assert set(state) >= {"model", "optimizer", "scheduler", "rng", "meta"}
    assert not list(ckpt.parent.glob("*.part"))  # atomic: no temporary left behind


def test_resume_after_interruption_gives_identical_weights(reference, synthetic_samples, tmp_path):
    ckpt = tmp_path / "resume.ckpt"
    token = CancelToken()

    def interrupt(event):  # cancel in the middle of epoch 2
        if event.stage == "train" and event.metrics["epoch"] == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        run(train(synthetic_samples, tiny_config(), device="cpu", checkpoint=ckpt, cancel=token), interrupt)
    assert load_checkpoint(ckpt)["epoch"] == 1
    torch.manual_seed(12345)  # the process RNG state must not matter: it comes from the checkpoint
    resumed = run(train(synthetic_samples, tiny_config(), device="cpu", checkpoint=ckpt, resume=True))
    assert_same_weights(weights(reference[0]), weights(resumed))
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in reference[0].history]


def test_cancel_stops_within_one_step(synthetic_samples):
    token = CancelToken()
    seen = []

    def on_event(event):
        if event.stage == "train":
            seen.append(event.step)
            token.cancel()

    with pytest.raises(Cancelled):
        run(train(synthetic_samples, tiny_config(), device="cpu", cancel=token), on_event)
    assert seen == [1]


def test_resume_refuses_other_data_or_options(reference, synthetic_samples, tmp_path):
    _, _, ckpt = reference
    copy = tmp_path / "c.ckpt"
    copy.write_bytes(ckpt.read_bytes())
    genes = list(synthetic_samples[0].var_names[:10])
    with pytest.raises(InputError, match="genes differs"):
        run(train(synthetic_samples, tiny_config(), genes=genes, device="cpu", checkpoint=copy, resume=True))
    with pytest.raises(InputError, match="lr"):
        run(train(synthetic_samples, tiny_config(lr=1e-2), device="cpu", checkpoint=copy, resume=True))
    # options that only change the speed (CUDA graph, torch.compile) do not block a resume
    same = run(
        train(
            synthetic_samples, tiny_config(cuda_graph=False, compile=True), device="cpu", checkpoint=copy, resume=True
        )
    )
    assert_same_weights(weights(reference[0]), weights(same))
    (tmp_path / "bad.ckpt").write_bytes(b"garbage")
    with pytest.raises(InputError, match="checkpoint"):
        run(train(synthetic_samples, tiny_config(), device="cpu", checkpoint=tmp_path / "bad.ckpt", resume=True))


def test_paper_context_trains_on_cpu(synthetic_samples):
    cfg = get_preset("paper").replace(
        encoder="smallcnn", weights="none", input_px=16, patch_px=48, epochs=1, batch_size=64, pos_rows=64
    )
    result = run(train(synthetic_samples[:1], cfg, device="cpu"))
    assert np.isfinite(result.history[0]["loss"])
    assert result.pos_shape == (64, 64)


def test_no_samples():
    with pytest.raises(InputError, match="no training samples"):
        run(train([], tiny_config(), device="cpu"))


def test_cudnn_autotuning_on_cuda_only(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    configure_backend(torch.device("cpu"))
    assert torch.backends.cudnn.benchmark is False
    configure_backend(torch.device("cuda", 0))  # sets a flag only: no GPU needed
    assert torch.backends.cudnn.benchmark is True


def test_batch_indices_reach_the_device_once_per_epoch(synthetic_samples, monkeypatch):
    """Index tensors are moved once per epoch and sliced, not copied (twice) per step."""
    original = torch.Tensor.to
    moved = []

    def counting_to(self, *args, **kwargs):
        if self.dtype == torch.int64 and self.ndim == 1:
            moved.append(len(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", counting_to)
    cfg = tiny_config(epochs=2)
    result = run(train(synthetic_samples, cfg, device="cpu"))
    n = sum(a.n_obs for a in synthetic_samples)
    steps = n // cfg.batch_size
    assert steps >= 3 and len(result.history) == 2
    assert len(moved) <= 2 * 2  # before: 2 copies per step (6 steps × 2 epochs)
    assert all(m == n for m in moved)  # whole epoch permutations, never per-step batches


# --- learnable temperature under DDP (2 gloo processes) -------------------------------------------

WORLD, LOCAL_B, N_GENES = 2, 6, 5


def _ddp_inputs():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(WORLD * LOCAL_B, 3, 16, 16, generator=g)
    expr = torch.rand(WORLD * LOCAL_B, N_GENES, generator=g)
    pos = torch.randint(0, 8, (WORLD * LOCAL_B, 2), generator=g)
    return x, expr, pos


def _ddp_model():
    from napari_mclstexp.model.mclstexp import build_model

    torch.manual_seed(0)
    model = build_model(tiny_config(temperature=0.2, learn_temperature=True), N_GENES, (8, 8))
    return model.eval()  # no dropout, BatchNorm on running statistics: ranks = halves of one batch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _temperature_worker(rank: int, port: int, out_dir: str) -> None:
    import os

    from napari_mclstexp.train.distributed import init_distributed

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    try:
        model = _ddp_model()
        net = ctx.wrap(model)
        x, expr, pos = _ddp_inputs()
        rows = slice(rank * LOCAL_B, (rank + 1) * LOCAL_B)
        img, spot = net(x[rows], expr[rows], pos[rows])
        backward_step(model.loss(ctx.gather(img), ctx.gather(spot)), model, ctx)
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        torch.save(grads, f"{out_dir}/grads{rank}.pt")
    finally:
        ctx.shutdown()


def test_learnable_temperature_gradient_under_ddp_equals_single_process(tmp_path):
    mp.spawn(_temperature_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    model = _ddp_model()
    x, expr, pos = _ddp_inputs()
    parts = [
        model(
            x[r * LOCAL_B : (r + 1) * LOCAL_B],
            expr[r * LOCAL_B : (r + 1) * LOCAL_B],
            pos[r * LOCAL_B : (r + 1) * LOCAL_B],
        )
        for r in range(WORLD)
    ]
    img, spot = (torch.cat([p[i] for p in parts]) for i in range(2))
    model.loss(img, spot).backward()
    single = model.log_temperature.grad
    assert single.abs() > 1e-6
    for rank in range(WORLD):
        grads = torch.load(tmp_path / f"grads{rank}.pt", weights_only=True)
        torch.testing.assert_close(grads["log_temperature"], single, rtol=1e-4, atol=1e-7)  # not 2×
        torch.testing.assert_close(
            grads["image_head.projection.weight"], model.image_head.projection.weight.grad, rtol=1e-4, atol=1e-6
        )


def test_warns_before_hours_of_cpu_training():
    import warnings

    from napari_mclstexp.train.trainer import _warn_slow_cpu_training

    with pytest.warns(UserWarning, match=r"densenet121 \(default preset\) on the CPU.*roughly 2 h.*quick preset"):
        _warn_slow_cpu_training(torch.device("cpu"), get_preset("default"), 834)  # 834 spots x 30 epochs / 4 per s
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_slow_cpu_training(torch.device("cpu"), get_preset("quick"), 834)  # made for CPUs
        _warn_slow_cpu_training(torch.device("cpu"), get_preset("default").replace(epochs=1), 100)  # minutes
        _warn_slow_cpu_training(torch.device("cuda", 0), get_preset("default"), 834)

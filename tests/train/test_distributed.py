"""DDP helpers: 2 gloo processes on CPU train the same objective as one process on the global batch."""

from __future__ import annotations

import gc
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.nn import functional as F

from napari_mclstexp.train.distributed import (
    DistContext,
    gather_with_grad,
    init_distributed,
    shutdown_distributed,
)

WORLD = 2
LOCAL_B = 4


class PairModel(nn.Module):
    """Tiny two-tower model: image features → embedding, spot features → embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.img = nn.Sequential(nn.Linear(8, 6), nn.GELU(), nn.Linear(6, 5))
        self.spot = nn.Sequential(nn.Linear(6, 5), nn.LayerNorm(5))
        self.log_temperature = nn.Parameter(torch.tensor(0.3))  # used by the loss only (as CLIP's)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.img(x), self.spot(e)


def clip_loss(img: torch.Tensor, spot: torch.Tensor, log_t: torch.Tensor) -> torch.Tensor:
    """mclSTExp loss: logits = spot @ img.T / T, symmetric CE with identity targets."""
    logits = spot @ img.T / log_t.exp()
    target = torch.arange(len(logits))
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def global_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(WORLD * LOCAL_B, 8, generator=g), torch.randn(WORLD * LOCAL_B, 6, generator=g)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out_dir: str) -> None:
    import os

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    try:
        _run_rank(ctx, rank, out_dir)
        # the DDP wrapper and the autograd graph hold the process group: free them before destroying it
        # (else gloo's threads can outlive it and abort the process at exit)
        gc.collect()
    finally:
        ctx.shutdown()


def _run_rank(ctx: DistContext, rank: int, out_dir: str) -> None:
    torch.manual_seed(0)
    model = PairModel()
    ddp = ctx.wrap(model)
    x, e = global_batch()
    # Global order = rank order: the gathered batch equals the single-process batch.
    mine = ctx.shard(np.arange(WORLD * LOCAL_B).reshape(WORLD, LOCAL_B).T.ravel())
    img, spot = ddp(x[mine], e[mine])
    img_all, spot_all = ctx.gather(img), ctx.gather(spot)
    loss = clip_loss(img_all, spot_all, model.log_temperature) * ctx.world_size
    loss.backward()
    t_grad_before = model.log_temperature.grad.detach().clone()
    ctx.unscale_shared_grads([model.log_temperature])
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    result = {
        "ctx": (ctx.rank, ctx.world_size, ctx.local_rank, str(ctx.device), ctx.is_main),
        "shard": mine,
        "logits": (spot_all @ img_all.T).detach(),
        "img_requires_grad": img_all.requires_grad,
        "loss": ctx.all_reduce_mean(loss.item() / ctx.world_size),
        "mean_rank": ctx.all_reduce_mean(float(rank)),
        "grads": grads,
        "t_grad_before": t_grad_before,
        "split": ctx.split(np.arange(7)),
        "objects": ctx.gather_objects({"rank": rank}),
    }
    ctx.barrier()
    torch.save(result, f"{out_dir}/rank{rank}.pt")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


@pytest.fixture(scope="module")
def single() -> dict:
    torch.manual_seed(0)
    model = PairModel()
    x, e = global_batch()
    img, spot = model(x, e)
    loss = clip_loss(img, spot, model.log_temperature)
    loss.backward()
    return {
        "logits": (spot @ img.T).detach(),
        "loss": loss.item(),
        "grads": {n: p.grad.detach().clone() for n, p in model.named_parameters()},
    }


def test_contexts_under_torchrun_env(ranks):
    assert [r["ctx"] for r in ranks] == [(0, 2, 0, "cpu", True), (1, 2, 1, "cpu", False)]
    assert [r["mean_rank"] for r in ranks] == [0.5, 0.5]
    np.testing.assert_array_equal(ranks[0]["shard"], [0, 1, 2, 3])
    np.testing.assert_array_equal(ranks[1]["shard"], [4, 5, 6, 7])
    np.testing.assert_array_equal(np.concatenate([r["split"] for r in ranks]), np.arange(7))
    assert [len(r["split"]) for r in ranks] == [4, 3]
    assert ranks[0]["objects"] == ranks[1]["objects"] == [{"rank": 0}, {"rank": 1}]


def test_gathered_logits_equal_single_process(ranks, single):
    assert single["logits"].shape == (WORLD * LOCAL_B, WORLD * LOCAL_B)
    for r in ranks:
        assert r["img_requires_grad"]
        torch.testing.assert_close(r["logits"], single["logits"], rtol=1e-5, atol=1e-6)
        assert r["loss"] == pytest.approx(single["loss"], rel=1e-5)


def test_ddp_gradients_equal_single_process_global_batch(ranks, single):
    for r in ranks:
        assert r["grads"].keys() == single["grads"].keys()
        for name, g in single["grads"].items():
            assert g.abs().max() > 0, name
            torch.testing.assert_close(r["grads"][name], g, rtol=1e-4, atol=1e-6)


def test_shared_parameter_gradient_is_world_size_times_until_unscaled(ranks, single):
    # Every rank differentiates the whole loss w.r.t. the temperature: N x before the correction.
    g_one = single["grads"]["log_temperature"]
    assert g_one.abs() > 0
    for r in ranks:
        torch.testing.assert_close(r["t_grad_before"], WORLD * g_one, rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(r["grads"]["log_temperature"], g_one, rtol=1e-4, atol=1e-7)


def test_single_process_context_is_identity(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.device.type) == (0, 1, True, "cpu")
    model = PairModel()
    assert ctx.wrap(model) is model
    idx = np.array([5, 2, 9, 1, 7])
    np.testing.assert_array_equal(ctx.shard(idx), idx)
    t = torch.arange(6.0).reshape(3, 2)
    assert ctx.gather(t) is t and gather_with_grad(t) is t
    assert ctx.all_reduce_mean(2.5) == 2.5
    np.testing.assert_array_equal(ctx.split(idx), idx)
    assert ctx.gather_objects("x") == ["x"]
    p = nn.Parameter(torch.ones(2))
    p.grad = torch.full((2,), 3.0)
    ctx.unscale_shared_grads([p])
    assert torch.equal(p.grad, torch.full((2,), 3.0))
    ctx.barrier()
    ctx.shutdown()


def test_shard_drops_remainder_and_partitions():
    perm = np.random.default_rng(0).permutation(11)
    parts = [DistContext(rank=r, world_size=3).shard(perm) for r in range(3)]
    assert [len(p) for p in parts] == [3, 3, 3]
    joined = np.concatenate(parts)
    assert len(np.unique(joined)) == 9
    assert set(joined) <= set(perm[:9])


def _train_worker(rank: int, port: int, out_dir: str) -> None:
    import os

    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.progress import run
    from napari_mclstexp.synthetic import make_synthetic_sample
    from napari_mclstexp.train.trainer import train

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    samples = [
        make_synthetic_sample(
            f"{out_dir}/r{rank}", image_px=(192, 192), spot_spacing_px=24.0, n_genes=8, seed=s, section=f"S{s}"
        )
        for s in (1, 2)
    ]
    cfg = get_preset("quick").replace(epochs=2, batch_size=16, input_px=32)
    res = run(train(samples, cfg, device="cpu"))
    params = {n: p.detach().clone() for n, p in res.model.named_parameters()}
    torch.save(
        {
            "params": params,
            "history": res.history,
            "is_main": res.is_main,
            "shut_down": shutdown_distributed(),
            "still_initialized": torch.distributed.is_initialized(),
        },
        f"{out_dir}/train{rank}.pt",
    )


def test_trainer_on_two_gloo_processes_keeps_ranks_in_sync(tmp_path):
    mp.spawn(_train_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    r0, r1 = (torch.load(tmp_path / f"train{r}.pt", weights_only=False) for r in range(WORLD))
    assert (r0["is_main"], r1["is_main"]) == (True, False)
    # what the CLI does after a command under torchrun: the group is left cleanly, on every rank
    assert r0["shut_down"] and r1["shut_down"] and not (r0["still_initialized"] or r1["still_initialized"])
    assert [h["loss"] for h in r0["history"]] == [h["loss"] for h in r1["history"]]  # all-reduced
    assert len(r0["history"]) == 2 and np.isfinite(r0["history"][-1]["loss"])
    for name, p in r0["params"].items():  # DDP: identical parameters after every step
        torch.testing.assert_close(r1["params"][name], p, rtol=0, atol=0)

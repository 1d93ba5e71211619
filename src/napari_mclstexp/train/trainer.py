"""Training loop of mclSTExp: patches once into one uint8 tensor, batches by index, device augmentation.

``train`` is a generator: it yields :class:`~napari_mclstexp.progress.Progress` events (stage
``"patches"`` then ``"train"``) and returns a :class:`TrainResult`.  It checks ``cancel`` before every
step, writes a checkpoint atomically after every epoch (rank 0) and can resume from it with results
identical to an uninterrupted seeded run on the CPU.  Under ``torchrun`` it trains with DDP through
:mod:`napari_mclstexp.train.distributed` (global batch = per-rank batch × world size, contrastive
logits over the gathered embeddings).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointMismatchError, InputError
from ..model.mclstexp import build_model, pos_shape_for
from ..model.presets import RUNTIME_OPTIONS, TrainConfig, as_config
from ..progress import CancelToken, Progress, ProgressGen
from ..sample import section_name
from .batches import BatchSource, load_training_data
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .result import TrainResult, make_optimizer, make_scheduler
from .step import TrainStep, backward_step, optimizer_state, scheduler_state, uncompile_encoder

__all__ = ["TrainResult", "backward_step", "configure_backend", "train"]

log = logging.getLogger(__name__)


def configure_backend(device: torch.device) -> None:
    """Backend flags for training on ``device``: cuDNN autotuning on CUDA (fixed input shapes)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


#: Training images per second of an ImageNet-size encoder at 224 px on a 2-core CPU (measured).
CPU_IMAGES_PER_S_224 = 4.0


def _warn_slow_cpu_training(dev: torch.device, cfg: TrainConfig, n_spots: int) -> None:
    """Warn (once, before the first step) when a large encoder is about to train for hours on a CPU."""
    if dev.type != "cpu" or cfg.encoder == "smallcnn" or cfg.epochs < 1:
        return
    rate = CPU_IMAGES_PER_S_224 * (224.0 / max(int(cfg.input_px), 1)) ** 2
    hours = n_spots * cfg.epochs / rate / 3600.0
    if hours < 0.5:
        return
    warnings.warn(
        f"training {cfg.encoder} ({cfg.preset} preset) on the CPU: about {rate:.0f} images/s, so "
        f"{cfg.epochs} epochs over {n_spots} spots take roughly {hours:.0f} h; the quick preset is made "
        f"for CPUs (minutes), or use a GPU",
        UserWarning,
        stacklevel=3,
    )


def train(
    samples: Sequence[Any],
    config: TrainConfig | dict[str, Any] | str,
    *,
    genes: Any = None,
    device: str | torch.device = "auto",
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    cancel: CancelToken | None = None,
    patch_cache: Any = None,
    feature_cache: Any = None,
) -> ProgressGen[TrainResult]:
    """Train an mclSTExp model on samples with images (generator).

    Parameters
    ----------
    samples
        Training sections (AnnData with raw counts and ``source_image_path``).
    config
        A :class:`TrainConfig`, its dict, or a preset name.
    genes
        Gene panel spec for :func:`~napari_mclstexp.data.genes.select_genes` (None, ``"hvg:N"``, a
        path or a list).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:K"``, ``"mps"`` (under torchrun: the rank's GPU).
    checkpoint
        File written atomically after every epoch (rank 0); ``resume=True`` continues from it.
    resume
        Continue from ``checkpoint`` if it exists (same data and options required).
    cancel
        Checked before every step; raises :class:`~napari_mclstexp.errors.Cancelled`.
    patch_cache
        Optional :class:`~napari_mclstexp.data.patches.PatchCache`.
    feature_cache
        With ``config.freeze`` (and no ``unfreeze_last``): the
        :class:`~napari_mclstexp.data.features.FeatureCache` of frozen-encoder features
        (:func:`~napari_mclstexp.train.frozen.train_frozen` trains on them; no resume there).

    Yields
    ------
    Progress
        ``"patches"`` events, then one ``"train"`` event per step with metrics ``epoch``, ``step``,
        ``loss`` (latest synchronised mean), ``spots_per_s``, ``eta_s`` (s) and, where a CUDA graph
        is possible, ``cuda_graph`` (1.0 once steps are replayed from it).

    Returns
    -------
    TrainResult
    """
    from .distributed import init_distributed

    cfg = as_config(config)
    if cfg.head == "ridge" or (cfg.freeze and cfg.unfreeze_last == 0):  # features computed once, then cached
        from .frozen import train_frozen
        from .ridge import train_ridge

        fit = train_ridge if cfg.head == "ridge" else train_frozen
        kwargs = dict(genes=genes, device=device, cancel=cancel, patch_cache=patch_cache, feature_cache=feature_cache)
        return (yield from fit(samples, cfg, **kwargs))
    samples = list(samples)
    if not samples:
        raise InputError("no training samples given")
    ctx = init_distributed(device)
    dev = ctx.device
    gene_list, patches, expr, pos = yield from load_training_data(samples, cfg, genes, cancel, patch_cache)
    pos_shape = pos_shape_for(samples, cfg)
    n = len(expr)
    cuda = dev.type == "cuda"
    _warn_slow_cpu_training(dev, cfg, n)
    configure_backend(dev)

    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    model = build_model(cfg, len(gene_list), pos_shape).to(dev)
    if cfg.freeze:  # partial fine-tuning: only the encoder's last blocks learn
        from .features import freeze_encoder

        freeze_encoder(model, cfg.unfreeze_last)
    if cuda and cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
        model.channels_last = True
    net = ctx.wrap(model)
    per_rank = max(1, cfg.batch_size // ctx.world_size)
    local_n = len(ctx.shard(np.arange(n)))
    batch = min(per_rank, local_n)
    # the reference keeps each epoch's last partial batch (drop_last=False); ranks must agree on sizes
    keep_last = not cfg.drop_last and ctx.world_size == 1 and local_n % batch != 0
    steps_per_epoch = max(1, -(-local_n // batch) if keep_last else local_n // batch)
    total_steps = steps_per_epoch * cfg.epochs
    opt = make_optimizer(model, cfg, dev)
    sched = make_scheduler(opt, cfg, total_steps)
    np_rng = np.random.default_rng(cfg.seed)  # permutations: identical on every rank
    torch.manual_seed(cfg.seed + 1 + 1000 * ctx.rank)  # augmentation and dropout: per rank

    history: list[dict[str, float]] = []
    start_epoch = 0
    meta = {"genes": gene_list, "config": cfg.to_dict(), "pos_shape": list(pos_shape), "n_spots": n}
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        state = load_checkpoint(checkpoint)
        for key in ("genes", "pos_shape", "n_spots"):
            if state["meta"].get(key) != meta[key]:
                raise CheckpointMismatchError(
                    f"checkpoint was written for other data ({key} differs); remove it or drop --resume", checkpoint
                )
        try:  # keys newer than the checkpoint take their defaults (= the behaviour it was trained with)
            before = as_config(state["meta"]["config"]).to_dict()
        except InputError:  # keys this version does not know: compare as written
            before = dict(state["meta"]["config"])
        changed = [k for k, v in meta["config"].items() if k not in ("epochs", *RUNTIME_OPTIONS) and before.get(k) != v]
        if changed:
            raise CheckpointMismatchError(
                f"checkpoint was written with other options ({', '.join(changed)})", checkpoint
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"], np_rng)
        start_epoch = int(state["epoch"])
        history = list(state["history"])

    source = BatchSource(patches, dev, batch)
    expr_t = torch.from_numpy(expr).to(dev)
    pos_t = torch.from_numpy(pos).to(dev)
    step_fn = TrainStep(
        model, net, opt, ctx, source, expr_t, pos_t, cfg, batch, use_graph=cfg.cuda_graph and not keep_last
    )  # a graph needs one batch shape
    t_start = time.perf_counter()
    done = 0
    last_loss = float("nan")
    log_every = max(1, steps_per_epoch // 10) if cuda else 1  # .item() syncs the GPU
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        order = torch.from_numpy(np.ascontiguousarray(ctx.shard(np_rng.permutation(n))))
        order_src = order.to(source.index_device, non_blocking=True)  # one copy per epoch, sliced per step
        order_dev = order.to(dev, non_blocking=True)
        t_epoch = time.perf_counter()
        loss_sum = torch.zeros((), device=dev)
        for s in range(steps_per_epoch):
            if cancel is not None:
                cancel.raise_if_cancelled()
            rows = slice(s * batch, (s + 1) * batch)
            loss = step_fn(order_src[rows], order_dev[rows])
            sched.step()
            step_fn.after_schedule()
            loss_sum += loss
            done += 1
            if s % log_every == 0 or s == steps_per_epoch - 1:
                last_loss = float(loss.item())
            elapsed = time.perf_counter() - t_start
            step = epoch * steps_per_epoch + s + 1
            metrics = {
                "epoch": epoch + 1,
                "step": step,
                "loss": last_loss,
                "spots_per_s": done * batch * ctx.world_size / max(elapsed, 1e-9),
                "eta_s": elapsed / done * (total_steps - step),
            }
            if step_fn.want_graph or step_fn.graph is not None:  # only where a graph is possible
                metrics["cuda_graph"] = float(step_fn.mode == "graph")
            yield Progress("train", step, total_steps, message=f"epoch {epoch + 1}/{cfg.epochs}", metrics=metrics)
        seconds = time.perf_counter() - t_epoch
        history.append(
            {
                "epoch": epoch + 1,
                "loss": ctx.all_reduce_mean(float(loss_sum.item()) / steps_per_epoch),
                "seconds": seconds,
                "spots_per_s": steps_per_epoch * batch * ctx.world_size / max(seconds, 1e-9),
                "lr": float(opt.param_groups[0]["lr"]),
                "temperature": float(model.temperature.detach()),
            }
        )
        if checkpoint is not None and ctx.is_main:
            save_checkpoint(
                checkpoint,
                {
                    "meta": meta,
                    "epoch": epoch + 1,
                    "history": history,
                    "model": model.state_dict(),
                    "optimizer": optimizer_state(opt),
                    "scheduler": scheduler_state(sched),
                    "rng": rng_state(np_rng),
                },
            )
        ctx.barrier()
    model.eval()
    sections = [section_name(a, i) for i, a in enumerate(samples)]
    if step_fn.compiled:
        uncompile_encoder(model)  # the returned model embeds banks eagerly, at any batch size
    return TrainResult(
        model,
        cfg,
        gene_list,
        sections,
        history,
        pos_shape,
        str(dev),
        ctx.is_main,
        step_fn.mode,
        step_fn.compiled,
        start_epoch,
    )

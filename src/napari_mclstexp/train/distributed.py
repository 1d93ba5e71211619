"""Multi-GPU / multi-node training with PyTorch's own engine (``torchrun`` + DistributedDataParallel).

Launch: ``torchrun --nproc-per-node N -m napari_mclstexp.cli train ...``.  ``torchrun`` sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them
and returns a :class:`DistContext`.  Without them it returns a single-process context whose methods are
identities, so a trainer has one code path for 1 and N processes.

How a trainer computes the contrastive (CLIP-style) loss so that N ranks train **exactly** the objective
of one big batch of ``N × B`` spots (B = per-rank batch):

1. Every rank draws the same global permutation (same seed, same epoch) and keeps
   ``ctx.shard(perm)``; batch ``j`` of rank ``r`` is ``shard[j*B:(j+1)*B]``.
2. Forward through the **wrapped** module (``ddp = ctx.wrap(model)``; DDP only synchronises
   gradients correctly when its own ``forward`` runs), e.g. ``img, spot = ddp(patches, expr, pos)``.
3. ``img_all = ctx.gather(img)``; ``spot_all = ctx.gather(spot)`` — (N·B, D) in rank order; only this
   rank's rows carry gradients (the other rows are constants).
4. ``loss = model.loss(img_all, spot_all) * ctx.world_size``; ``loss.backward()``.
   Every rank computes the full global loss L (mean over N·B rows).  Rank r's backward yields
   ``∂L/∂θ`` through its own rows only; summed over ranks this is the full ``∂L/∂θ``.  DDP *averages*
   gradients over ranks (divides the sum by N), hence the ``× world_size``: after DDP's all-reduce each
   rank holds exactly the single-process gradient of L over the global batch (tested in
   ``tests/train/test_distributed.py``).  Log ``loss.item() / ctx.world_size``.

Parameters that enter the loss directly on every rank rather than through the gathered embeddings
(a learnable temperature) receive ``world_size ×`` their gradient under this scheme, because every rank
differentiates the whole loss with respect to them: call ``ctx.unscale_shared_grads([log_temperature])``
after ``backward()`` and before ``optimizer.step()`` (tested too).

Distributed prediction: ``ctx.split(tile_indices)`` gives each rank a contiguous share of the tiles
(nothing dropped) and ``ctx.gather_objects(result)`` collects the per-rank results in rank order.

Caveats of equivalence: BatchNorm statistics are per rank (use ``nn.SyncBatchNorm.convert_sync_batchnorm``
for exact equality; DenseNet-121 otherwise normalises over B patches, which is fine in practice), and the
spot encoder's attention context (the whole mini-batch as one sequence in the ``paper`` preset) is the
rank's local B spots — keep B = 128 per rank to keep the reference's context and let the contrastive
batch grow to N × 128.  Checkpoints: write on ``ctx.is_main`` only, then ``ctx.barrier()``.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..device import resolve_device

__all__ = ["DistContext", "gather_with_grad", "init_distributed"]


def _distributed_device(device: str | torch.device, local_rank: int) -> torch.device:
    """Device of one rank: ``cuda:LOCAL_RANK`` for ``auto``/``cuda`` when CUDA exists, else CPU."""
    kind = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
    if kind in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    if kind == "cuda":
        from ..errors import InputError

        raise InputError("device 'cuda' requested under torchrun but CUDA is not available")
    return torch.device("cpu")


def gather_with_grad(t: Tensor) -> Tensor:
    """All-gather ``t`` along dim 0 from every rank; this rank's rows keep their gradient.

    Parameters
    ----------
    t
        Local tensor (B, ...); B must be the same on every rank.

    Returns
    -------
    Tensor
        (world_size · B, ...) in rank order.  Rows of other ranks are detached constants, so a loss
        over the result must be multiplied by ``world_size`` before ``backward()`` under DDP (see the
        module docstring).  Identity when the process group is absent or has one rank.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t
    world, rank = dist.get_world_size(), dist.get_rank()
    local = t.detach().contiguous()
    parts = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(parts, local)
    parts[rank] = t
    return torch.cat(parts, dim=0)


@dataclass
class DistContext:
    """Where this process sits in a (possibly single-process) training job.

    Attributes
    ----------
    rank, world_size, local_rank
        Global rank, number of processes, rank on this node.
    device
        The device this rank computes on (``cuda:LOCAL_RANK`` under torchrun with CUDA).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    _owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the one that logs and writes checkpoints)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether more than one process takes part."""
        return self.world_size > 1

    def wrap(self, model: nn.Module, **ddp_kwargs: Any) -> nn.Module:
        """Wrap ``model`` (already on :attr:`device`) in DistributedDataParallel when distributed.

        Parameters
        ----------
        model
            The module; its ``forward`` must compute everything the loss needs (DDP hooks run there).
        **ddp_kwargs
            Passed to :class:`torch.nn.parallel.DistributedDataParallel` (e.g.
            ``find_unused_parameters=True``).

        Returns
        -------
        nn.Module
            The DDP wrapper (``.module`` is ``model``), or ``model`` itself for one process.
        """
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        kwargs: dict[str, Any] = {"gradient_as_bucket_view": True, **ddp_kwargs}
        if self.device.type == "cuda":
            kwargs.setdefault("device_ids", [self.device.index])
            kwargs.setdefault("output_device", self.device.index)
        return DistributedDataParallel(model, **kwargs)

    def shard(self, indices: np.ndarray) -> np.ndarray:
        """This rank's equal-length share of a global permutation.

        Parameters
        ----------
        indices
            The same permutation on every rank (seed it identically, e.g. by seed + epoch).

        Returns
        -------
        np.ndarray
            ``indices[rank::world_size]`` after dropping the last ``len % world_size`` entries, so every
            rank runs the same number of steps (as ``DistributedSampler(drop_last=True)``).
        """
        indices = np.asarray(indices)
        if not self.distributed:
            return indices
        usable = len(indices) - len(indices) % self.world_size
        return indices[:usable][self.rank :: self.world_size]

    def unscale_shared_grads(self, params) -> None:
        """Divide the gradients of loss-level shared parameters by ``world_size`` (after backward).

        Parameters
        ----------
        params
            Parameters used by the loss itself on every rank (e.g. a learnable temperature), not only
            through this rank's embeddings; see the module docstring.  No-op for one process.
        """
        if not self.distributed:
            return
        for p in params:
            if p is not None and getattr(p, "grad", None) is not None:
                p.grad.div_(self.world_size)

    def split(self, indices: np.ndarray) -> np.ndarray:
        """This rank's contiguous part of ``indices`` with nothing dropped (for prediction).

        Parts differ in length by at most one (``np.array_split``); concatenating the parts of ranks
        0 … N-1 gives ``indices`` back.
        """
        indices = np.asarray(indices)
        if not self.distributed:
            return indices
        return np.array_split(indices, self.world_size)[self.rank]

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's picklable ``obj``, in rank order, on every rank (``[obj]`` for one process)."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def gather(self, t: Tensor) -> Tensor:
        """All-gather on dim 0 keeping gradients for the local rows (see :func:`gather_with_grad`)."""
        return gather_with_grad(t) if self.distributed else t

    def all_reduce_mean(self, x: float) -> float:
        """Mean of a Python number over ranks (for logging losses and rates)."""
        if not self.distributed:
            return float(x)
        t = torch.tensor([float(x)], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return float(t.item()) / self.world_size

    def barrier(self) -> None:
        """Wait for every rank (no-op for one process)."""
        if self.distributed:
            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def shutdown(self) -> None:
        """Destroy the process group if :func:`init_distributed` created it."""
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
        self._owns_group = False


def shutdown_distributed() -> bool:
    """Destroy the default process group if one is initialized (end of a ``torchrun`` command).

    DDP wrappers and autograd graphs that still reference the group are collected first: a gloo group
    whose threads outlive it can abort the process at exit, and torchrun then reports the job failed.

    Returns
    -------
    bool
        Whether a group was destroyed.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return False
    gc.collect()
    dist.destroy_process_group()
    return True


def init_distributed(device: str = "auto") -> DistContext:
    """Join the ``torchrun`` job described by the environment, or return a single-process context.

    Parameters
    ----------
    device
        ``"auto"``, ``"cuda"``, ``"cpu"``, ``"mps"`` or ``"cuda:K"``.  Under torchrun, ``auto``/``cuda``
        become ``cuda:LOCAL_RANK`` (backend ``nccl``); without CUDA the job runs on CPU with ``gloo``.

    Returns
    -------
    DistContext
        ``world_size == 1`` unless ``WORLD_SIZE`` > 1 is set (``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``,
        ``MASTER_PORT`` from torchrun).  An already initialised default process group is reused.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if dist.is_available() and dist.is_initialized():
        world = dist.get_world_size()
    if world <= 1:
        return DistContext(device=resolve_device(device))
    rank = dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    dev = _distributed_device(device, local_rank)
    owns = False
    if not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        backend = "nccl" if dev.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"backend": backend, "init_method": "env://", "rank": rank, "world_size": world}
        if dev.type == "cuda":
            kwargs["device_id"] = dev
        dist.init_process_group(**kwargs)
        owns = True
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, device=dev, _owns_group=owns)

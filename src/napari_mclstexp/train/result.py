"""What every trainer shares: the result type, the optimizer and the learning-rate schedule.

:mod:`~napari_mclstexp.train.trainer` (end-to-end), :mod:`~napari_mclstexp.train.frozen` (cached features of
a frozen encoder) and :mod:`~napari_mclstexp.train.ridge` (closed-form head) all build on this module, which
imports none of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..model.mclstexp import MclSTExp
from ..model.presets import TrainConfig

__all__ = ["TrainResult", "make_optimizer", "make_scheduler"]


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    model
        The trained :class:`~napari_mclstexp.model.mclstexp.MclSTExp` (eval mode, on ``device``).
    config
        The configuration used.
    genes
        The gene panel, in model order.
    train_sections
        Section names of the training samples.
    history
        One dict per epoch: ``epoch``, ``loss``, ``seconds``, ``spots_per_s``, ``lr``, ``temperature``.
    pos_shape
        Rows of the (x, y) position tables.
    device
        Device the model trained on (str).
    is_main
        False on the non-zero ranks of a distributed run (they must not write files).
    step_mode
        ``"graph"`` when the steps were replayed from a captured CUDA graph, else ``"eager"``.
    compiled
        Whether the image encoder trained ``torch.compile``-d (``config.compile`` and no fallback).
    start_epoch
        Epochs already done by the checkpoint this run resumed from (0: trained from the start).
    """

    model: MclSTExp
    config: TrainConfig
    genes: list[str]
    train_sections: list[str]
    history: list[dict[str, float]] = field(default_factory=list)
    pos_shape: tuple[int, int] = (1, 1)
    device: str = "cpu"
    is_main: bool = True
    step_mode: str = "eager"
    compiled: bool = False
    start_epoch: int = 0

    @property
    def train_seconds(self) -> float:
        """Summed wall time of the training epochs (s)."""
        return float(sum(h.get("seconds", 0.0) for h in self.history))


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """The optimizer of ``cfg`` (Adam or AdamW; fused kernels on CUDA) over ``model``'s parameters."""
    kind = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    extra = {"fused": True} if device.type == "cuda" else {}
    return kind(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, **extra)


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Cosine decay over ``total_steps`` optimizer steps when ``cfg.scheduler == "cosine"``, else a constant rate."""
    if cfg.scheduler == "cosine" and total_steps > 0:
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total_steps) / total_steps))
        )
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)

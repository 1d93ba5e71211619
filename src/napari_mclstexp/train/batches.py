"""What the trainer feeds on: the training data loaded once, and batches of patches served by index."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data.genes import expression_matrix, select_genes
from ..data.patches import iter_sample_patches, view_px
from ..data.slide_stain import training_normaliser
from ..model.mclstexp import spot_positions
from ..progress import Progress, ProgressGen
from ..sample import section_name
from .features import sample_patch_px

#: Share of free GPU memory the patch tensor may take to live on the GPU (else pinned host memory).
GPU_PATCH_FRACTION = 0.3


def load_training_data(samples, cfg, genes, cancel, patch_cache) -> ProgressGen[tuple]:
    """Generator: the panel, then every section's patches (through ``patch_cache``), normalised expression
    and position indices, concatenated; yields ``Progress("patches")`` over all sections.  With
    ``cfg.stain_normalize`` every section's patches are mapped to the sections' reference stain."""
    gene_list = list(select_genes(samples, genes))
    stain = training_normaliser(samples, cfg.stain_normalize)
    patches, expr, pos = [], [], []
    total, done = sum(int(a.n_obs) for a in samples), 0  # one "patches" count over all sections
    for i, adata in enumerate(samples):
        if cancel is not None:
            cancel.raise_if_cancelled()
        name = section_name(adata, i)
        read_px, out_px = view_px(sample_patch_px(adata, cfg), cfg.input_px, cfg.context_scale)
        gen = iter_sample_patches(adata, read_px, out_px, patch_cache, cancel, stain)
        while True:
            try:
                ev = next(gen)
            except StopIteration as stop:
                p = stop.value
                break
            yield Progress(
                "patches",
                done + min(int(ev.step), int(adata.n_obs)),
                total,
                message=f"section {name}: {ev.message}" if ev.message else f"section {name}",
            )
        patches.append(np.asarray(p))
        expr.append(np.asarray(expression_matrix(adata, gene_list, cfg.normalization), dtype=np.float32))
        pos.append(spot_positions(adata, cfg))
        done += int(adata.n_obs)
        yield Progress("patches", done, total, message=f"section {name} ({i + 1} of {len(samples)})")
    return gene_list, np.concatenate(patches), np.concatenate(expr), np.concatenate(pos)


class BatchSource:
    """Serves uint8 patch batches by index on the training device.

    CPU: plain indexing.  CUDA: the whole tensor on the GPU when it fits, else pinned host memory with
    two pinned staging buffers (gather on the host, asynchronous copy, no reuse before the copy ends).
    """

    def __init__(self, patches: np.ndarray, device: torch.device, batch: int) -> None:
        # a real copy: cached patches are read-only memory maps, which torch must not alias
        host = torch.from_numpy(np.array(patches, order="C", copy=True))
        self.device = device
        self.staging: list[torch.Tensor] = []
        self.events: list[Any] = []
        self.turn = 0
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if host.numel() < GPU_PATCH_FRACTION * free:
                self.data = host.to(device)
            else:
                self.data = host.pin_memory()
                shape = (batch, *host.shape[1:])
                self.staging = [torch.empty(shape, dtype=torch.uint8).pin_memory() for _ in range(2)]
                self.events = [None, None]
        else:
            self.data = host.to(device)

    @property
    def index_device(self) -> torch.device:
        """Device the indices given to :meth:`get` must live on (where the patch tensor is)."""
        return self.data.device

    def get(self, idx: torch.Tensor) -> torch.Tensor:
        """Patches ``idx`` (int64 on :attr:`index_device`) as uint8 (B, H, W, 3) on the training device."""
        if not self.staging:
            return self.data[idx]
        slot = self.turn % 2
        self.turn += 1
        if self.events[slot] is not None:
            self.events[slot].synchronize()
        buf = self.staging[slot][: len(idx)]
        torch.index_select(self.data, 0, idx, out=buf)
        out = buf.to(self.device, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self.events[slot] = event
        return out

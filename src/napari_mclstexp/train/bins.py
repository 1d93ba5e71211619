"""Training on Visium HD bins: a fresh spatially stratified sample of bins every epoch, a bounded bank.

A 6.5 mm section holds ~700,000 8 µm bins; an epoch need not visit them all, and holding every bin's
patch in memory would take tens of GB.  :func:`train_on_bins` trains epoch by epoch on
``bins_per_epoch`` bins drawn afresh (stratified over blocks of the bin grid, so every part of the
tissue is seen each epoch), continuing the same optimiser, scheduler and RNG state through the
trainer's own checkpoint/resume (:func:`~napari_mclstexp.train.trainer.train`).  Patch memory is
bounded by ``bins_per_epoch``.  :func:`bank_samples` bounds the reference bank the same way.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..progress import CancelToken, Progress, ProgressGen


def _grid(adata: Any) -> tuple[np.ndarray, np.ndarray]:
    if "array_row" in adata.obs and "array_col" in adata.obs:
        return adata.obs["array_row"].to_numpy(np.int64), adata.obs["array_col"].to_numpy(np.int64)
    xy = np.asarray(adata.obsm["spatial"], dtype=np.float64)
    return np.floor(xy[:, 1]).astype(np.int64), np.floor(xy[:, 0]).astype(np.int64)


def stratified_subsample(adata: Any, n: int, *, seed: int = 0, per_block: int = 8, anchors: bool = True) -> np.ndarray:
    """Indices of ``n`` bins drawn evenly over square blocks of the bin grid (proportional allocation).

    Parameters
    ----------
    adata
        Binned sample (``obs['array_row'/'array_col']``; else pixel centres are used).
    n
        Bins to draw (all when ``n >= n_obs``).
    seed
        Random seed.
    per_block
        Target draws per block: blocks are ``sqrt(N · per_block / n)`` bins wide.
    anchors
        Always include the bins of largest row and largest column, so that position tables sized on
        a sample (``pos_table="data"``) keep the same size from one sample to the next.

    Returns
    -------
    np.ndarray
        Sorted int64 indices.
    """
    total = int(adata.n_obs)
    if n >= total:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    rows, cols = _grid(adata)
    edge = max(1, int(np.sqrt(total * per_block / max(n, 1))))
    block = (rows // edge) * (int(cols.max()) // edge + 1) + cols // edge
    # a random rank within the block, scaled by the block's size: the n smallest keys take from every
    # block in proportion to its size (largest-remainder style), randomly within it
    order = rng.permutation(total)
    _, inverse, counts = np.unique(block[order], return_inverse=True, return_counts=True)
    rank = np.empty(total, np.int64)
    sorter = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank[sorter] = np.arange(total) - np.repeat(starts, counts)
    key = np.empty(total)
    key[order] = (rank + rng.random(total)) / counts[inverse]
    chosen = set()
    if anchors:
        chosen = {int(np.argmax(rows)), int(np.argmax(cols))}
    picked = [i for i in np.argsort(key, kind="stable")[:n] if i not in chosen][: n - len(chosen)]
    return np.sort(np.asarray(sorted(chosen) + picked, dtype=np.int64))


def _split(total: int, sizes: Sequence[int]) -> list[int]:
    """``total`` draws shared among samples in proportion to their sizes (each at most its size)."""
    sizes = np.asarray(sizes, dtype=np.float64)
    share = np.floor(total * sizes / sizes.sum()).astype(int)
    share[: total - share.sum()] += 1
    return [int(min(s, z)) for s, z in zip(share, sizes, strict=True)]


def subsample_samples(samples: Sequence[Any], total: int, *, seed: int = 0) -> list[Any]:
    """Stratified subsample of ``total`` bins over several samples (copies; all bins when fewer)."""
    shares = _split(total, [a.n_obs for a in samples])
    return [
        a[stratified_subsample(a, s, seed=seed + 7919 * i)].copy()
        for i, (a, s) in enumerate(zip(samples, shares, strict=True))
    ]


def bank_samples(samples: Sequence[Any], bank_size: int | None, *, seed: int = 0) -> list[Any]:
    """The samples whose bins make the reference bank, bounded to ``bank_size`` bins (``None``: all)."""
    if bank_size is None or bank_size >= sum(a.n_obs for a in samples):
        return list(samples)
    return subsample_samples(samples, int(bank_size), seed=seed + 1)


def train_on_bins(
    samples: Sequence[Any],
    config: Any,
    *,
    bins_per_epoch: int,
    genes: Any = None,
    device: str = "auto",
    checkpoint: str | os.PathLike | None = None,
    cancel: CancelToken | None = None,
    patch_cache: Any = None,
    patch_um: float | None = 110.0,
) -> ProgressGen[Any]:
    """Train on a fresh stratified sample of ``bins_per_epoch`` bins each epoch.

    Parameters
    ----------
    samples
        Binned samples with images (e.g. from :func:`~napari_mclstexp.io.visium_hd.read_visium_hd`).
    config
        A :class:`~napari_mclstexp.model.presets.TrainConfig` (``epochs``, ``seed`` used here).
    bins_per_epoch
        Bins per epoch over all samples (shared in proportion to their sizes).
    genes
        Gene spec (as :func:`~napari_mclstexp.data.genes.select_genes`), resolved once on all bins.
    checkpoint
        Checkpoint carrying the state from one epoch to the next (default: a temporary file).
    patch_um
        Patch edge in µm centred on each bin (a bin is 2–16 µm; its patch shows ~110 µm of context,
        as a Visium spot's); sets ``patch_px`` from the first sample's µm per pixel when it is known.
        ``None`` keeps ``config.patch_px``.

    Yields
    ------
    Progress
        The trainer's events for each epoch (``"patches"``, ``"train"``).

    Returns
    -------
    TrainResult
        As :func:`~napari_mclstexp.train.trainer.train` after the last epoch (history over all epochs).
    """
    from ..data.genes import select_genes
    from ..model.presets import as_config
    from ..sample import microns_per_pixel
    from .trainer import train

    cfg = as_config(config)
    mpp = microns_per_pixel(samples[0]) if samples else None
    if patch_um and mpp:
        cfg = cfg.replace(patch_px=max(8, int(round(patch_um / mpp))))
    gene_list = select_genes(list(samples), genes)
    with tempfile.TemporaryDirectory(prefix="mclstexp-bins-") as tmp:
        ckpt = Path(checkpoint) if checkpoint is not None else Path(tmp) / "bins.ckpt"
        result = None
        for epoch in range(cfg.epochs):
            if cancel is not None:
                cancel.raise_if_cancelled()
            yield Progress("bins", epoch, cfg.epochs, message=f"sampling {bins_per_epoch} bins for epoch {epoch + 1}")
            chosen = subsample_samples(samples, bins_per_epoch, seed=cfg.seed + 104729 * epoch)
            result = yield from train(
                chosen,
                cfg.replace(epochs=epoch + 1),
                genes=gene_list,
                device=device,
                checkpoint=ckpt,
                resume=epoch > 0,
                cancel=cancel,
                patch_cache=patch_cache,
            )
        if result is not None and hasattr(result, "start_epoch"):
            result.start_epoch = 0  # one run of cfg.epochs epochs, not a resumed one
        return result

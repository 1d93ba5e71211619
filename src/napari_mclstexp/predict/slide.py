"""Whole-slide prediction without any ST data: a tile grid over the tissue, batched, streamed.

Pipeline: tissue mask on the slide thumbnail (:mod:`.tissue`) → the grid tiles with enough tissue →
blocks of neighbouring tiles read lazily from the pyramid level that matches the encoder's input
resolution by a small pool of worker threads (bounded prefetch; they also describe the tissue of each block
from its read) → batched image embeddings (bf16 autocast on CUDA) → retrieval on the same device (blended
with the descriptor trees' predictions, on the CPU meanwhile) → ``on_tile`` per batch.  The result is an
AnnData of tile centres on a regular grid, shown as an image with one pixel per tile (:func:`grid_image`).
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ..data.patches import view_px
from ..progress import CancelToken, Progress, ProgressGen
from . import smoothing
from .descriptor_model import blend, centre, describe_px, descriptor_weight, predict_tiles, read_scale, tile_descriptors
from .embedder import ImageEmbedder
from .grid import TileGrid, grid_image, tile_grid  # noqa: F401 - the grid lives in .grid; also imported from here
from .heads import predict_from_embeddings
from .novelty import wants_descriptors
from .options import DEFAULT, PredictOptions
from .smoothing import bundle_alpha, neighbour_graph
from .spots import (
    bundle_embedder,
    bundle_precision,
    default_batch,
    patch_px_for,
    prediction_anndata,
    provenance,
    resolve,
)
from .stain_choice import stain_normaliser, stain_record
from .tiles import group_blocks, tile_batches
from .tissue import slide_tissue_mask, tile_tissue_fraction

if TYPE_CHECKING:
    from ..bundle import Bundle

#: Width (full-res px) of the vertical bands tiles are read in, row by row (see ``tiles.group_blocks``).
BAND_PX = 8192
#: Callback receiving ``(xy (B, 2) float full-res px tile centres, prediction (B, G) float32)``.
OnTile = Callable[[np.ndarray, np.ndarray], None]
#: Callback receiving the :class:`TileGrid` a whole-slide run uses, once, before any tile is predicted.
OnGrid = Callable[["TileGrid"], None]


@dataclass
class _InFlight:
    """One batch launched on the device whose results are being copied back."""

    idx: np.ndarray
    prediction: torch.Tensor
    uncertainty: torch.Tensor
    embedding: torch.Tensor
    event: Any = None
    from_descriptors: np.ndarray | None = None
    descriptors: np.ndarray | None = None

    def wait(self) -> None:
        if self.event is not None:
            self.event.synchronize()


def _to_host(t: torch.Tensor) -> torch.Tensor:
    """Start copying ``t`` to (pinned) host memory without waiting."""
    if t.device.type != "cuda":
        return t.detach().cpu()
    out = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    return out.copy_(t, non_blocking=True)


def _launch(
    embedder: ImageEmbedder,
    batch: torch.Tensor,
    idx: np.ndarray,
    bundle: Bundle,
    k: int,
    distance: str,
    device: torch.device,
) -> _InFlight:
    """Embed and retrieve (or, ridge, predict) one batch; on CUDA this only queues the work and the copies back."""
    e = embedder(batch)
    r = predict_from_embeddings(e, bundle, k, distance)
    item = _InFlight(idx, _to_host(r.prediction), _to_host(r.uncertainty), _to_host(e))
    if device.type == "cuda":
        item.event = torch.cuda.Event()
        item.event.record()
    return item


def predict_whole_slide(
    bundle: Bundle,
    image_path: str | os.PathLike,
    options: PredictOptions = DEFAULT,
    *,
    step_px: int | None = None,
    tiles_per_patch: int = 1,
    min_tissue: float = 0.25,
    detect_tissue: bool = True,
    workers: int | None = None,
    block_tiles: int = 8,
    use_pyramid: bool = True,
    cancel: CancelToken | None = None,
    on_tile: OnTile | None = None,
    dist: Any = None,
    mpp: float | None = None,
    tissue: tuple[np.ndarray, float] | None = None,
    on_grid: OnGrid | None = None,
) -> ProgressGen[Any]:
    """Predict expression on a tile grid over the tissue of a whole-slide image.

    Parameters
    ----------
    bundle
        A loaded :class:`~napari_mclstexp.bundle.Bundle`.
    image_path
        The slide (any format :func:`~napari_mclstexp.io.wsi.open_slide` reads).
    options
        :class:`~napari_mclstexp.predict.options.PredictOptions`; smoothing blends each tile with its grid
        neighbours (``on_tile`` streams the tiles before it), descriptor reads cover 3 × the patch.
    step_px
        Distance between tile centres in full-res px; default: the patch size divided by
        ``tiles_per_patch`` (1: tiles touch; 2: they overlap by half, 4× the tiles, a finer map).
    min_tissue
        Tiles whose square of ``patch`` px holds less tissue than this fraction are skipped.
    detect_tissue
        ``False`` predicts every tile.
    workers
        Threads reading tiles (default: CPU count, at most 8) (each reads blocks of ``block_tiles`` ×
        ``block_tiles`` tiles with one region read); at most ``2 × workers`` blocks are read ahead.
    use_pyramid
        Read from the coarsest pyramid level not coarser than the encoder's input scale
        (``patch_px / input_px``); ``False`` reads level 0 and downsizes.
    cancel
        Checked between batches.
    on_tile
        Called as ``on_tile(xy, prediction)`` after each batch: tile centres ``(B, 2)`` in full-res
        px and predictions ``(B, G)`` float32 (grid indices: ``TileGrid.indices(xy)``).
    dist
        A :class:`~napari_mclstexp.train.distributed.DistContext` under ``torchrun``: each rank
        predicts its contiguous share of the tissue tiles (``dist.split``) on its own device, then
        the parts are gathered so every rank returns the whole result (``on_tile`` sees only the
        rank's own tiles).  Give ``options`` with ``device=dist.device``.
    mpp
        µm per level-0 px when the file does not record it (JPEG/PNG; e.g. from the spots' sample):
        sets the patch size from the bundle's ``patch_um`` as at spots.  The file's own value wins.
    tissue
        ``(mask, scale)``: a tissue mask the user checked or painted (bool, ``scale`` = mask px per
        full-res px), used instead of detecting one (:func:`~.tissue.slide_tissue_mask`).
    on_grid
        Called once with the :class:`TileGrid` (step, origin, shape, patch px) before the first tile,
        so a viewer can lay out the map the tiles stream into without deciding the grid itself.

    Yields
    ------
    Progress
        Stage ``"tissue"`` then ``"predict"`` (metrics ``tiles_per_s``, ``eta_s``).

    Returns
    -------
    anndata.AnnData
        One observation per predicted tile: ``X`` predicted normalised expression, ``obsm['spatial']``
        tile centres (full-res px), ``obs['array_col'/'array_row']`` grid indices,
        ``obs['tissue_fraction']``, ``obs['uncertainty']``, ``obsm['embedding']``, and
        ``uns['mclstexp']['grid']`` (``step_px``, ``origin_xy``, ``shape`` (rows, cols), ``patch_px``).
    """
    from ..io.wsi import open_slide

    dev = resolve(options.device)
    k = int(options.k or bundle.config["k"])
    distance = options.distance or bundle.config["distance"]
    batch_size = int(options.batch_size or default_batch(dev, bundle))
    precision, tta = options.precision, options.tta
    input_px = int(bundle.config["input_px"])
    path = Path(image_path)
    with open_slide(path) as slide:
        slide_mpp = slide.mpp or mpp
        patch_px = patch_px_for(bundle, slide_mpp)
        grid = tile_grid(slide.shape, int(step_px or max(1, patch_px // max(1, int(tiles_per_patch)))), patch_px)
        if on_grid is not None:
            on_grid(grid)
        rows, cols = np.indices(grid.shape).reshape(2, -1)
        xy = grid.centres(cols, rows)
        yield Progress("tissue", 0, 1, message="finding tissue")
        if tissue is not None:
            frac = tile_tissue_fraction(np.asarray(tissue[0]) > 0, float(tissue[1]), xy, patch_px)
        elif detect_tissue:
            mask, scale = slide_tissue_mask(slide)
            frac = tile_tissue_fraction(mask, scale, xy, patch_px)
        else:
            frac = np.ones(len(xy))
        keep = frac >= min_tissue
        rows, cols, xy, frac = rows[keep], cols[keep], xy[keep], frac[keep]
        yield Progress("tissue", 1, 1, message=f"{len(xy)} of {keep.size} tiles on tissue")
        if not len(xy):
            warnings.warn(f"{path}: no tissue found; nothing predicted", UserWarning, stacklevel=2)
        level = slide.best_level(patch_px / input_px) if use_pyramid else 0
        normaliser = stain_normaliser(bundle, options.stain)  # the slide's estimate: once, shared with its spots
        stain_map = normaliser.map_for(path) if normaliser is not None and len(xy) else None
        embedder = (
            bundle_embedder(bundle, dev, precision or bundle_precision(bundle), batch_size, tta) if len(xy) else None
        )

        n, g = len(xy), len(bundle.genes)
        mine = dist.split(np.arange(n)) if dist is not None else np.arange(n)  # this rank's tiles
        n_mine = len(mine)
        pred = np.zeros((n, g), np.float32)
        unc = np.zeros(n, np.float32)
        emb = np.zeros((n, int(bundle.config["embed_dim"])), np.float32)
        # sparse grids: one read per tile instead of reading the gaps between tiles
        bt = 1 if grid.step_px > 2 * patch_px else max(1, int(block_tiles))
        band = max(1, BAND_PX // (bt * grid.step_px))  # blocks per band: rows of a band share cached tiles
        blocks = [mine[b] for b in group_blocks(cols[mine], rows[mine], bt, band)]
        workers = int(workers or min(8, os.cpu_count() or 1))
        done, t0 = 0, time.perf_counter()

        def finish(item: _InFlight) -> None:
            item.wait()
            p = item.prediction.numpy()
            if item.from_descriptors is not None:
                p = blend(p, item.from_descriptors, weight)
            if item.descriptors is not None:
                desc[item.idx] = item.descriptors
            pred[item.idx], unc[item.idx], emb[item.idx] = p, item.uncertainty.numpy(), item.embedding.numpy()
            if on_tile is not None:
                on_tile(xy[item.idx], p)

        weight, scale = descriptor_weight(bundle, options.descriptors), int(bundle.config.get("context_scale", 1))
        describe = 1.0 if weight > 0 or wants_descriptors(bundle, options.descriptors) else 0.0  # blend, novelty
        desc = np.zeros((n, len(bundle.descriptors[0]) if describe else 0), np.float32)
        read_px, out_px = view_px(patch_px, input_px, read_scale(bundle, describe))
        pin, desc_px = dev.type == "cuda", describe_px(bundle, describe, patch_px)  # readers describe the tiles
        batches = tile_batches(
            slide, xy, blocks, read_px, out_px, level, batch_size, workers, pin, desc_px, dev, stain_map=stain_map
        )
        previous: _InFlight | None = None
        with contextlib.closing(batches):
            for idx, batch, described in batches:
                if cancel is not None:
                    cancel.raise_if_cancelled()
                # launch this batch on the device, then collect the previous one while it runs
                current = _launch(embedder, centre(batch, input_px * scale), idx, bundle, k, distance, dev)
                if describe:  # the descriptors and trees on the CPU while the device embeds
                    current.descriptors = tile_descriptors(bundle, batch, described)
                if weight > 0:
                    current.from_descriptors = predict_tiles(bundle, batch, current.descriptors)
                if dev.type != "cuda":  # synchronous device: nothing to overlap, stream at once
                    previous, current = current, None
                if previous is not None:
                    finish(previous)
                    done += len(previous.idx)
                previous = current
                if done:
                    rate = done / max(time.perf_counter() - t0, 1e-9)
                    yield Progress(
                        "predict",
                        done,
                        n_mine,
                        message=f"tiles of {path.name}",
                        metrics={"tiles_per_s": rate, "eta_s": (n_mine - done) / max(rate, 1e-9)},
                    )
            if previous is not None:
                finish(previous)
                done += len(previous.idx)
                rate = done / max(time.perf_counter() - t0, 1e-9)
                yield Progress(
                    "predict",
                    done,
                    n_mine,
                    message=f"tiles of {path.name}",
                    metrics={"tiles_per_s": rate, "eta_s": 0.0},
                )
        if dist is not None and getattr(dist, "world_size", 1) > 1:
            for part, p, u, e, d in dist.gather_objects((mine, pred[mine], unc[mine], emb[mine], desc[mine])):
                pred[part], unc[part], emb[part], desc[part] = p, u, e, d
        alpha = bundle_alpha(bundle, options.smooth)
        if alpha > 0:
            pred = smoothing.smooth(pred, neighbour_graph(np.c_[cols, rows]), alpha)  # grid neighbours

        info = provenance(
            bundle,
            k,
            distance,
            mode="whole_slide",
            source_image_path=str(path.resolve()),
            patch_px=int(patch_px),
            input_px=input_px,
            level=int(level),
            min_tissue=float(min_tissue),
            tta=bool(bundle.config.get("tta", False) if tta is None else tta),
            grid=grid.to_dict(),
            neighbour_alpha=alpha,
            descriptor_weight=weight,
            stain=stain_record(normaliser, options.stain, path),
        )
        lib = path.stem
        meta: dict[str, Any] = {"source_image_path": str(path.resolve())}
        if slide_mpp:
            meta["microns_per_pixel"] = float(slide_mpp)
        uns_spatial = {lib: {"scalefactors": {"spot_diameter_fullres": float(grid.step_px)}, "metadata": meta}}
    obs = pd.DataFrame(
        {
            "array_col": cols.astype(np.int64),
            "array_row": rows.astype(np.int64),
            "section": pd.Categorical([lib] * len(cols)),
            "tissue_fraction": frac.astype(np.float32),
        },
        index=pd.Index([f"tile_{c}x{r}" for c, r in zip(cols, rows, strict=True)], dtype=object),
    )
    return prediction_anndata(bundle, pred, unc, emb, obs, xy, info, uns_spatial, desc if desc.shape[1] else None)

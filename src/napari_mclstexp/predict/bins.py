"""Prediction at every bin of a Visium HD section: bounded memory, neighbouring bins read together.

Bins are spots whose patch (the bundle's µm size, ~110 µm) is centred on the bin; neighbouring bins'
patches overlap almost entirely, so bins are grouped into square blocks of the bin grid and each block
is read with one region read from the pyramid level matching the encoder's input scale, by worker
threads with bounded read-ahead (the whole-slide reader, :mod:`.tiles`).  Batches are embedded and
retrieved as they come; only per-bin results are kept, so memory does not grow with patches.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.patches import view_px
from ..progress import CancelToken, Progress, ProgressGen
from ..sample import image_path, library_id, microns_per_pixel, spot_xy
from .options import DEFAULT, PredictOptions

if TYPE_CHECKING:
    from anndata import AnnData

    from ..bundle import Bundle

#: Bins per block edge read with one region read (16 × 16 bins of 8 µm = 128 µm + one patch).
BLOCK_BINS = 16


def predict_at_bins(
    bundle: Bundle,
    adata: AnnData,
    options: PredictOptions = DEFAULT,
    *,
    use_pyramid: bool = True,
    block_bins: int = BLOCK_BINS,
    workers: int | None = None,
    cancel: CancelToken | None = None,
) -> ProgressGen[Any]:
    """Predict expression at every bin of ``adata`` from its H&E image.

    Parameters
    ----------
    bundle
        A loaded :class:`~napari_mclstexp.bundle.Bundle`.
    adata
        Binned sample with its image (``obs['array_row'/'array_col']``; never modified).
    options
        :class:`~napari_mclstexp.predict.options.PredictOptions` (``smooth`` does not apply: bins are never
        smoothed).
    use_pyramid
        Read from the coarsest pyramid level not coarser than the encoder's input scale; ``False``
        reads level 0 and resizes (then equal to :func:`predict_at_spots`).
    block_bins
        Bins per block edge read at once.
    workers
        Reading threads (default: CPU count, at most 8).
    cancel
        Checked between batches.

    Yields
    ------
    Progress
        Stage ``"bins"``: bins done / total (metrics ``bins_per_s``, ``eta_s``).

    Returns
    -------
    anndata.AnnData
        As :func:`predict_at_spots` (input order, ``obs``, ``obsm['spatial']``), plus ``uns['bin_grid']``.
    """
    from ..errors import SampleFormatError
    from ..io.wsi import open_slide
    from .descriptor_model import (
        blend,
        bundle_descriptor_model,
        centre,
        describe_px,
        descriptor_weight,
        read_scale,
        tile_descriptors,
    )
    from .novelty import wants_descriptors
    from .slide import _launch
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

    dev = resolve(options.device)
    k = int(options.k or bundle.config["k"])
    distance = options.distance or bundle.config["distance"]
    batch_size = int(options.batch_size or default_batch(dev, bundle))
    precision, tta = options.precision, options.tta
    input_px = int(bundle.config["input_px"])
    patch_px = patch_px_for(bundle, microns_per_pixel(adata))
    path = image_path(adata)
    if path is None or not path.is_file():
        raise SampleFormatError("predicting at bins needs the section's H&E image (import with --image)", path)
    xy = spot_xy(adata)
    n, g = len(xy), len(bundle.genes)
    normaliser = stain_normaliser(bundle, options.stain)
    stain_map = normaliser.map_for(path) if normaliser is not None else None
    rows = adata.obs["array_row"].to_numpy(np.int64) if "array_row" in adata.obs else np.floor(xy[:, 1]).astype(int)
    cols = adata.obs["array_col"].to_numpy(np.int64) if "array_col" in adata.obs else np.floor(xy[:, 0]).astype(int)
    pred = np.zeros((n, g), np.float32)
    unc = np.zeros(n, np.float32)
    emb = np.zeros((n, int(bundle.config["embed_dim"])), np.float32)
    embedder = bundle_embedder(bundle, dev, precision or bundle_precision(bundle), batch_size, tta)
    weight = descriptor_weight(bundle, options.descriptors)
    describe = (
        1.0 if weight > 0 or wants_descriptors(bundle, options.descriptors) else 0.0
    )  # read once for blend and novelty
    desc: np.ndarray | None = None
    scale = int(bundle.config.get("context_scale", 1))
    done, t0 = 0, time.perf_counter()
    yield Progress("bins", 0, n, message=f"{n} bins, {patch_px} px patches")
    with open_slide(path) as slide:
        level = slide.best_level(patch_px / input_px) if use_pyramid else 0
        blocks = group_blocks(cols - cols.min(), rows - rows.min(), max(1, int(block_bins)))
        batches = tile_batches(
            slide,
            xy,
            blocks,
            *view_px(patch_px, input_px, read_scale(bundle, describe)),
            level,
            batch_size,
            int(workers or min(8, os.cpu_count() or 1)),
            pin=dev.type == "cuda",
            describe_px=describe_px(bundle, describe, patch_px),
            device=dev,
            stain_map=stain_map,
        )
        with contextlib.closing(batches):
            for idx, batch, described in batches:
                if cancel is not None:
                    cancel.raise_if_cancelled()
                item = _launch(embedder, centre(batch, input_px * scale), idx, bundle, k, distance, dev)
                d = tile_descriptors(bundle, batch, described) if describe else None
                if d is not None:
                    desc = np.zeros((n, d.shape[1]), np.float32) if desc is None else desc
                    desc[idx] = d
                from_descriptors = bundle_descriptor_model(bundle).predict(d) if weight > 0 else None
                item.wait()
                pred[idx], unc[idx], emb[idx] = (
                    item.prediction.numpy(),
                    item.uncertainty.numpy(),
                    item.embedding.numpy(),
                )
                if from_descriptors is not None:
                    pred[idx] = blend(pred[idx], from_descriptors, weight)
                done += len(idx)
                rate = done / max(time.perf_counter() - t0, 1e-9)
                yield Progress(
                    "bins",
                    done,
                    n,
                    message="bins predicted",
                    metrics={"bins_per_s": rate, "eta_s": (n - done) / max(rate, 1e-9)},
                )
    info = provenance(
        bundle,
        k,
        distance,
        mode="bins",
        source_sample=library_id(adata),
        source_image_path=str(path),
        patch_px=int(patch_px),
        input_px=input_px,
        level=int(level),
        tta=bool(bundle.config.get("tta", False) if tta is None else tta),
        descriptor_weight=weight,
        stain=stain_record(normaliser, options.stain, path),
    )
    spatial = adata.uns.get("spatial")
    out = prediction_anndata(
        bundle,
        pred,
        unc,
        emb,
        adata.obs,
        adata.obsm["spatial"],
        info,
        uns_spatial=copy.deepcopy(spatial) if isinstance(spatial, dict) else None,
        descriptors=desc,
    )
    if "bin_grid" in adata.uns:
        out.uns["bin_grid"] = copy.deepcopy(dict(adata.uns["bin_grid"]))
    return out

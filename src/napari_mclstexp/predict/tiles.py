"""Reading tiles of a slide for whole-slide prediction: block reads, worker threads, bounded read-ahead.

Neighbouring tiles are grouped into square blocks read with one region read each (one decode of the
pyramid tiles they share) by a pool of threads, which also describe the tiles' tissue from the same read
(each pixel once, :func:`~..data.descriptors.grid_descriptors`); batches are assembled in (pinned) host memory ready for
an asynchronous copy to the GPU.  A slide's stain mapping (:class:`~..data.stain.StainMap`) is applied by the reading
threads to the resized crops and to the descriptors' resampled view, as spot patches and spot reads are mapped after
their resize (:func:`~..data.patches.iter_sample_patches`): spots and tiles see the same pixels.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch


def group_blocks(
    cols: np.ndarray, rows: np.ndarray, block_tiles: int, band_blocks: int | None = None
) -> list[np.ndarray]:
    """Group selected tiles into square blocks of ``block_tiles`` grid cells.

    Blocks are ordered row by row within vertical bands ``band_blocks`` blocks wide (default: one
    band), so consecutive block rows share the pyramid tiles a bounded tile cache still holds.
    """
    bc, br = cols // block_tiles, rows // block_tiles
    band_blocks = int(band_blocks) if band_blocks else int(bc.max(initial=0)) + 1
    n_bc = int(bc.max(initial=0)) + 1
    n_br = int(br.max(initial=0)) + 1
    key = ((bc // band_blocks) * n_br + br) * n_bc + bc
    order = np.argsort(key, kind="stable")
    splits = np.flatnonzero(np.diff(key[order])) + 1
    return np.split(order, splits) if len(order) else []


def read_block(
    slide: Any,
    xy: np.ndarray,
    patch_px: int,
    out_px: int,
    level: int,
    describe_px: int = 0,
    device: Any = None,
    stain_map: Any = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Crops around ``xy`` (full-res px) read with one region read at ``level``, resized to ``out_px`` and
    mapped by ``stain_map`` when given.

    With ``describe_px`` (the spot patch's edge, full-res px) the same read, widened to the descriptors'
    context, also gives the tiles' tissue descriptors (:func:`describe_region`; on ``device`` if CUDA);
    else ``None``.
    """
    from PIL import Image

    ds = float(slide.downsamples[level])
    corners = np.floor(xy).astype(np.int64) - patch_px // 2  # same centring as data.patches
    size_l = max(1, int(round(patch_px / ds)))
    cl = np.floor(corners / ds).astype(np.int64)
    x0, y0 = cl.min(axis=0)
    x1, y1 = cl.max(axis=0) + size_l
    view = _descriptor_view(xy, describe_px, ds) if describe_px else None
    if view is not None:
        box = view[0]
        x0, y0 = min(x0, int(np.floor(box[0]))), min(y0, int(np.floor(box[1])))
        x1, y1 = max(x1, int(np.ceil(box[2]))), max(y1, int(np.ceil(box[3])))
    region = slide.read_region(int(x0), int(y0), int(x1 - x0), int(y1 - y0), level)
    image = Image.fromarray(np.ascontiguousarray(region))
    if size_l != out_px:  # Pillow LANCZOS of each crop, like the training patches (data.patches)
        # cropped, resized and laid out by Pillow, converted once: no array round trip per tile
        sheet = Image.new("RGB", (out_px, out_px * len(xy)))
        for i, (cx, cy) in enumerate((cl - (x0, y0)).tolist()):
            crop = image.crop((cx, cy, cx + size_l, cy + size_l))
            sheet.paste(crop.resize((out_px, out_px), Image.Resampling.LANCZOS), (0, i * out_px))
        out = np.array(sheet).reshape(len(xy), out_px, out_px, 3)
    else:
        out = np.empty((len(xy), out_px, out_px, 3), dtype=np.uint8)
        for i, (cx, cy) in enumerate(cl - (x0, y0)):
            out[i] = region[cy : cy + size_l, cx : cx + size_l]
    if stain_map is not None:
        out = stain_map(out)
    if view is None:
        return out, None
    described = describe_region(
        region, (x0, y0), *view, ds=ds, describe_px=describe_px, device=device, stain_map=stain_map, image=image
    )
    return out, described


def _descriptor_view(xy: np.ndarray, describe_px: int, ds: float) -> tuple[tuple[float, ...], tuple[int, int], Any]:
    """Where the tiles' descriptor reads (as :func:`~..data.descriptors.iter_sample_descriptors` makes them)
    lie: the level px box (x0, y0, x1, y1) holding them all, that box's size at the descriptors' scale, and
    each read's (x, y) offset in it; or, when the reads are not whole descriptor px apart, their full-res
    corners (each read is then resampled alone)."""
    from ..data.descriptors import CELL_PX, READ_PX, read_edge

    unit = describe_px / CELL_PX  # full-res px per descriptor px
    edge = read_edge(describe_px)
    corners = np.floor(xy).astype(np.int64) - edge // 2  # as data.patches centres a read
    rel = (corners - corners.min(axis=0)) / unit
    pad = 3 * max(unit, edge / READ_PX) + 2  # the resampling filter's reach beyond a read, full-res px
    lo, hi = corners.min(axis=0) - pad, corners.max(axis=0) + edge + pad
    box = (lo[0] / ds, lo[1] / ds, hi[0] / ds, hi[1] / ds)
    if not np.allclose(rel, np.rint(rel), atol=1e-6):
        return box, (0, 0), corners
    offsets = np.rint(rel).astype(np.int64)
    size = offsets.max(axis=0) + READ_PX
    origin = corners.min(axis=0)
    exact = (origin[0] / ds, origin[1] / ds, (origin[0] + size[0] * unit) / ds, (origin[1] + size[1] * unit) / ds)
    return box, (int(size[0]), int(size[1]), *exact), offsets


def describe_region(
    region: np.ndarray,
    region_xy: tuple[int, int],
    box: tuple[float, ...],
    size: tuple,
    offsets: np.ndarray,
    ds: float = 1.0,
    describe_px: int = 0,
    device: Any = None,
    stain_map: Any = None,
    image: Any = None,
) -> np.ndarray:
    """Tissue descriptors of tiles from one region read: the tiles' reads resampled once as one image
    (Pillow LANCZOS, as spot reads) and described cell by cell (:func:`~..data.descriptors.grid_descriptors`,
    on ``device`` if CUDA); or, for reads not whole descriptor px apart, each read cut and resampled alone.
    ``stain_map``: applied to the resampled reads, as to spot reads; ``image``: ``region`` as a Pillow image
    when the caller has one."""

    def mapped(rgb: np.ndarray) -> np.ndarray:
        return rgb if stain_map is None else stain_map(rgb)

    from PIL import Image

    from ..data.descriptors import READ_PX, grid_descriptors, read_edge, tissue_descriptors

    x0, y0 = region_xy
    image = Image.fromarray(np.ascontiguousarray(region)) if image is None else image
    if not size[0]:  # one read at a time, as data.patches reads a spot (crop, then resize)
        edge = read_edge(describe_px)
        reads = np.empty((len(offsets), READ_PX, READ_PX, 3), np.uint8)
        lanczos = Image.Resampling.LANCZOS
        for i, (cx, cy) in enumerate(offsets):
            lx, ly, e = cx / ds - x0, cy / ds - y0, edge / ds
            if ds == 1:
                crop = np.ascontiguousarray(region[int(ly) : int(ly) + edge, int(lx) : int(lx) + edge])
                reads[i] = np.asarray(Image.fromarray(crop).resize((READ_PX, READ_PX), lanczos))
            else:
                reads[i] = np.asarray(image.resize((READ_PX, READ_PX), lanczos, box=(lx, ly, lx + e, ly + e)))
        return tissue_descriptors(mapped(reads))
    w, h, bx0, by0, bx1, by1 = size
    rel = (bx0 - x0, by0 - y0, bx1 - x0, by1 - y0)
    view = mapped(np.asarray(image.resize((w, h), Image.Resampling.LANCZOS, box=rel)))
    return grid_descriptors(view, offsets, device)


def take_batch(pieces: deque, n: int, pin: bool) -> tuple[np.ndarray, torch.Tensor, np.ndarray | None]:
    """Pop the first ``n`` tiles of ``pieces`` ((idx, patches, descriptors or None)) into one (pinned) uint8
    tensor (and their descriptors)."""
    first = pieces[0][1]
    out = torch.empty((n, *first.shape[1:]), dtype=torch.uint8, pin_memory=pin)
    view = out.numpy()
    desc = None if pieces[0][2] is None else np.empty((n, pieces[0][2].shape[1]), np.float32)
    idx = np.empty(n, np.int64)
    filled = 0
    while filled < n:
        block, px, d = pieces[0]
        m = min(n - filled, len(block))
        view[filled : filled + m] = px[:m]
        idx[filled : filled + m] = block[:m]
        if desc is not None:
            desc[filled : filled + m] = d[:m]
        filled += m
        if m == len(block):
            pieces.popleft()
        else:
            pieces[0] = (block[m:], px[m:], None if d is None else d[m:])
    return idx, out, desc


def tile_batches(
    slide: Any,
    xy: np.ndarray,
    blocks: list[np.ndarray],
    patch_px: int,
    out_px: int,
    level: int,
    batch_size: int,
    workers: int,
    pin: bool,
    describe_px: int = 0,
    device: Any = None,
    stain_map: Any = None,
) -> Iterator[tuple[np.ndarray, torch.Tensor, np.ndarray | None]]:
    """Yield ``(tile indices, uint8 (B, out_px, out_px, 3) tensor, descriptors)`` batches; blocks are read
    ahead by ``workers`` threads, at most ``2 × workers`` blocks in flight (bounded memory).  With
    ``describe_px`` (the spot patch's edge) the threads also describe each block's tiles
    (``(B, N_DESCRIPTORS)``, from the same region read, on ``device`` if CUDA); else ``None``.  ``stain_map``:
    the slide's stain mapping, applied by the threads (:func:`read_block`)."""
    queue: deque = deque()
    pieces: deque = deque()
    todo = iter(blocks)
    count = 0
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="mclstexp-tiles") as pool:
        try:
            while True:
                while len(queue) < 2 * max(1, workers):
                    block = next(todo, None)
                    if block is None:
                        break
                    args = (slide, xy[block], patch_px, out_px, level, describe_px, device, stain_map)
                    queue.append((block, pool.submit(read_block, *args)))
                if not queue:
                    break
                block, future = queue.popleft()
                pieces.append((block, *future.result()))
                count += len(block)
                while count >= batch_size:
                    yield take_batch(pieces, batch_size, pin)
                    count -= batch_size
            if count:
                yield take_batch(pieces, count, pin)
        finally:
            for _, future in queue:
                future.cancel()

"""Reading tiles of a slide for whole-slide prediction: block reads, worker threads, bounded read-ahead.

Neighbouring tiles are grouped into square blocks read with one region read each (one decode of the
pyramid tiles they share) by a pool of threads; batches are assembled in (pinned) host memory ready for
an asynchronous copy to the GPU.
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


def read_block(slide: Any, xy: np.ndarray, patch_px: int, out_px: int, level: int, stain_map: Any = None) -> np.ndarray:
    """Crops around ``xy`` (full-res px) read with one region read at ``level``, resized to ``out_px``, and mapped
    by ``stain_map`` (a :class:`~napari_mclstexp.data.stain.StainMap`, as spot patches are) when given."""
    from PIL import Image

    ds = float(slide.downsamples[level])
    corners = np.floor(xy).astype(np.int64) - patch_px // 2  # same centring as data.patches
    size_l = max(1, int(round(patch_px / ds)))
    cl = np.floor(corners / ds).astype(np.int64)
    x0, y0 = cl.min(axis=0)
    x1, y1 = cl.max(axis=0) + size_l
    region = slide.read_region(int(x0), int(y0), int(x1 - x0), int(y1 - y0), level)
    out = np.empty((len(xy), out_px, out_px, 3), dtype=np.uint8)
    for i, (cx, cy) in enumerate(cl - (x0, y0)):
        crop = region[cy : cy + size_l, cx : cx + size_l]
        if size_l != out_px:  # Pillow LANCZOS, like the training patches (data.patches)
            crop = np.asarray(
                Image.fromarray(np.ascontiguousarray(crop)).resize((out_px, out_px), Image.Resampling.LANCZOS)
            )
        out[i] = crop
    return out if stain_map is None else stain_map(out)


def take_batch(pieces: deque, n: int, pin: bool) -> tuple[np.ndarray, torch.Tensor]:
    """Pop the first ``n`` tiles of ``pieces`` ((idx, patches) pairs) into one (pinned) uint8 tensor."""
    first = pieces[0][1]
    out = torch.empty((n, *first.shape[1:]), dtype=torch.uint8, pin_memory=pin)
    view = out.numpy()
    idx = np.empty(n, np.int64)
    filled = 0
    while filled < n:
        block, px = pieces[0]
        m = min(n - filled, len(block))
        view[filled : filled + m] = px[:m]
        idx[filled : filled + m] = block[:m]
        filled += m
        if m == len(block):
            pieces.popleft()
        else:
            pieces[0] = (block[m:], px[m:])
    return idx, out


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
    stain_map: Any = None,
) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """Yield ``(tile indices, uint8 (B, out_px, out_px, 3) tensor)`` batches; blocks are read ahead by
    ``workers`` threads, at most ``2 × workers`` blocks in flight (bounded memory); ``stain_map`` is applied to
    each block by its reading thread."""
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
                    queue.append((block, pool.submit(read_block, slide, xy[block], patch_px, out_px, level, stain_map)))
                if not queue:
                    break
                block, future = queue.popleft()
                pieces.append((block, future.result()))
                count += len(block)
                while count >= batch_size:
                    yield take_batch(pieces, batch_size, pin)
                    count -= batch_size
            if count:
                yield take_batch(pieces, count, pin)
        finally:
            for _, future in queue:
                future.cancel()

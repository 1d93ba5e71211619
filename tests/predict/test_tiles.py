"""Tile grouping for whole-slide reads: blocks, bands, every tile exactly once."""

from __future__ import annotations

import numpy as np

from napari_mclstexp.predict.tiles import group_blocks


def test_blocks_cover_every_tile_once_in_band_order():
    rows, cols = np.indices((6, 10)).reshape(2, -1)
    keep = (rows + cols) % 7 != 3  # holes, as tissue detection leaves
    rows, cols = rows[keep], cols[keep]
    blocks = group_blocks(cols, rows, block_tiles=2, band_blocks=2)
    flat = np.concatenate(blocks)
    assert sorted(flat.tolist()) == list(range(len(rows)))
    for b in blocks:  # one 2 x 2 block each
        assert len(set(rows[b] // 2)) == 1 and len(set(cols[b] // 2)) == 1
    firsts = [(cols[b[0]] // 2, rows[b[0]] // 2) for b in blocks]
    bands = [c // 2 for c, _ in firsts]
    assert bands == sorted(bands)  # band after band (block columns 0-1, 2-3, 4)
    in_band0 = [(r, c) for c, r in firsts if c // 2 == 0]
    assert in_band0 == sorted(in_band0)  # row by row inside a band
    assert in_band0[:3] == [(0, 0), (0, 1), (1, 0)]


def test_default_is_one_band_row_major():
    rows, cols = np.indices((4, 6)).reshape(2, -1)
    blocks = group_blocks(cols, rows, block_tiles=2)
    firsts = [(rows[b[0]] // 2, cols[b[0]] // 2) for b in blocks]
    assert firsts == sorted(firsts) and len(blocks) == 6
    assert group_blocks(np.array([], int), np.array([], int), 2) == []

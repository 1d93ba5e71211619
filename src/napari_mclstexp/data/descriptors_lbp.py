"""Local binary patterns of grey images, batched: the texture part of the tissue descriptors (:mod:`.descriptors`).

Rotation-invariant uniform LBP codes as scikit-image's ``local_binary_pattern(..., method="uniform")`` computes
them (bilinear circle samples), for a whole batch of images at once: with numpy into reused buffers, or with the
same arithmetic in torch on any device.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _shifted(grey: np.ndarray, dy: float, dx: float, m: int) -> np.ndarray:
    """``grey`` sampled at ``(y + dy, x + dx)`` (bilinear) for the pixels at least ``m`` px from the edge."""
    h, w = grey.shape[1:]
    y0, x0 = int(np.floor(dy)), int(np.floor(dx))
    fy, fx = dy - y0, dx - x0

    def at(oy: int, ox: int) -> np.ndarray:
        return grey[:, m + oy : h - m + oy, m + ox : w - m + ox]

    out = (1 - fy) * (1 - fx) * at(y0, x0)
    if fx > 1e-6:
        out = out + (1 - fy) * fx * at(y0, x0 + 1)
    if fy > 1e-6:
        out = out + fy * (1 - fx) * at(y0 + 1, x0)
        if fx > 1e-6:
            out = out + fy * fx * at(y0 + 1, x0 + 1)
    return out


def lbp_codes(grey: Any, radius: int, points: int, m: int) -> Any:
    """Uniform rotation-invariant LBP codes (0 … ``points + 1``) of ``(N, H, W)`` float grey images (numpy, or
    torch on any device: the same arithmetic), for the pixels at least ``m`` ≥ ``radius`` px from the edge:
    scikit-image's ``method="uniform"``, the whole batch at once, one bilinear circle sample at a time."""
    if isinstance(grey, np.ndarray):
        return _lbp_codes_numpy(grey, radius, points, m)
    threshold = grey[:, m:-m, m:-m] - 1e-4
    ones = (threshold * 0).short()
    changes = ones * 0
    first = previous = None
    for a in 2 * np.pi * np.arange(points) / points:
        bit = _shifted(grey, -radius * np.sin(a), radius * np.cos(a), m) >= threshold
        ones += bit
        if previous is None:
            first = bit
        else:
            changes += bit != previous
        previous = bit
    changes += previous != first  # the circle closes
    return ones.where(changes <= 2, ones.new_full((), points + 1))


def _lbp_codes_numpy(grey: np.ndarray, radius: int, points: int, m: int) -> np.ndarray:
    """:func:`lbp_codes` on numpy arrays with the same float32 arithmetic as :func:`_shifted`, written into
    reused buffers (no temporary array per operation)."""
    h, w = grey.shape[1:]
    threshold = grey[:, m:-m, m:-m] - np.float32(1e-4)
    ones = np.zeros(threshold.shape, np.int16)
    changes = np.zeros(threshold.shape, np.int16)
    sample, term = np.empty_like(threshold), np.empty_like(threshold)
    bits = [np.empty(threshold.shape, bool) for _ in range(3)]
    first, previous, differ = bits
    for i, a in enumerate(2 * np.pi * np.arange(points) / points):
        dy, dx = -radius * np.sin(a), radius * np.cos(a)
        y0, x0 = int(np.floor(dy)), int(np.floor(dx))
        fy, fx = dy - y0, dx - x0

        def at(oy: int, ox: int) -> np.ndarray:
            return grey[:, m + oy : h - m + oy, m + ox : w - m + ox]

        # as _shifted: each weight a Python float product, each term rounded to float32 before it is added
        np.multiply((1 - fy) * (1 - fx), at(y0, x0), out=sample)
        if fx > 1e-6:
            sample += np.multiply((1 - fy) * fx, at(y0, x0 + 1), out=term)
        if fy > 1e-6:
            sample += np.multiply(fy * (1 - fx), at(y0 + 1, x0), out=term)
            if fx > 1e-6:
                sample += np.multiply(fy * fx, at(y0 + 1, x0 + 1), out=term)
        bit = first if i == 0 else differ
        np.greater_equal(sample, threshold, out=bit)
        ones += bit
        if i:
            np.not_equal(bit, previous, out=previous)  # previous now holds the change; bit becomes previous
            changes += previous
            bits[1], bits[2] = bit, previous
            previous, differ = bits[1], bits[2]
        else:
            previous[...] = bit
    np.not_equal(previous, first, out=differ)
    changes += differ  # the circle closes
    return np.where(changes <= 2, ones, np.int16(points + 1))

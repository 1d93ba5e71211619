"""Spot labels (domains, reference clusters) → annotation polygons, one class per label.

Each label's spots are painted as discs on a raster (:data:`CELLS_PER_SPACING` cells per spot spacing,
disc radius :data:`DISC_RADIUS` × the spacing, so neighbouring spots of one label merge and spots of other
labels, one spacing away, stay outside; gaps between discs that hold no spot are filled); every connected
patch becomes a polygon (its outer contour from ``skimage.measure.find_contours``, simplified to half a
cell) with its holes.  The result is what a
pathologist would have drawn around those spots, ready for QuPath
(:func:`napari_mclstexp.io.annotations.write_annotations`) or the region statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.measure import approximate_polygon, find_contours

from ..errors import InputError
from ..io.annotations import AnnotationClass, Annotations, Region
from ..io.export import domain_colors

CELLS_PER_SPACING = 4
DISC_RADIUS = 0.6


def _spacing(xy: np.ndarray) -> float:
    dist, _ = cKDTree(xy).query(xy, k=2)
    return float(np.median(dist[:, 1]))


def _ring(contour: np.ndarray, origin: np.ndarray, cell: float) -> np.ndarray:
    """A closed (row, col) raster contour → open ``(x, y)`` px ring."""
    simple = approximate_polygon(contour, tolerance=0.5)  # raster cells
    xy = origin + (simple[:, ::-1] - 1) * cell  # the raster is padded by one cell
    return xy[:-1] if len(xy) > 1 and np.allclose(xy[0], xy[-1]) else xy


def _outline(mask: np.ndarray) -> np.ndarray:
    contours = find_contours(mask.astype(np.float32), 0.5)
    return max(contours, key=len)


def mask_regions(mask: np.ndarray, origin: np.ndarray, cell: float) -> list[Region]:
    """Polygons (with holes) of the connected patches of a padded bool raster whose cell ``(r, c)`` is
    centred at ``origin + (c − 1, r − 1) · cell`` px ``(x, y)``."""
    patches, n = ndimage.label(mask)
    regions = []
    for k in range(1, n + 1):
        patch = patches == k
        filled = ndimage.binary_fill_holes(patch)
        holes, n_holes = ndimage.label(filled & ~patch)
        rings = [_ring(_outline(holes == h), origin, cell) for h in range(1, n_holes + 1)]
        outer = _ring(_outline(filled), origin, cell)
        if len(outer) >= 3:
            regions.append(Region(outer, [r for r in rings if len(r) >= 3]))
    return regions


def labels_to_annotations(
    xy: np.ndarray,
    labels: Sequence,
    *,
    spacing_px: float | None = None,
    skip: Sequence = ("undetermined", "nan", ""),
    prefix: str = "",
) -> Annotations:
    """One annotation class per label, its polygons around the label's spots.

    Parameters
    ----------
    xy
        ``(N, 2)`` spot centres, full-res px ``(x, y)``.
    labels
        ``N`` labels (ints or strings); labels in ``skip`` (compared as strings) get no class.
    spacing_px
        Centre-to-centre spot distance (default: the median nearest-neighbour distance).
    prefix
        Put before each label in the class name (e.g. ``"Domain "``).

    Returns
    -------
    Annotations
        Classes in sorted label order, coloured as the domains are everywhere (:func:`domain_colors`).
    """
    xy = np.asarray(xy, dtype=float)
    labels = np.asarray(labels, dtype=object)
    if len(labels) != len(xy) or len(xy) < 2:
        raise InputError(f"{len(labels)} labels for {len(xy)} spots (need at least 2 spots, one label each)")
    keep = np.array([str(v) not in {str(s) for s in skip} and v is not None for v in labels])
    spacing = float(spacing_px or _spacing(xy))
    cell = spacing / CELLS_PER_SPACING
    radius = DISC_RADIUS * spacing
    origin = xy.min(axis=0) - radius - cell
    shape = tuple(int(np.ceil(s / cell)) + 3 for s in (xy.max(axis=0) - origin + radius)[::-1])
    r = int(np.ceil(radius / cell))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    disc = np.hypot(dx, dy) * cell <= radius
    colors = domain_colors(labels[keep])
    every = np.round((xy - origin) / cell).astype(int) + 1
    occupied = np.zeros(shape, dtype=bool)
    occupied[every[:, 1], every[:, 0]] = True
    classes = []
    for label in sorted(colors, key=lambda v: (str(type(v)), v)):
        centres = np.round((xy[labels == label] - origin) / cell).astype(int) + 1
        mask = np.zeros(shape, dtype=bool)
        mask[centres[:, 1], centres[:, 0]] = True
        mask = ndimage.binary_dilation(mask, structure=disc)
        # gaps between the discs (a square grid's diagonal midpoints) hold no spot: not holes
        holes, _ = ndimage.label(ndimage.binary_fill_holes(mask) & ~mask)
        mask |= (holes > 0) & ~np.isin(holes, holes[occupied])
        name = f"{prefix}{label}"
        classes.append(AnnotationClass(name, tuple(int(c) for c in colors[label]), mask_regions(mask, origin, cell)))
    return Annotations(classes)

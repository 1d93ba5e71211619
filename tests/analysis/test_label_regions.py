"""Spot labels → annotation polygons: every labelled spot ends up inside its own class only."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.analysis.label_regions import labels_to_annotations
from napari_mclstexp.errors import InputError


def _grid(n: int = 20, spacing: float = 140.0) -> np.ndarray:
    rows, cols = np.mgrid[0:n, 0:n]
    jitter = np.random.default_rng(0).normal(0, 3, size=(n * n, 2))  # legacy ST spots are not exactly on a grid
    return np.stack([cols.ravel(), rows.ravel()], axis=1) * spacing + 500 + jitter


def test_labels_round_trip_through_polygons_with_a_hole():
    xy = _grid()
    col, row = np.round((xy - 500) / 140).T
    labels = np.where(col < 10, "tumour", "stroma").astype(object)
    ring = (np.abs(row - 10) <= 3) & (np.abs(col - 14) <= 3)
    labels[ring] = "immune"
    labels[(row == 10) & (col == 14)] = "stroma"  # a stroma island inside the immune ring: a hole
    labels[(row == 0) & (col == 0)] = "undetermined"
    ann = labels_to_annotations(xy, labels, prefix="C ")
    assert [c.name for c in ann.classes] == ["C immune", "C stroma", "C tumour"]
    immune = ann.by_name()["C immune"]
    assert len(immune.regions) == 1 and len(immune.regions[0].holes) == 1
    assert len(ann.by_name()["C stroma"].regions) == 2  # the island is its own polygon
    for cls in ann.classes:
        inside = cls.contains(xy)
        assert np.array_equal(inside, labels == cls.name[2:]), cls.name
    assert len({c.color for c in ann.classes}) == 3
    assert all(len(r.exterior) < 200 for c in ann.classes for r in c.regions)  # simplified outlines


def test_labels_errors():
    with pytest.raises(InputError, match="labels for"):
        labels_to_annotations(np.zeros((3, 2)), [1, 2])

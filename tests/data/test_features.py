"""Feature cache: keys change with what changes the numbers; bounded size, least recently used evicted."""

from __future__ import annotations

import os
import time

import numpy as np

from napari_mclstexp.data.features import FeatureCache, feature_key


def test_key_changes_with_every_ingredient(tmp_path):
    img = tmp_path / "slide.tif"
    img.write_bytes(b"x" * 100)
    xy = np.array([[10.0, 20.0], [30.0, 40.0]])
    base = dict(slide_path=img, xy=xy, patch_px=224, input_px=224, encoder="uni", weights_id="sha256:aa")
    k0 = feature_key(**base)
    assert feature_key(**base) == k0
    for change in (
        {"xy": xy + 1},
        {"patch_px": 200},
        {"input_px": 112},
        {"encoder": "virchow2"},
        {"weights_id": "sha256:bb"},
    ):
        assert feature_key(**{**base, **change}) != k0, change
    assert feature_key(**base, preprocessing={"recipe": "cls+mean"}) != k0
    img.write_bytes(b"y" * 101)  # the image file changed
    assert feature_key(**base) != k0


def test_bounded_cache_evicts_least_recently_used(tmp_path):
    cache = FeatureCache(tmp_path, max_bytes=2 * (1000 * 4) + 400)  # two 1000-float entries (+ .npy headers)
    a, b, c = (np.full((10, 100), v, np.float32) for v in (1, 2, 3))
    cache.put("a", a)
    time.sleep(0.02)
    cache.put("b", b)
    time.sleep(0.02)
    assert cache.get("a") is not None  # a is now the most recently used
    os.utime(cache.path_for("b"), ns=(1, 1))  # and b clearly the least
    cache.put("c", c)
    assert cache.get("b") is None and cache.get("c") is not None
    np.testing.assert_array_equal(cache.get("a"), a)
    assert cache.size_bytes() <= cache.max_bytes
    assert (cache.hits, cache.misses) == (3, 1)

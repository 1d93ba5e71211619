"""Patch extraction around spots, µm sizing, and the on-disk cache."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from napari_mclstexp.data.patches import (
    PatchCache,
    default_cache_root,
    extract_patches,
    iter_extract_patches,
    patch_size_px,
    sample_patches,
)
from napari_mclstexp.errors import Cancelled, InputError, SampleFormatError
from napari_mclstexp.io.wsi import open_slide
from napari_mclstexp.progress import CancelToken, Progress


@pytest.fixture
def coded_png(tmp_path):
    """An image whose pixel (y, x) encodes its own coordinates: R = x % 256, G = y % 256."""
    yy, xx = np.mgrid[0:100, 0:120]
    img = np.stack([xx % 256, yy % 256, np.full_like(xx, 200)], -1).astype(np.uint8)
    path = tmp_path / "coded.png"
    Image.fromarray(img).save(path)
    return path, img


def test_patch_centred_on_floor_of_xy(coded_png):
    path, img = coded_png
    patches = extract_patches(path, np.array([[50.7, 40.2]]), size_px=10)
    assert patches.shape == (1, 10, 10, 3)
    # floor(50.7) - 5 = 45 → first column x = 45; floor(40.2) - 5 = 35 → first row y = 35
    assert patches[0, 0, 0, 0] == 45 and patches[0, 0, 0, 1] == 35
    assert np.array_equal(patches[0], img[35:45, 45:55])


def test_patch_zero_padded_at_border(coded_png):
    path, img = coded_png
    with open_slide(path) as slide:
        patches = extract_patches(slide, np.array([[2.0, 98.0]]), size_px=8)
    p = patches[0]
    assert (p[:, :2] == 0).all()  # x from -2 to -1 is outside
    assert (p[6:] == 0).all()  # y 100, 101 outside
    assert np.array_equal(p[:6, 2:], img[94:100, 0:6])


def test_patch_resized_antialiased(coded_png):
    path, _ = coded_png
    patches = extract_patches(path, np.array([[60.0, 50.0], [30.0, 30.0]]), size_px=40, out_px=10)
    assert patches.shape == (2, 10, 10, 3) and patches.dtype == np.uint8
    # blue channel is constant 200; the red channel increases left → right.
    assert np.abs(patches[..., 2].astype(int) - 200).max() <= 1
    assert (np.diff(patches[0, 5, :, 0].astype(int)) > 0).all()


def test_patch_size_px_from_microns():
    assert patch_size_px(100, 0.5) == 200
    assert patch_size_px(224 * 0.7, 0.7) == 224
    with pytest.raises(InputError):
        patch_size_px(100, 0)


def test_extract_yields_progress_and_cancels(coded_png):
    path, _ = coded_png
    xy = np.full((200, 2), 50.0)
    events = []
    gen = iter_extract_patches(path, xy, size_px=4)
    try:
        while True:
            events.append(next(gen))
    except StopIteration as stop:
        result = stop.value
    assert result.shape == (200, 4, 4, 3)
    assert all(isinstance(e, Progress) and e.stage == "patches" for e in events)
    assert events[-1].step == 200 and events[-1].total == 200
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        extract_patches(path, xy, size_px=4, cancel=token)


def test_cache_extracts_once_and_memmaps(coded_png, tmp_path, monkeypatch):
    path, img = coded_png
    cache = PatchCache(tmp_path / "cache")
    xy = np.array([[10.0, 10.0], [60.0, 50.0]])
    first = cache.get(path, xy, size_px=6)
    assert isinstance(first, np.memmap) and not first.flags.writeable
    assert np.array_equal(first[1], img[47:53, 57:63])
    files = list((tmp_path / "cache").glob("*.npy"))
    assert len(files) == 1 and not list((tmp_path / "cache").glob("*.part"))

    import napari_mclstexp.data.patches as patches_mod

    def boom(*a, **k):
        raise AssertionError("extracted again")

    monkeypatch.setattr(patches_mod, "iter_extract_patches", boom)
    again = cache.get(path, xy, size_px=6)
    assert np.array_equal(np.asarray(again), np.asarray(first))


def test_cache_key_changes_with_inputs(coded_png, tmp_path):
    path, _ = coded_png
    cache = PatchCache(tmp_path / "c")
    xy = np.array([[10.0, 10.0]])
    k = cache.key(path, xy, 6, None)
    assert cache.key(path, xy, 6, 6) == k  # out_px None == size_px
    assert cache.key(path, xy + 1, 6, None) != k
    assert cache.key(path, xy, 8, None) != k
    assert cache.key(path, xy, 6, 3) != k
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert cache.key(path, xy, 6, None) != k


def test_default_cache_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("MCLSTEXP_CACHE", str(tmp_path / "x"))
    assert default_cache_root() == tmp_path / "x"
    monkeypatch.delenv("MCLSTEXP_CACHE")
    assert default_cache_root().parts[-2:] == ("napari-mclstexp", "patches")


def test_sample_patches_follow_spots(synthetic_sample, tmp_path):
    patches = sample_patches(synthetic_sample, size_px=16, out_px=8, cache=PatchCache(tmp_path))
    assert patches.shape == (synthetic_sample.n_obs, 8, 8, 3)
    direct = sample_patches(synthetic_sample, size_px=16, out_px=8)
    assert np.array_equal(np.asarray(patches), direct)
    # patches differ between spots (the image has structure)
    assert len({p.tobytes() for p in direct}) == synthetic_sample.n_obs


def test_sample_patches_without_image(synthetic_sample):
    del synthetic_sample.uns["spatial"]
    with pytest.raises(SampleFormatError, match="no image"):
        sample_patches(synthetic_sample, size_px=8)


def test_cache_unwritable_root_is_a_clear_error(coded_png, tmp_path):
    from napari_mclstexp.errors import OutputError

    path, _ = coded_png
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(OutputError, match="patch cache"):
        PatchCache(blocker / "cache").get(path, np.array([[5.0, 5.0]]), size_px=4)


def test_block_reads_equal_single_patch_reads(coded_png, monkeypatch, rng):
    import napari_mclstexp.data.patches as patches_mod

    path, _ = coded_png
    xy = rng.uniform(-10, 130, size=(60, 2))
    monkeypatch.setattr(patches_mod, "BLOCK_PX", 16)  # many blocks, some spots off the image
    with open_slide(path) as slide:
        blocked = extract_patches(slide, xy, size_px=9)
        single = np.stack([slide.read_region(int(np.floor(x)) - 4, int(np.floor(y)) - 4, 9, 9) for x, y in xy])
    assert len(patches_mod._blocks(np.floor(xy).astype(int) - 4, 16)) > 20
    np.testing.assert_array_equal(blocked, single)

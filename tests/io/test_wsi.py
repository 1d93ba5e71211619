"""Whole-slide reading: lazy pyramids, pixel sizes, region reads, bad files."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_mclstexp.errors import ImageReadError, MissingInputError
from napari_mclstexp.io.wsi import open_slide
from napari_mclstexp.io.wsi_write import default_levels, downsample_2x, write_pyramid_tiff


def _gradient(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)), np.full_like(xx, 128)], -1).astype(
        np.uint8
    )


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory):
    image = _gradient(600, 900)
    path = write_pyramid_tiff(tmp_path_factory.mktemp("wsi") / "grad.ome.tif", image, mpp=0.5, tile=128)
    return path, image


def test_pyramid_levels_shapes_and_downsamples(pyramid):
    path, image = pyramid
    with open_slide(path) as slide:
        assert slide.backend == "tifffile"
        assert slide.shape == (600, 900)
        assert [lv.shape for lv in slide.levels] == [(600, 900, 3), (300, 450, 3), (150, 225, 3), (75, 113, 3)]
        assert slide.downsamples[:3] == [1.0, 2.0, 4.0]
        assert slide.mpp == pytest.approx(0.5)


def test_pyramid_is_tiled_jpeg_ome_with_subifds(pyramid):
    path, _ = pyramid
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome
        page = tif.pages.first
        assert page.is_tiled and page.tilewidth == 128
        assert page.compression == tifffile.COMPRESSION.JPEG
        assert len(page.subifds) == 3


def test_read_region_matches_image_within_jpeg_error(pyramid):
    path, image = pyramid
    with open_slide(path) as slide:
        region = slide.read_region(300, 200, 64, 48)
        assert region.shape == (48, 64, 3) and region.dtype == np.uint8
        err = np.abs(region.astype(int) - image[200:248, 300:364].astype(int))
        assert err.mean() < 3


def test_read_region_zero_pads_outside(pyramid):
    path, image = pyramid
    with open_slide(path) as slide:
        region = slide.read_region(-10, -20, 30, 40)
        assert (region[:20] == 0).all() and (region[:, :10] == 0).all()
        assert np.abs(region[20:, 10:].astype(int) - image[:20, :20].astype(int)).mean() < 4
        assert (slide.read_region(5000, 5000, 8, 8) == 0).all()


def test_read_region_on_coarser_level_uses_level_pixels(pyramid):
    path, image = pyramid
    with open_slide(path) as slide:
        region = slide.read_region(100, 50, 20, 20, level=1)
        expected = downsample_2x(image)[50:70, 100:120]
        assert np.abs(region.astype(int) - expected.astype(int)).mean() < 4


def test_thumbnail_size_and_colour(pyramid):
    path, image = pyramid
    with open_slide(path) as slide:
        thumb = slide.thumbnail(max_px=100)
    assert max(thumb.shape[:2]) == 100 and thumb.shape[2] == 3
    # left edge dark red channel, right edge bright
    assert thumb[:, :5, 0].mean() < 30 and thumb[:, -5:, 0].mean() > 220


def test_default_levels_and_downsample():
    assert default_levels((200, 200), 256) == 1
    assert default_levels((1000, 3000), 256) == 5
    small = downsample_2x(np.full((5, 7, 3), 10, np.uint8))
    assert small.shape == (3, 4, 3) and (small == 10).all()


def test_lazy_open_reads_one_tile_without_loading_level0(tmp_path):
    """Open a 6,144² px pyramid (113 MB decoded) in a fresh process; RSS must stay far below that."""
    path = tmp_path / "big.ome.tif"
    script = textwrap.dedent(
        f"""
        import numpy as np, psutil, gc, zarr, tifffile  # imported before measuring
        from napari_mclstexp.io.wsi_write import write_pyramid_tiff
        from napari_mclstexp.io.wsi import open_slide
        tile = np.random.default_rng(0).integers(0, 255, (512, 512, 3), dtype=np.uint8)
        img = np.tile(tile, (12, 12, 1))
        write_pyramid_tiff(r"{path}", img, mpp=0.25, tile=256, levels=3)
        del img, tile; gc.collect()
        proc = psutil.Process()
        before = proc.memory_info().rss
        slide = open_slide(r"{path}")
        after_open = proc.memory_info().rss
        region = slide.read_region(3000, 3000, 200, 200)
        after_read = proc.memory_info().rss
        assert region.shape == (200, 200, 3) and region.std() > 20
        print((after_open - before) / 2**20, (after_read - before) / 2**20)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    open_mb, read_mb = map(float, out.stdout.split())
    level0_mb = 6144 * 6144 * 3 / 2**20
    assert open_mb < 10, f"opening grew RSS by {open_mb:.1f} MB"
    assert read_mb < level0_mb / 10, f"reading one region grew RSS by {read_mb:.1f} MB (level 0 is {level0_mb:.0f} MB)"


def test_plain_tiff_with_resolution_tags(tmp_path):
    image = _gradient(64, 80)
    path = tmp_path / "flat.tif"
    tifffile.imwrite(path, image, photometric="rgb", resolution=(1e4 / 0.8, 1e4 / 0.8), resolutionunit="CENTIMETER")
    with open_slide(path) as slide:
        assert slide.mpp == pytest.approx(0.8)
        assert len(slide.levels) == 1
        assert np.array_equal(slide.read_region(0, 0, 80, 64), image)


def test_svs_description_mpp(tmp_path):
    image = _gradient(64, 64)
    path = tmp_path / "scan.svs"
    tifffile.imwrite(path, image, photometric="rgb", description="Aperio Image Library v1.0|AppMag = 20|MPP = 0.4990")
    with open_slide(path) as slide:
        assert slide.mpp == pytest.approx(0.499)


def test_grey_and_planar_tiff_become_rgb(tmp_path):
    image = _gradient(40, 50)
    tifffile.imwrite(tmp_path / "grey.tif", image[..., 0])
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(image, 2, 0), photometric="rgb", planarconfig="separate")
    with open_slide(tmp_path / "grey.tif") as slide:
        region = slide.read_region(0, 0, 50, 40)
        assert np.array_equal(region[..., 1], image[..., 0]) and np.array_equal(region[..., 2], image[..., 0])
    with open_slide(tmp_path / "planar.tif") as slide:
        assert np.array_equal(slide.read_region(3, 4, 10, 10), image[4:14, 3:13])
        assert np.array_equal(np.asarray(slide.levels[0][5]), image[5])


def test_png_is_decoded_lazily(tmp_path):
    image = _gradient(30, 40)
    Image.fromarray(image).save(tmp_path / "a.png", dpi=(25400 / 0.5, 25400 / 0.5))
    slide = open_slide(tmp_path / "a.png")
    assert slide.backend == "pillow" and slide.shape == (30, 40)
    assert not slide.levels[0].decoded
    assert slide.mpp == pytest.approx(0.5, rel=1e-3)
    assert np.array_equal(slide.read_region(0, 0, 40, 30), image)
    assert slide.levels[0].decoded


def test_missing_file(tmp_path):
    with pytest.raises(MissingInputError, match="nope.tif"):
        open_slide(tmp_path / "nope.tif")


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are not pixels")
    with pytest.raises(ImageReadError, match="notes.jpg"):
        open_slide(path)


def test_truncated_jpeg_raises_on_read(tmp_path):
    path = tmp_path / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageReadError, match="cut.jpg"):
        with open_slide(path) as slide:
            slide.read_region(0, 0, 10, 10)


def test_truncated_tiff(tmp_path):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, _gradient(64, 64), photometric="rgb")
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ImageReadError, match="cut.tif"):
        with open_slide(path) as slide:
            slide.read_region(0, 0, 64, 64)


def test_jpeg_thumbnail_without_full_decode(tmp_path):
    image = _gradient(400, 600)
    Image.fromarray(image).save(tmp_path / "big.jpg", quality=95)
    with open_slide(tmp_path / "big.jpg") as slide:
        thumb = slide.thumbnail(max_px=75)
        assert not slide.levels[0].decoded  # DCT-scaled decode, level 0 never materialised
        assert thumb.shape == (50, 75, 3)
        assert thumb[:, :3, 0].mean() < 20 and thumb[:, -3:, 0].mean() > 235

"""Direct tile decoding of tiled TIFF levels (io.wsi_tiles): pixels equal tifffile's, fallbacks, errors, threads."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import imagecodecs
import numpy as np
import pytest
import tifffile

from napari_mclstexp.errors import ImageReadError
from napari_mclstexp.io.wsi import open_slide
from napari_mclstexp.io.wsi_tiles import TileCache, TiledLevel, direct_tiled_page
from napari_mclstexp.io.wsi_write import write_pyramid_tiff

H, W, T = 70, 100, 32  # not multiples of the tile edge: edge tiles are clipped


def _image(h: int = H, w: int = W, samples: int = 3, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus noise (compresses, but every pixel differs)."""
    yy, xx = np.mgrid[0:h, 0:w]
    noise = np.random.default_rng(seed).integers(0, 24, (h, w, samples))
    chans = [xx * 2, yy * 3, xx + yy, 255 - yy][:samples]
    return ((np.stack(chans, -1) + noise) % 256).astype(np.uint8)


def _write(path, image, compression, **kw):
    photometric = "minisblack" if image.ndim == 2 else "rgb"
    tifffile.imwrite(path, image, tile=(T, T), compression=compression, photometric=photometric, **kw)
    return path


def _padded(ref: np.ndarray, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    """``ref`` (H, W, 3) cut at (x0, y0, w, h) with zeros outside."""
    out = np.zeros((h, w, 3), np.uint8)
    ya, yb, xa, xb = max(y0, 0), min(y0 + h, ref.shape[0]), max(x0, 0), min(x0 + w, ref.shape[1])
    if yb > ya and xb > xa:
        out[ya - y0 : yb - y0, xa - x0 : xb - x0] = ref[ya:yb, xa:xb]
    return out


def _rgb(ref: np.ndarray) -> np.ndarray:
    return np.repeat(ref[..., None], 3, -1) if ref.ndim == 2 else ref[..., :3]


REGIONS = [
    (0, 0, W, H),
    (20, 10, 30, 40),
    (31, 31, 2, 2),
    (-5, -7, 40, 30),
    (90, 60, 30, 30),
    (-10, -10, 130, 90),
    (200, 0, 5, 5),
]
CODECS = [(None, 3), ("lzw", 3), ("zlib", 3), ("jpeg", 3), (None, 4), ("lzw", 4), ("zlib", 4), (None, 1), ("jpeg", 1)]
if imagecodecs.JPEG2K.available:
    CODECS.append(("jpeg2000", 3))


@pytest.mark.parametrize(("compression", "samples"), CODECS)
def test_tiled_levels_equal_tifffile(tmp_path, compression, samples):
    image = _image(samples=samples)
    image = image[..., 0] if samples == 1 else image
    path = _write(tmp_path / "t.tif", image, compression)
    ref = _rgb(tifffile.imread(path))
    if compression is None or compression in ("lzw", "zlib"):
        assert np.array_equal(ref, _rgb(image))  # lossless: tifffile returns what was written
    with open_slide(path) as slide:
        level = slide.levels[0]
        assert isinstance(level, TiledLevel) and level.shape == (H, W, 3) and level.dtype == np.uint8
        assert level.ndim == 3 and level.samples == samples
        assert np.array_equal(np.asarray(level), ref)
        for x0, y0, w, h in REGIONS:
            assert np.array_equal(slide.read_region(x0, y0, w, h), _padded(ref, x0, y0, w, h)), (x0, y0, w, h)


def _split_jpeg(stream: bytes) -> tuple[bytes, bytes]:
    """(tables-only JPEG of the DQT + DHT segments, abbreviated stream without them), as in SVS files."""
    assert stream[:2] == b"\xff\xd8"
    tables, rest, i = [], [], 2
    while stream[i : i + 2] != b"\xff\xda":  # up to start of scan
        n = int.from_bytes(stream[i + 2 : i + 4], "big")
        (tables if stream[i : i + 2] in (b"\xff\xdb", b"\xff\xc4") else rest).append(stream[i : i + 2 + n])
        i += 2 + n
    return b"\xff\xd8" + b"".join(tables) + b"\xff\xd9", b"\xff\xd8" + b"".join(rest) + stream[i:]


def test_jpeg_with_shared_jpegtables(tmp_path):
    """SVS-style tiles: abbreviated JPEG streams plus one JPEGTables tag (written pre-compressed)."""
    image = _image()
    padded = np.zeros((-(-H // T) * T, -(-W // T) * T, 3), np.uint8)
    padded[:H, :W] = image
    tables, streams = set(), []
    for ty in range(0, padded.shape[0], T):
        for tx in range(0, padded.shape[1], T):
            tb, ab = _split_jpeg(bytes(imagecodecs.jpeg8_encode(padded[ty : ty + T, tx : tx + T], level=95)))
            tables.add(tb)
            streams.append(ab)
    assert len(tables) == 1
    path = tmp_path / "svs_like.tif"
    tifffile.imwrite(
        path,
        iter(streams),
        shape=image.shape,
        dtype=np.uint8,
        tile=(T, T),
        compression="jpeg",
        photometric="rgb",
        jpegtables=tables.pop(),
    )
    with tifffile.TiffFile(path) as tif:
        assert tif.pages.first.jpegtables is not None
        ref = tif.asarray()
    assert np.abs(ref.astype(int) - image).mean() < 8  # JPEG of noisy pixels, 4:2:0 chroma
    with open_slide(path) as slide:
        assert isinstance(slide.levels[0], TiledLevel)
        assert np.array_equal(np.asarray(slide.levels[0]), ref)
        assert np.array_equal(slide.read_region(25, 30, 50, 40), ref[30:70, 25:75])


def test_every_level_of_an_ome_pyramid(tmp_path):
    image = _image(300, 420)
    path = write_pyramid_tiff(tmp_path / "p.ome.tif", image, mpp=0.5, tile=64)
    with tifffile.TiffFile(path) as tif:
        refs = [lv.asarray() for lv in tif.series[0].levels]
    with open_slide(path) as slide:
        assert len(slide.levels) == len(refs) == 4
        for i, (level, ref) in enumerate(zip(slide.levels, refs, strict=True)):
            assert isinstance(level, TiledLevel) and level.shape == ref.shape
            assert np.array_equal(np.asarray(level), ref), i
            h, w = ref.shape[:2]
            assert np.array_equal(
                slide.read_region(w // 3, h // 4, w, 50, level=i), _padded(ref, w // 3, h // 4, w, 50)
            )


def test_slicing_with_steps_ints_and_channels(tmp_path):
    path = _write(tmp_path / "t.tif", _image(), "zlib")
    ref = tifffile.imread(path)
    keys = [
        np.s_[::3, 5:60:7],
        np.s_[60:5:-4, ::-1],
        np.s_[5],
        np.s_[5, 7],
        np.s_[..., 1],
        np.s_[-1],
        np.s_[10:20, -30:],
        np.s_[:, :, :2],
        np.s_[np.int64(3), 2:9],
        np.s_[40:10],
        np.s_[::2, ::2, 0],
    ]
    with open_slide(path) as slide:
        level = slide.levels[0]
        for key in keys:
            got = level[key]
            assert got.shape == ref[key].shape and np.array_equal(got, ref[key]), key
        with pytest.raises(IndexError):
            level[H]
        with pytest.raises(IndexError):
            level[0, -W - 1]


@pytest.mark.parametrize("cache", [True, False])
def test_concurrent_reads_equal_serial(tmp_path, cache):
    image = _image(256, 320)
    path = write_pyramid_tiff(tmp_path / "c.ome.tif", image, tile=32, levels=2)
    rng = np.random.default_rng(1)
    boxes = [tuple(int(v) for v in b) for b in np.c_[rng.integers(-20, 300, (48, 2)), rng.integers(1, 90, (48, 2))]]
    with open_slide(path) as serial:
        expected = [serial.read_region(*b) for b in boxes]
    with open_slide(path) as slide:
        if not cache:
            for level in slide.levels:
                level.cache = None
        barrier = threading.Barrier(4)

        def read(chunk):
            barrier.wait()
            return [slide.read_region(*b) for b in chunk]

        with ThreadPoolExecutor(4) as pool:
            parts = list(pool.map(read, [boxes[i::4] for i in range(4)]))
    for i in range(4):
        for got, want in zip(parts[i], expected[i::4], strict=True):
            assert np.array_equal(got, want)


def test_reads_without_pread_use_a_lock(tmp_path, monkeypatch):
    """Where ``os.pread`` is missing (Windows) reads go through lseek + read under a lock."""
    path = _write(tmp_path / "t.tif", _image(), "lzw")
    monkeypatch.delattr(os, "pread")
    with open_slide(path) as slide:
        assert slide.levels[0]._file._lock is not None
        with ThreadPoolExecutor(4) as pool:
            out = list(pool.map(lambda i: slide.read_region(i, i, 50, 40), range(0, 40, 5)))
    ref = tifffile.imread(path)
    assert all(np.array_equal(o, _padded(ref, i, i, 50, 40)) for o, i in zip(out, range(0, 40, 5), strict=True))


def test_strip_planar_and_16bit_tiffs_fall_back_to_zarr(tmp_path):
    image = _image()
    tifffile.imwrite(tmp_path / "strip.tif", image, photometric="rgb", compression="zlib", rowsperstrip=16)
    tifffile.imwrite(
        tmp_path / "planar.tif", np.moveaxis(image, 2, 0), photometric="rgb", planarconfig="separate", tile=(T, T)
    )
    tifffile.imwrite(tmp_path / "deep.tif", image.astype(np.uint16) * 257, photometric="rgb", tile=(T, T))
    for name in ("strip.tif", "planar.tif", "deep.tif"):
        with tifffile.TiffFile(tmp_path / name) as tif:
            assert direct_tiled_page(tif.series[0].levels[0]) is None, name
        with open_slide(tmp_path / name) as slide:
            assert not isinstance(slide.levels[0], TiledLevel), name
            assert np.array_equal(slide.read_region(-3, 5, 60, 70), _padded(image, -3, 5, 60, 70)), name


def _tag_array_offset(path, tag: str) -> tuple[int, np.dtype, int]:
    """File offset, dtype and length of an array-valued TIFF tag."""
    with tifffile.TiffFile(path) as tif:
        t = tif.pages.first.tags[tag]
        code = {3: "u2", 4: "u4", 16: "u8"}[int(t.dtype)]
        return t.valueoffset, np.dtype(tif.byteorder + code), t.count


def test_missing_tiles_read_as_zeros(tmp_path):
    image = _image()
    path = _write(tmp_path / "t.tif", image, "zlib")
    for tag in ("TileOffsets", "TileByteCounts"):  # tile 4 (row 1, col 0) has no data: offset and count 0
        offset, dtype, count = _tag_array_offset(path, tag)
        values = np.fromfile(path, dtype, count, offset=offset)
        values[4] = 0
        with open(path, "r+b") as fh:
            fh.seek(offset)
            fh.write(values.tobytes())
    expected = image.copy()
    expected[T : 2 * T, :T] = 0
    with open_slide(path) as slide:
        assert isinstance(slide.levels[0], TiledLevel)
        assert np.array_equal(slide.read_region(0, 0, W, H), expected)
        assert np.array_equal(slide.levels[0][20:50, 10:40], expected[20:50, 10:40])


def test_corrupt_and_truncated_tiles_raise_image_read_error(tmp_path):
    path = _write(tmp_path / "bad.tif", _image(), "jpeg")
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        offsets, counts = list(page.dataoffsets), list(page.databytecounts)
    original = path.read_bytes()
    data = bytearray(original)
    data[offsets[1] : offsets[1] + counts[1]] = b"\x00" * counts[1]  # garbage instead of tile 1
    path.write_bytes(bytes(data))
    with open_slide(path) as slide:
        assert np.array_equal(slide.read_region(0, 0, 10, 10).shape, (10, 10, 3))  # tile 0 is fine
        with pytest.raises(ImageReadError, match="bad.tif"):
            slide.read_region(30, 0, 10, 10)
        with pytest.raises(ImageReadError, match="bad.tif.*tile 1"):
            slide.levels[0][:, 40:50]
    last = max(range(len(offsets)), key=lambda i: offsets[i])
    cut = tmp_path / "cut.tif"
    cut.write_bytes(original[: offsets[last] + counts[last] // 2])
    with open_slide(cut) as slide:
        assert isinstance(slide.levels[0], TiledLevel)
        with pytest.raises(ImageReadError, match="cut.tif.*truncated"):
            slide.read_region(0, 0, W, H)


def test_close_releases_the_descriptor(tmp_path):
    path = _write(tmp_path / "t.tif", _image(), None)
    slide = open_slide(path)
    tile_file = slide.levels[0]._file
    fd = tile_file._fd
    assert os.fstat(fd).st_ino == os.stat(path).st_ino
    slide.read_region(0, 0, 10, 10)
    slide.close()
    assert tile_file.closed
    with pytest.raises(OSError):
        os.fstat(fd)
    slide.close()  # idempotent
    slide.levels[0].cache = None
    with pytest.raises(ImageReadError, match="closed"):
        slide.read_region(40, 40, 10, 10)


def test_read_region_decodes_into_the_output_buffer(tmp_path, monkeypatch):
    path = _write(tmp_path / "t.tif", _image(), "lzw")
    with open_slide(path) as slide:
        monkeypatch.setattr(TiledLevel, "__getitem__", lambda self, key: pytest.fail("intermediate copy"))
        assert np.array_equal(slide.read_region(-4, 3, 50, 50), _padded(tifffile.imread(path), -4, 3, 50, 50))


def test_tile_cache_is_lru_and_bounded_in_bytes():
    cache = TileCache(max_bytes=300)
    tiles = {k: np.full(100, k, np.uint8) for k in range(4)}
    for k in range(3):
        cache.put(k, tiles[k])
    assert cache.nbytes == 300 and cache.get(0) is tiles[0]  # 0 becomes most recent
    cache.put(3, tiles[3])  # evicts 1, the least recently used
    assert cache.get(1) is None and cache.get(0) is tiles[0] and cache.get(3) is tiles[3]
    assert cache.nbytes == 300 and (cache.hits, cache.misses) == (3, 1)
    cache.put(9, np.zeros(301, np.uint8))  # larger than the bound: not kept
    assert cache.get(9) is None and cache.nbytes == 300
    assert not tiles[0].flags.writeable  # cached tiles are shared: read-only


def test_cache_serves_repeated_reads(tmp_path):
    path = _write(tmp_path / "t.tif", _image(), "zlib")
    with open_slide(path) as slide:
        cache = slide.levels[0].cache
        first = slide.read_region(10, 10, 40, 40)  # 4 tiles
        assert (cache.hits, cache.misses) == (0, 4)
        again = slide.read_region(20, 20, 30, 30)  # the same 4 tiles
        assert (cache.hits, cache.misses) == (4, 4) and np.array_equal(again, first[10:40, 10:40])


def test_page_must_live_in_the_opened_file(tmp_path):
    """A level whose page is stored in another file (multi-file OME sets) keeps the zarr path."""
    path = _write(tmp_path / "a.tif", _image(), "zlib")
    copy = tmp_path / "b.tif"
    copy.write_bytes(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        level = tif.series[0].levels[0]
        assert direct_tiled_page(level) is not None and direct_tiled_page(level, path) is not None
        assert direct_tiled_page(level, copy) is None


def test_levels_satisfy_napari_layer_data_protocol(tmp_path):
    """napari's multiscale Image layers check shape, dtype, ndim, size and __getitem__ on every level."""
    from napari.layers._data_protocols import LayerDataProtocol, assert_protocol

    from napari_mclstexp.io.wsi import open_slide
    from napari_mclstexp.io.wsi_write import write_pyramid_tiff

    img = np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)
    path = write_pyramid_tiff(tmp_path / "p.ome.tif", img, mpp=1.0, tile=64)
    with open_slide(path) as slide:
        for level in slide.levels:
            assert_protocol(level, LayerDataProtocol)
            assert level.size == int(np.prod(level.shape))

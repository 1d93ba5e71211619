"""Direct, thread-parallel tile reading for tiled TIFF levels (bypassing zarr).

zarr 3's synchronous API funnels every chunk read through one event-loop thread, so tile decoding
through ``series.aszarr()`` is serialised however many threads read regions.  :class:`TiledLevel`
reads a level's tiles itself: the compressed bytes with ``os.pread`` on a read-only descriptor of its
own (no lock; a lock around seek + read where ``os.pread`` does not exist), then tifffile's
``page.decode`` (imagecodecs, which releases the GIL), so reads from several threads decode in
parallel.  Decoded tiles are kept in a small LRU cache bounded in bytes (:class:`TileCache`) shared
by the levels of one slide: neighbouring block reads of whole-slide prediction and napari's re-reads
while panning hit it.

:func:`direct_tiled_page` decides whether a tifffile pyramid level qualifies; other levels keep the
zarr path of :mod:`napari_mclstexp.io.wsi`.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageReadError
from .wsi_levels import LevelArray

#: Default bound of the decoded-tile cache of one slide, in bytes.
CACHE_BYTES = 64 * 2**20
#: TIFF compression codes of JPEG flavours (old-style, new-style, lossy DNG, Aperio).
_JPEG = (6, 7, 34892, 33007)


class TileFile:
    """A read-only descriptor of one file, readable from many threads at once.

    Parameters
    ----------
    path
        The file.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self._lock = None if hasattr(os, "pread") else threading.Lock()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._fd < 0

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes at byte ``offset`` (fewer at the end of the file)."""
        fd = self._fd
        if fd < 0:
            raise ImageReadError("the slide was closed", self.path)
        if self._lock is None:
            return os.pread(fd, size, offset)
        with self._lock:  # Windows: no pread; only the read is serialised, never the decode
            os.lseek(fd, offset, os.SEEK_SET)
            return os.read(fd, size)

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


class TileCache:
    """Thread-safe least-recently-used cache of decoded tiles, bounded in bytes.

    Parameters
    ----------
    max_bytes
        Upper bound of the summed ``nbytes`` of the cached arrays; 0 disables caching.
    """

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Any, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> np.ndarray | None:
        """The cached array of ``key`` (marked most recently used), or None."""
        with self._lock:
            arr = self._items.get(key)
            if arr is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return arr

    def put(self, key: Any, arr: np.ndarray) -> None:
        """Store ``arr`` (read-only from now on), evicting the least recently used arrays over the bound."""
        if arr.nbytes > self.max_bytes:
            return
        arr.flags.writeable = False
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.nbytes -= old.nbytes
            self._items[key] = arr
            self.nbytes += arr.nbytes
            while self.nbytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self.nbytes -= dropped.nbytes

    def clear(self) -> None:
        """Drop every cached tile."""
        with self._lock:
            self._items.clear()
            self.nbytes = 0


def direct_tiled_page(level: Any, path: str | os.PathLike | None = None) -> Any | None:
    """The page of a tifffile pyramid level when :class:`TiledLevel` can read it, else None.

    Qualifies: one tiled page (no depth) of 8-bit unsigned samples, 1, 3 or 4 samples per pixel
    stored contiguously (RGBA keeps RGB, grey is replicated), in a plain file tifffile reads at
    offset 0.  Any compression tifffile's ``page.decode`` handles works.

    Parameters
    ----------
    level
        A ``tifffile.TiffPageSeries`` (one entry of ``series.levels``).
    path
        When given, the page must be stored in this file (not in another file of a multi-file OME set).
    """
    try:
        if len(level.pages) != 1 or level.pages[0] is None:
            return None
        page = level.pages[0]
        kf = page.keyframe
        fh = page.parent.filehandle
        ok = (
            kf.is_tiled
            and kf.imagedepth == 1
            and kf.tiledepth == 1
            and kf.dtype == np.uint8
            and kf.bitspersample == 8
            and kf.samplesperpixel in (1, 3, 4)
            and (kf.planarconfig == 1 or kf.samplesperpixel == 1)
            and (not kf.is_subsampled or kf.compression in _JPEG)
            and tuple(kf.shaped[:2]) == (1, 1)
            and int(np.prod(level.shape)) == kf.imagelength * kf.imagewidth * kf.samplesperpixel
            and fh.is_file
            and not getattr(fh, "_offset", 0)
            and (path is None or os.path.samefile(fh.path, path))
            and len(page.dataoffsets)
            == len(page.databytecounts)
            >= -(-kf.imagelength // kf.tilelength) * -(-kf.imagewidth // kf.tilewidth)
        )
    except Exception:
        return None
    return page if ok else None


class TiledLevel(LevelArray):
    """One tiled TIFF level as a lazy (H, W, 3) uint8 array-like, decoded tile by tile in the caller's thread.

    Parameters
    ----------
    page
        The level's page (see :func:`direct_tiled_page`).
    file
        Read-only descriptor of the TIFF file (shared by the levels of a slide, closed by the slide).
    cache
        Decoded-tile cache (shared by the levels of a slide) or None.
    key
        Distinguishes this level's tiles in a shared cache (e.g. the level index).

    Notes
    -----
    ``level[y0:y1, x0:x1]`` (ints, slices with steps, an optional channel index) reads only the tiles
    the box touches; :meth:`read_into` decodes straight into a caller's (zero-padded) buffer.
    Tiles missing from the file (byte count 0) read as zeros; a corrupt or truncated tile raises
    :class:`~napari_mclstexp.errors.ImageReadError` naming the file.
    """

    def __init__(self, page: Any, file: TileFile, cache: TileCache | None = None, key: Any = 0) -> None:
        kf = page.keyframe
        self._file = file
        #: The decoded-tile cache (shared by the levels of a slide); set to None to disable caching.
        self.cache = cache
        self._key = key
        self._decode = kf.decode
        self._offsets = tuple(int(o) for o in page.dataoffsets)
        self._counts = tuple(int(c) for c in page.databytecounts)
        kwargs: dict[str, Any] = {}
        if kf.compression in _JPEG:  # JPEG flavours: shared tables (SVS), NDPI headers
            kwargs = {"jpegtables": getattr(page, "jpegtables", None) or kf.jpegtables, "jpegheader": kf.jpegheader}
        self._decode_kwargs = kwargs
        self.tile = (int(kf.tilelength), int(kf.tilewidth))
        self._tiles_x = -(-int(kf.imagewidth) // self.tile[1])
        self.samples = int(kf.samplesperpixel)
        self.shape = (int(kf.imagelength), int(kf.imagewidth), 3)

    @property
    def path(self) -> Path:
        """The TIFF file."""
        return self._file.path

    def _tile(self, index: int) -> np.ndarray | None:
        """Decoded tile ``index`` as (rows, cols, samples) (may be smaller than the tile at edges), or None
        if absent."""
        cache = self.cache
        ckey = (self._key, index)
        if cache is not None:
            hit = cache.get(ckey)
            if hit is not None:
                return hit
        offset, count = self._offsets[index], self._counts[index]
        if count <= 0 or offset <= 0:
            return None
        data = self._file.read(offset, count)
        if len(data) < count:
            raise ImageReadError(
                f"truncated file: tile {index} needs {count} bytes at offset {offset}, got {len(data)}", self.path
            )
        try:
            tile = self._decode(data, index, **self._decode_kwargs)[0]
        except Exception as err:  # imagecodecs / tifffile errors of corrupt tiles
            raise ImageReadError(f"cannot decode tile {index} (corrupt tile?): {err}", self.path) from err
        if tile is None:
            return None
        tile = tile.reshape(tile.shape[-3:]) if tile.ndim == 4 else tile.reshape(*tile.shape[:2], -1)
        if cache is not None:
            cache.put(ckey, tile)
        return tile

    def read_into(self, out: np.ndarray, y0: int, x0: int) -> np.ndarray:
        """Fill ``out`` ((h, w, 3) uint8) with the box of this level whose top-left pixel is (``y0``, ``x0``).

        Parameters
        ----------
        out
            Destination buffer; pixels of the box outside the image are left untouched (e.g. zeros).
        y0, x0
            Row and column of ``out[0, 0]`` in this level's pixels; may be negative.

        Returns
        -------
        numpy.ndarray
            ``out``.
        """
        h, w = out.shape[:2]
        H, W = self.shape[:2]
        ya, yb = max(y0, 0), min(y0 + h, H)
        xa, xb = max(x0, 0), min(x0 + w, W)
        if yb <= ya or xb <= xa:
            return out
        th, tw = self.tile
        for ty in range(ya // th, (yb - 1) // th + 1):
            for tx in range(xa // tw, (xb - 1) // tw + 1):
                sy, sx = ty * th, tx * tw
                ry0, ry1 = max(ya, sy), min(yb, sy + th)
                rx0, rx1 = max(xa, sx), min(xb, sx + tw)
                dst = out[ry0 - y0 : ry1 - y0, rx0 - x0 : rx1 - x0]
                tile = self._tile(ty * self._tiles_x + tx)
                if tile is None:
                    dst[...] = 0
                    continue
                src = tile[ry0 - sy : ry1 - sy, rx0 - sx : rx1 - sx, : min(3, tile.shape[2])]
                if src.shape[:2] != dst.shape[:2]:
                    raise ImageReadError(
                        f"tile {ty * self._tiles_x + tx} decodes to {tile.shape[:2]}, smaller "
                        f"than the tile grid {self.tile} (corrupt tile?)",
                        self.path,
                    )
                dst[...] = src  # grey (1 sample) broadcasts to 3 channels
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            i = next(i for i, k in enumerate(key) if k is Ellipsis)
            key = key[:i] + (slice(None),) * (3 - len(key) + 1) + key[i + 1 :]
        if len(key) > 3:
            raise IndexError(f"too many indices for a 3-d level: {len(key)}")
        key = key + (slice(None),) * (3 - len(key))
        ranges = []
        for k, n in zip(key[:2], self.shape[:2], strict=True):
            if isinstance(k, slice):
                ranges.append(range(*k.indices(n)))
            else:
                i = int(k)  # numpy integers too
                if not -n <= i < n:
                    raise IndexError(f"index {i} is out of bounds for axis of size {n}")
                ranges.append(range(i % n, i % n + 1))
        ry, rx = ranges
        if len(ry) == 0 or len(rx) == 0:
            data = np.zeros((len(ry), len(rx), 3), np.uint8)
        else:
            y_lo, x_lo = min(ry), min(rx)
            box = np.zeros((max(ry) - y_lo + 1, max(rx) - x_lo + 1, 3), np.uint8)
            self.read_into(box, y_lo, x_lo)
            data = box[ry[0] - y_lo :: ry.step, rx[0] - x_lo :: rx.step]
        return self.finish(data, key)

    def __repr__(self) -> str:
        return f"TiledLevel(shape={self.shape}, tile={self.tile}, samples={self.samples}, path={str(self.path)!r})"

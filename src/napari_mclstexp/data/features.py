"""On-disk cache of frozen-encoder features, one ``.npy`` file per (slide, spots, geometry, encoder, weights).

Frozen-feature training computes each patch's features once; every later epoch, training run, CV fold,
ridge head and prediction of the same spots reads them back.  The key covers everything that changes
the numbers: the image file's identity (resolved path, size, modification time), a hash of the spot
coordinates, the crop edge and encoder input (px), the encoder name, the weights' identity (SHA-256 of
a local file; the seed for random weights) and the preprocessing.  Changing any of them makes a new
entry.  The cache is bounded: after each write the least recently used entries are removed until the
folder holds at most ``max_bytes``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_path
from ..errors import OutputError

#: Bump when feature extraction changes, so old entries are not reused.
FEATURE_CACHE_VERSION = 1
#: Default size bound (bytes): 4 GiB, i.e. ≈ 700 k spots of 1536-d float32 features.
DEFAULT_MAX_BYTES = 4 << 30


def default_feature_root() -> Path:
    """``$MCLSTEXP_CACHE/features`` or ``~/.cache/napari-mclstexp/features``."""
    env = os.environ.get("MCLSTEXP_CACHE")
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "napari-mclstexp") / "features"


def slide_identity(path: str | os.PathLike) -> dict[str, Any]:
    """Resolved path, size (bytes) and modification time (ns) of an image file."""
    p = Path(path).expanduser().resolve()
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def feature_key(
    slide_path: str | os.PathLike,
    xy: np.ndarray,
    patch_px: int,
    input_px: int,
    encoder: str,
    weights_id: str,
    preprocessing: dict[str, Any] | None = None,
) -> str:
    """Hex digest identifying the features of these spots under this encoder (32 hex digits)."""
    coords = np.ascontiguousarray(np.asarray(xy, dtype=np.float64).reshape(-1, 2))
    ident = {
        "slide": slide_identity(slide_path),
        "xy": hashlib.sha256(coords.tobytes()).hexdigest(),
        "n": len(coords),
        "patch_px": int(patch_px),
        "input_px": int(input_px),
        "encoder": str(encoder),
        "weights": str(weights_id),
        "preprocessing": preprocessing or {},
        "version": FEATURE_CACHE_VERSION,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


class FeatureCache:
    """Bounded folder of feature matrices (float32 ``.npy``), least recently used evicted first.

    Parameters
    ----------
    root
        Cache folder; default :func:`default_feature_root`.
    max_bytes
        Size bound of the folder (bytes).

    Attributes
    ----------
    hits, misses
        Lookups answered from disk / not found since construction (tests and logs read them).
    """

    def __init__(self, root: str | os.PathLike | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root).expanduser() if root is not None else default_feature_root()
        self.max_bytes = int(max_bytes)
        self.hits = 0
        self.misses = 0

    def path_for(self, key: str) -> Path:
        """File that holds (or will hold) the entry ``key``."""
        return self.root / f"feat-{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The cached float32 (N, F) features, or None (a miss)."""
        path = self.path_for(key)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError):  # truncated by a crash outside atomic writes: recompute
            self.misses += 1
            return None
        os.utime(path)  # most recently used
        self.hits += 1
        return arr

    def put(self, key: str, features: np.ndarray) -> Path:
        """Store ``features`` atomically under ``key``, then evict down to ``max_bytes``."""
        path = self.path_for(key)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with atomic_write_path(path) as tmp, open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(features, dtype=np.float32), allow_pickle=False)
        except OSError as err:
            raise OutputError(
                f"cannot write the feature cache ({err.strerror or err}); set $MCLSTEXP_CACHE", path
            ) from err
        self.evict(keep=path)
        return path

    def size_bytes(self) -> int:
        """Bytes held by the cache's entries."""
        return sum(p.stat().st_size for p in self.root.glob("feat-*.npy")) if self.root.is_dir() else 0

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Remove least recently used entries until the folder holds ≤ ``max_bytes``; returns them."""
        if not self.root.is_dir():
            return []
        entries = sorted(self.root.glob("feat-*.npy"), key=lambda p: p.stat().st_mtime_ns)
        total = sum(p.stat().st_size for p in entries)
        removed = []
        for p in entries:
            if total <= self.max_bytes:
                break
            if keep is not None and p == keep:
                continue
            total -= p.stat().st_size
            p.unlink(missing_ok=True)
            removed.append(p)
        return removed

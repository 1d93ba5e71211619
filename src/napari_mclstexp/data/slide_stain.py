"""A slide's stain, estimated once from a sample of its tissue tiles, and the mapping of every slide to one reference.

The estimate of a slide depends on the slide file alone (never on its spots or on how it is predicted), so spots
and whole-slide tiles of one slide are mapped alike.  Tissue tiles are chosen on the thumbnail (summed optical
density, as :func:`~napari_mclstexp.data.stain.tissue_od`), :data:`N_TILES` of them spread evenly over the
tissue, read at full resolution; their tissue pixels (at most :data:`MAX_PIXELS`, a fixed subsample) are kept
in memory and in a small on-disk cache beside the patch cache, keyed by the file's path, size and modification
time.  A model's reference is Macenko's estimate of its training slides' pooled pixels (each slide weighing the
same).  :class:`StainNormaliser` maps patches of any slide to a reference, one fixed
:class:`~napari_mclstexp.data.stain.StainMap` per slide (its subclass in :mod:`.stain_rule` chooses each slide's
target, or leaves the slide as scanned).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_path
from ..errors import InputError, MissingInputError
from .stain import (
    BETA,
    FLOOR,
    StainEstimate,
    StainEstimationError,
    StainMap,
    estimate_stain,
    optical_density,
    tissue_od,
)

#: Tissue tiles read per slide, and their edge in full-resolution px.
N_TILES = 32
TILE_PX = 256
#: Tissue pixels kept per slide (a fixed subsample of the tiles' tissue pixels).
MAX_PIXELS = 100_000
#: Bump when the sampling changes, so old cache entries are not reused.
SAMPLE_VERSION = 2
#: Slides whose pixel samples stay in memory (300 kB each; the oldest go first).
MEMORY_SLIDES = 64
#: The key of a bundle's reference stain in its metadata.
METADATA_KEY = "reference_stain"

_memory: dict[str, np.ndarray] = {}
_memory_lock = threading.Lock()


def default_stain_root() -> Path:
    """``$MCLSTEXP_CACHE/../stain`` or ``~/.cache/napari-mclstexp/stain``."""
    from .patches import default_cache_root

    return default_cache_root().parent / "stain"


def _key(path: Path) -> str:
    st = path.stat()
    ident = {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "version": SAMPLE_VERSION}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def tissue_tiles(slide: Any, n_tiles: int = N_TILES, tile_px: int = TILE_PX) -> np.ndarray:
    """``(K, 2)`` int64 top-left corners (x, y, full-res px) of up to ``n_tiles`` tissue tiles, spread evenly.

    A tile is tissue when at least half of its thumbnail pixels have a summed optical density ≥ ``3 · BETA``;
    if none is, the tiles with the most tissue are taken.
    """
    thumb = slide.thumbnail(1024)
    h, w = slide.shape
    scale = thumb.shape[0] / float(h)
    tissue = (optical_density(thumb).sum(axis=1) >= 3.0 * BETA).reshape(thumb.shape[:2])
    ys, xs = np.mgrid[0 : max(1, h - tile_px + 1) : tile_px, 0 : max(1, w - tile_px + 1) : tile_px]
    corners = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.int64)
    frac = np.empty(len(corners))
    edge = max(1, int(round(tile_px * scale)))
    for i, (x, y) in enumerate(corners):
        tx, ty = int(x * scale), int(y * scale)
        frac[i] = tissue[ty : ty + edge, tx : tx + edge].mean() if tissue[ty : ty + edge, tx : tx + edge].size else 0
    good = np.flatnonzero(frac >= 0.5)
    if not len(good):
        good = np.flatnonzero(frac > 0)[np.argsort(-frac[frac > 0], kind="stable")][:n_tiles]
    pick = (
        good[np.unique(np.linspace(0, len(good) - 1, min(n_tiles, len(good))).round().astype(int))]
        if len(good)
        else good
    )
    return corners[np.sort(pick)]


def sample_tissue_pixels(slide: Any) -> np.ndarray:
    """``(N, 3)`` uint8 pixels of an open slide's :func:`tissue_tiles` with a summed optical density of at least
    :data:`~.stain.FLOOR` (at most :data:`MAX_PIXELS`); :func:`~.stain.tissue_od` chooses among them."""
    parts = []
    for x, y in tissue_tiles(slide):
        rgb = slide.read_region(int(x), int(y), TILE_PX, TILE_PX, 0).reshape(-1, 3)
        parts.append(rgb[optical_density(rgb).sum(axis=1) >= FLOOR])
    pixels = np.concatenate(parts) if parts else np.zeros((0, 3), np.uint8)
    if len(pixels) > MAX_PIXELS:
        pixels = pixels[np.sort(np.random.default_rng(0).choice(len(pixels), MAX_PIXELS, replace=False))]
    return np.ascontiguousarray(pixels, dtype=np.uint8)


def slide_pixels(path: str | os.PathLike, root: str | os.PathLike | None = None) -> np.ndarray:
    """The tissue pixel sample of the slide at ``path``: from memory, the disk cache, or read now (and kept).

    Raises
    ------
    MissingInputError
        No such file.
    """
    from ..io.wsi import open_slide

    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise MissingInputError("slide not found (needed for its stain)", p)
    key = _key(p)
    with _memory_lock:
        hit = _memory.get(key)
    if hit is not None:
        return hit
    target = Path(root).expanduser() if root is not None else default_stain_root()
    target = target / f"{p.stem}-{key}.npy"
    pixels = None
    if target.is_file():
        try:
            pixels = np.load(target, allow_pickle=False)
        except (OSError, ValueError):
            pixels = None
    if pixels is None or pixels.ndim != 2 or pixels.shape[1:] != (3,) or pixels.dtype != np.uint8:
        with open_slide(p) as slide:
            pixels = sample_tissue_pixels(slide)
        try:
            with atomic_write_path(target) as tmp, open(tmp, "wb") as fh:
                np.save(fh, pixels, allow_pickle=False)
        except OSError:  # a cache only: predicting goes on without it
            pass
    with _memory_lock:
        _memory[key] = pixels
        while len(_memory) > MEMORY_SLIDES:  # a cohort of thousands of slides stays bounded
            _memory.pop(next(iter(_memory)))
    return pixels


def slide_stain(path: str | os.PathLike, floor: float = FLOOR) -> StainEstimate:
    """Macenko's estimate of one slide from its tissue pixel sample (:class:`StainEstimationError` if too little);
    ``floor``: that of the reference it is compared with (:func:`~.stain.tissue_od`)."""
    pixels = slide_pixels(path)
    return estimate_stain(tissue_od(pixels, floor), {"source": Path(path).name}, floor)


def reference_stain(
    paths: Sequence[str | os.PathLike], sections: Sequence[str] = (), floor: float = FLOOR
) -> StainEstimate:
    """One estimate of several slides' pooled tissue pixels, each slide contributing the same number of pixels."""
    samples = [slide_pixels(p) for p in dict.fromkeys(str(Path(p).expanduser().resolve()) for p in paths)]
    samples = [s for s in samples if len(s)]
    if not samples:
        raise StainEstimationError("no tissue found on the training slides to measure their stain")
    n = min(len(s) for s in samples)
    pooled = np.concatenate([s[np.linspace(0, len(s) - 1, n).round().astype(int)] for s in samples])
    info = {"sections": [str(s) for s in sections]} if sections else {}
    return estimate_stain(tissue_od(pooled, floor), info, floor)


def training_reference(samples: Sequence[Any], enabled: bool = True) -> StainEstimate | None:
    """The reference stain of training ``samples`` (their slides), or ``None`` when off or not measurable."""
    from ..sample import image_path, section_name

    if not enabled:
        return None
    paths = [image_path(a) for a in samples]
    names = [section_name(a, i) for i, a in enumerate(samples)]
    if not paths or any(p is None for p in paths):
        return None
    try:
        return reference_stain(paths, names)
    except StainEstimationError as err:
        warnings.warn(f"training without stain normalisation: {err}", UserWarning, stacklevel=2)
        return None


def read_reference(path: str | os.PathLike) -> StainEstimate:
    """A reference stain from a JSON file: an estimate (``vectors``, ``max_concentrations``) or a dict holding
    one under ``reference_stain`` (a bundle's metadata) or ``reference`` (a prediction's stain record)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingInputError("stain reference not found", p)
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"cannot read the stain reference as JSON: {err}", p) from err
    for key in (METADATA_KEY, "reference"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    return StainEstimate.from_dict(data, p)


class StainNormaliser:
    """Maps patches of any slide to one reference stain, with each slide's own estimate made once.

    Parameters
    ----------
    reference
        The target staining (a model's :data:`METADATA_KEY`).
    source
        Where the reference came from (``"bundle"``, ``"training"`` or a file name), for records.
    """

    def __init__(self, reference: StainEstimate, source: str = "bundle") -> None:
        self.reference, self.source = reference, source
        self._maps: dict[str, StainMap | str] = {}
        self._own: dict[str, StainEstimate] = {}
        self._lock = threading.Lock()

    def _target(self, key: str, own: StainEstimate) -> StainEstimate | str:
        """The stain the slide at ``key`` (estimated as ``own``) is mapped to, or why it is left as scanned."""
        return self.reference

    def map_for(self, path: str | os.PathLike) -> StainMap | None:
        """The slide's fixed mapping, or ``None`` when it is left as scanned (with a warning, once, when its stain
        cannot be estimated)."""
        key = str(Path(path).expanduser().resolve())
        with self._lock:
            found = self._maps.get(key)
        if found is None:
            try:
                own = slide_stain(key, self.reference.floor)
                with self._lock:
                    self._own[key] = own
                target = self._target(key, own)
                found = StainMap(own, target) if isinstance(target, StainEstimate) else target
            except StainEstimationError as err:
                found = err.problem
                warnings.warn(f"{Path(key).name}: not stain-normalised: {found}", UserWarning, stacklevel=2)
            with self._lock:
                self._maps[key] = found
        return found if isinstance(found, StainMap) else None

    def apply(self, path: str | os.PathLike | None, patches: np.ndarray) -> np.ndarray:
        """uint8 ``(..., 3)`` patches of the slide at ``path`` mapped to the reference (as they are if impossible)."""
        mapping = self.map_for(path) if path is not None else None
        return np.asarray(patches) if mapping is None else mapping(np.asarray(patches))

    def identity(self, path: str | os.PathLike) -> str:
        """A short hash of the mapping applied to this slide (cache keys of features made from its patches)."""
        mapping = self.map_for(path)
        text = json.dumps(mapping.to_dict()["matrix"] if mapping is not None else None)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def record(self, path: str | os.PathLike | None, mode: str) -> dict[str, Any]:
        """``uns['mclstexp']['stain']``: the choice, the reference, the slide's estimate, and whether it was applied."""
        out: dict[str, Any] = {"mode": mode, "reference_from": self.source, "reference": self.reference.to_dict()}
        mapping = self.map_for(path) if path is not None else None
        out["applied"] = mapping is not None
        key = str(Path(path).expanduser().resolve()) if path is not None else ""
        if mapping is not None:
            out["slide"] = mapping.source.to_dict()
            out["mapped_to"] = mapping.target.to_dict()
        else:
            out["reason"] = str(self._maps.get(key, "no slide image"))
            if key in self._own:
                out["slide"] = self._own[key].to_dict()
        return out


def training_normaliser(samples: Sequence[Any], enabled: bool = True) -> StainNormaliser | None:
    """The normaliser of training ``samples``: each slide mapped to their :func:`training_reference`, or ``None``."""
    reference = training_reference(samples, enabled)
    return None if reference is None else StainNormaliser(reference, "training")

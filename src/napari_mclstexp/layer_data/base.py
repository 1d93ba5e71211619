"""Engine objects → napari layer data tuples (slides, spots), and back (which layer holds which sample).

Layers made here carry ``metadata["mclstexp"]``: ``role`` (``"slide"``, ``"spots"``, ``"predicted"``,
``"uncertainty"``, ``"domains"``, ``"dense"``, ``"domain_map"``), and for spot layers the AnnData itself
(``"adata"``, held by reference, never modified).  Spots are napari ``(row, col)`` in full-resolution pixels; layers get
``scale = (mpp, mpp)`` when the pixel size is known so the slide and the spots share µm world units.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import sample as sample_mod
from ..coords import xy_to_rowcol

KEY = "mclstexp"


def world_scale(mpp: float | None) -> tuple[float, float]:
    """Layer ``scale`` (µm per px when ``mpp`` is known, else 1 px)."""
    return (float(mpp), float(mpp)) if mpp else (1.0, 1.0)


def world_units(mpp: float | None) -> tuple[str, str]:
    """Layer ``units`` matching :func:`world_scale` (napari's scale bar and status bar read them)."""
    return ("micrometer", "micrometer") if mpp else ("pixel", "pixel")


def warm_layer_imports() -> None:
    """Pay, where this runs (a worker), what napari's first layer would load in the GUI thread.

    pint's unit definitions (≈ 0.5–1 s, once per process: the first layer with units), xarray (≈ 0.75 s:
    napari imports it to check every layer's data when it is installed) and ``scipy.ndimage`` (≈ 0.3 s:
    the first thumbnail).  Already imported modules cost nothing; a missing one is napari's business.
    """
    import importlib

    for module in ("xarray", "scipy.ndimage"):
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - only a head start
            pass
    try:
        import pint

        pint.get_application_registry().Unit("micrometer")
    except Exception:  # noqa: BLE001 - only a head start; napari loads them itself otherwise
        pass


def slide_layer(path: str | os.PathLike, *, name: str | None = None, mpp: float | None = None) -> tuple:
    """A lazy multiscale Image layer tuple of a whole-slide image (level 0 is never decoded here).

    Parameters
    ----------
    path
        Slide file (any format ``io.wsi.open_slide`` reads).
    mpp
        µm per level-0 px to use when the file does not say (e.g. from the sample).
    """
    from ..io.wsi import open_slide

    slide = open_slide(path)
    mpp = slide.mpp or mpp
    levels = list(slide.levels) if len(slide.levels) > 1 else preview_pyramid(slide.levels[0])
    data = levels if len(levels) > 1 else levels[0]
    meta = {"role": "slide", "slide_path": str(Path(path).resolve()), "mpp": mpp, "slide": slide}
    kwargs = {
        "name": name or Path(path).name,
        "rgb": True,
        "multiscale": len(levels) > 1,
        "scale": world_scale(mpp),
        "units": world_units(mpp),
        "metadata": {KEY: meta},
    }
    return (data, kwargs, "image")


#: A flat (JPEG/PNG) slide larger than this (px) gets reduced copies for display.
PREVIEW_PX = 4096


def preview_pyramid(level) -> list:
    """A flat image as display levels: itself (decoded only when napari zooms in that far) and
    reduced copies (JPEG DCT scaling: fast), made where this runs (the Load worker), so that adding the
    layer never decodes a 9,000² px JPEG in the GUI thread (≈ 2.5 s stall per her2st slide)."""
    reduced = getattr(level, "reduced", None)
    if reduced is None or max(level.shape[:2]) <= PREVIEW_PX:
        return [level]
    out, size = [level], max(level.shape[:2])
    while size > PREVIEW_PX // 2:
        size //= 4
        small = reduced(max(size, 256))
        if small is None:  # already decoded: napari can slice it directly
            return [level]
        out.append(small)
    return out


def spots_layer(
    adata, *, role: str = "spots", name: str | None = None, mpp: float | None = None, values: np.ndarray | None = None
) -> tuple:
    """A Points layer tuple of a sample's (or a prediction's) spots.

    Parameters
    ----------
    adata
        Sample or predictions (``obsm['spatial']`` full-res px ``(x, y)``).
    role
        ``"spots"`` (measured), ``"predicted"`` or ``"uncertainty"``.
    mpp
        µm per px when the sample does not record it.
    values
        Initial per-spot values for ``features['value']`` (defaults to zeros).
    """
    rowcol = xy_to_rowcol(sample_mod.spot_xy(adata))
    mpp = sample_mod.microns_per_pixel(adata) or mpp
    diameter = sample_mod.spot_diameter_px(adata)
    if diameter is None:
        diameter = _nearest_spacing(rowcol) * 0.55
    n = len(rowcol)
    features: dict[str, Any] = {"value": np.zeros(n, np.float32) if values is None else values}
    if "uncertainty" in adata.obs:
        features["uncertainty"] = adata.obs["uncertainty"].to_numpy(dtype=np.float32)
    measured = role == "spots"
    kwargs = {
        "name": name or _default_name(adata, role),
        "size": float(diameter),
        # measured spots are rings (the tissue shows through) until coloured; predictions are discs
        "border_width": 0.12 if measured else 0.0,
        "border_width_is_relative": True,
        "border_color": "#f0f0f0",
        "face_color": "transparent" if measured else "#dddddd",
        "opacity": 0.9,
        "features": features,
        "scale": world_scale(mpp),
        "units": world_units(mpp),
        "metadata": {KEY: {"role": role, "adata": adata, "mpp": mpp}},
    }
    return (rowcol, kwargs, "points")


def _nearest_spacing(rowcol: np.ndarray) -> float:
    if len(rowcol) < 2:
        return 10.0
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(rowcol).query(rowcol, k=2)
    return float(np.median(dist[:, 1])) or 10.0


def _library(adata) -> str:
    try:
        return sample_mod.library_id(adata)
    except Exception:  # noqa: BLE001 - a name is cosmetic
        return "sample"


def _default_name(adata, role: str) -> str:
    lib = _library(adata)
    return {"spots": f"{lib} spots", "predicted": f"{lib} predicted", "uncertainty": f"{lib} uncertainty"}.get(
        role, f"{lib} {role}"
    )


def existing_image(adata) -> Path | None:
    """The sample's slide file if it exists; a named file that is missing gives a ``UserWarning``
    (napari shows it as a notification, from readers and workers alike) and ``None``."""
    path = sample_mod.image_path(adata)
    if path is None:
        return None
    if not Path(path).exists():
        warnings.warn(
            f"{path}: image file not found; the spots of {_library(adata)} "
            "are shown without their slide (open it under Load → Slide)",
            UserWarning,
            stacklevel=2,
        )
        return None
    return Path(path)


def slide_name(adata) -> str:
    """``"C4 slide"``: a sample's slide is named after its section, not its image file."""
    return f"{_library(adata)} slide"


#: Image file endings stripped from a slide layer named after its file (:func:`section_of`).
_IMAGE_ENDINGS = (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".svs", ".ndpi", ".jpeg", ".jpg", ".png", ".mrxs", ".scn")


def section_of(slide_layer_name: str) -> str:
    """What layers made over a slide are named after: ``"C4"`` of ``"C4 slide"``; of a slide opened alone
    (named after its file), the file's stem: ``"demo_slide"`` of ``"demo_slide.ome.tif"``."""
    name = slide_layer_name.removesuffix(" slide")
    for ending in _IMAGE_ENDINGS:
        if name.lower().endswith(ending):
            return name[: -len(ending)]
    return name


def role(layer) -> str | None:
    """The ``mclstexp`` role of a layer, or ``None`` for foreign layers."""
    return layer.metadata.get(KEY, {}).get("role") if isinstance(layer.metadata, dict) else None


def layer_adata(layer):
    """The AnnData a spots layer was made from, or ``None``."""
    return layer.metadata.get(KEY, {}).get("adata") if isinstance(layer.metadata, dict) else None


def layers_with_role(viewer, *roles: str) -> list:
    """Layers of the viewer whose role is one of ``roles`` (in layer-list order)."""
    return [layer for layer in viewer.layers if role(layer) in roles]

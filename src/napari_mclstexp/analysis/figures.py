"""Figures: measured vs predicted expression maps of chosen genes, side by side on the slide.

matplotlib is an optional dependency (extra ``figures``); it is imported inside the function and
drawn without pyplot (no GUI backend, safe in threads and on headless machines).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import prediction_meta
from ..atomic import atomic_write_path
from ..errors import GenePanelError, InputError
from .metrics import (
    _dense,
    match_spots,
    measured_matrix,
    pearson_per_gene,
)


def _require_matplotlib() -> Any:
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise InputError(
            "figures need matplotlib: pip install 'napari-mclstexp[figures]' (or pip install matplotlib)"
        ) from err
    return Figure, FigureCanvasAgg


def slide_background(adata: Any, max_px: int = 1024) -> tuple[np.ndarray | None, float]:
    """A thumbnail of the sample's slide and its scale (thumbnail px per full-resolution px).

    Uses the source image (``uns['spatial'][lib]['metadata']['source_image_path']``) when it
    opens, else the stored ``hires``/``lowres`` image with its scale factor; ``(None, 1.0)`` when
    neither exists.
    """
    from ..sample import _library, image_path

    path = image_path(adata)
    if path is not None and path.exists():
        try:
            from ..io.wsi import open_slide

            with open_slide(path) as slide:
                thumb = slide.thumbnail(max_px)
                return thumb, thumb.shape[1] / slide.shape[1]
        except Exception:  # noqa: BLE001 - a figure without background beats no figure
            pass
    lib = _library(adata)
    images, scalefactors = lib.get("images", {}), lib.get("scalefactors", {})
    for name in ("hires", "lowres"):
        scale = scalefactors.get(f"tissue_{name}_scalef")
        if name in images and scale:
            return np.asarray(images[name]), float(scale)
    return None, 1.0


#: Colour-bar label per normalisation method (what the plotted numbers are).
_UNITS = {
    "log10_1e4": "log10(1 + 10⁴ · counts / spot total)",
    "ln_cpm": "ln(1 + counts per million)",
    "none": "expression (as stored)",
}


def plot_measured_vs_predicted(
    pred: Any,
    truth: Any,
    genes: Sequence[str],
    path: str | os.PathLike,
    *,
    normalization: str | None = None,
    max_px: int = 1024,
    cmap: str = "viridis",
    dpi: int = 120,
) -> Path:
    """Write a PNG with one row per gene: measured (left) and predicted (right) maps on the slide.

    Parameters
    ----------
    pred
        Prediction AnnData (normalised expression).
    truth
        Measured sample (raw counts, normalised like the prediction) with the slide image.
    genes
        Genes to show (each must be in the prediction and the measurement).
    path
        Output PNG path (written atomically).
    normalization
        As for :func:`~napari_mclstexp.analysis.metrics.evaluate`.
    max_px
        Longest side of the slide thumbnail (px).
    cmap, dpi
        Colour map and resolution (dots per inch).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    Figure, FigureCanvasAgg = _require_matplotlib()
    genes = [str(g) for g in genes]
    if not genes:
        raise GenePanelError("choose at least one gene to plot")
    missing = [g for g in genes if g not in pred.var_names or g not in truth.var_names]
    if missing:
        raise GenePanelError(f"not in both the prediction and the measurement: {', '.join(missing)}")
    p_idx, t_idx, _ = match_spots(pred, truth)
    panel = [str(g) for g in pred.var_names]
    scale = normalization or prediction_meta.normalization(pred)
    measured_all, _ = measured_matrix(truth, panel, scale)
    unit = _UNITS.get(scale or "none", "expression")
    cols = [panel.index(g) for g in genes]
    measured = measured_all[t_idx][:, cols]
    predicted = _dense(pred.X)[p_idx][:, cols]
    r, _ = pearson_per_gene(predicted, measured)

    background, scale = slide_background(truth, max_px)
    xy = np.asarray(truth.obsm["spatial"], dtype=float)[t_idx, :2] * scale
    from ..sample import spot_diameter_px

    diam = (spot_diameter_px(truth) or 0.0) * scale
    panel_in = 4.0
    extent_px = background.shape[1] if background is not None else max(np.ptp(xy[:, 0]), 1.0)
    size_pt = (diam / extent_px * panel_in * 72) if diam else 4.0
    fig = Figure(figsize=(2 * panel_in, panel_in * len(genes)), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(genes), 2, squeeze=False)
    for row, gene in enumerate(genes):
        for col, (values, title) in enumerate(((measured[:, row], "measured"), (predicted[:, row], "predicted"))):
            ax = axes[row, col]
            if background is not None:
                ax.imshow(background)
            sc = ax.scatter(
                xy[:, 0], xy[:, 1], c=values, s=max(size_pt, 1.0) ** 2, cmap=cmap, edgecolors="none", alpha=0.9
            )
            if background is None:
                ax.invert_yaxis()
            ax.set_aspect("equal")
            ax.set_axis_off()
            label = f"{gene} {title}" + (f" (r = {r[row]:.3f})" if col == 1 and np.isfinite(r[row]) else "")
            ax.set_title(label, fontsize=10)
            fig.colorbar(sc, ax=ax, fraction=0.046, pad=0.02).set_label(unit, fontsize=8)
    fig.tight_layout()
    out = Path(path)
    with atomic_write_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return out

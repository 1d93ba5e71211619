"""Predictions (the AnnData of ``predict_at_spots`` / ``predict_whole_slide``, live or read back from a
``.h5ad``) → napari layer data tuples: spots as a Points layer coloured by a gene, whole-slide tiles as
a dense Image layer (one pixel per tile).  Predictions are never normalised again as if they were counts.
"""

from __future__ import annotations

import numpy as np

from .. import prediction_meta
from ..prediction_meta import gene_values
from .base import KEY, _library, spots_layer, world_scale, world_units
from .colors import auto_limits, values_to_rgba


def dense_layer(pred, mpp: float | None, *, gene: str | None = None, name: str | None = None) -> tuple:
    """Whole-slide predictions as an Image layer tuple of ``gene`` (default: the first), on the
    prediction's tile grid (``uns['mclstexp']['grid']``), in µm when ``mpp`` is known.

    The layer is named after the slide (``"C4 predicted tiles"``), never after the gene shown: it
    holds every gene, and exports take its name."""
    from ..predict.slide import grid_image

    gene = str(gene or pred.var_names[0])
    grid = prediction_meta.grid(pred)
    step, (x0, y0) = float(grid["step_px"]), grid["origin_xy"]
    image = grid_image(pred, gene)
    px = np.asarray(world_scale(mpp))
    finite = image[np.isfinite(image)]
    limits = (float(finite.min()), float(finite.max()) + 1e-6) if finite.size else (0.0, 1.0)
    kwargs = {
        "name": name or f"{_library(pred)} predicted tiles",
        "colormap": "viridis",
        "opacity": 0.7,
        "blending": "translucent",
        "scale": px * step,
        "translate": px * np.array([y0, x0], float),
        "contrast_limits": limits,
        "units": world_units(mpp),
        "metadata": {KEY: {"role": "dense", "adata": pred, "mpp": mpp, "gene": gene}},
    }
    return (image, kwargs, "image")


def predicted_spots_layer(
    pred, mpp: float | None = None, *, gene: str | None = None, name: str | None = None, cmap: str = "viridis"
) -> tuple:
    """Predictions at spots as a Points layer tuple coloured by ``gene`` (default: the first).

    The one builder of a predicted-spots layer: napari's reader, the Predict widget and the demo all
    use it, so the same prediction always looks the same.

    Parameters
    ----------
    pred
        Predictions at spots (``obsm['spatial']`` full-res px, ``X`` normalised expression).
    mpp
        µm per px when the predictions do not record it.
    gene
        The gene shown: ``features['value']`` and face colours through ``cmap`` between robust limits
        (:func:`~.colors.auto_limits`, 1st–99th percentile); also kept in the metadata (``gene``).
    name
        Layer name (default ``"<library> predicted"``).

    Returns
    -------
    tuple
        ``(data (N, 2) row/col px, kwargs, "points")``.
    """
    gene = str(gene) if gene is not None else (str(pred.var_names[0]) if pred.n_vars else None)
    values = gene_values(pred, gene) if gene is not None else None
    data, kwargs, layer_type = spots_layer(pred, role="predicted", name=name, mpp=mpp, values=values)
    if values is not None:
        limits = auto_limits(values)
        kwargs["face_color"] = values_to_rgba(values, cmap, limits)
        kwargs["metadata"][KEY].update(gene=gene, colormap=cmap, limits=limits)
    return (data, kwargs, layer_type)


def uncertainty_spots_layer(pred, mpp: float | None = None, *, name: str | None = None) -> tuple:
    """The per-spot uncertainty of predictions (``obs['uncertainty']``) as a hidden Points layer tuple,
    coloured through magma between robust limits (grey discs when the predictions carry none).

    Built whole, colours included, so that the layer goes into the viewer in one step."""
    values = pred.obs["uncertainty"].to_numpy(dtype=np.float32) if "uncertainty" in pred.obs else None
    data, kwargs, layer_type = spots_layer(pred, role="uncertainty", name=name, mpp=mpp, values=values)
    kwargs["visible"] = False
    if values is not None:
        kwargs["face_color"] = values_to_rgba(values, "magma", auto_limits(values))
    return (data, kwargs, layer_type)


def prediction_layer(pred, mpp: float | None) -> tuple:
    """The layer tuple of saved predictions: dense tiles when they carry a grid, else spots."""
    if prediction_meta.is_whole_slide(pred) and pred.n_vars:
        return dense_layer(pred, mpp)
    return predicted_spots_layer(pred, mpp)

"""A sample (or saved predictions) → its layer data tuples: the slide, then the spots, the predictions or
the raster of a binned sample.  Used by napari's readers, the sample data and the Load widget."""

from __future__ import annotations

from .. import sample as sample_mod
from ..prediction_meta import is_prediction
from .base import KEY, existing_image, slide_layer, slide_name, spots_layer
from .predictions import prediction_layer
from .raster import is_binned, raster_layer


def sample_layers(adata, *, with_image: bool = True) -> list[tuple]:
    """Slide (if the sample names an existing image) + spots (or saved predictions), as layer tuples."""
    layers = []
    path = existing_image(adata) if with_image else None
    mpp = sample_mod.microns_per_pixel(adata)
    if path is not None:
        layers.append(slide_layer(path, mpp=mpp, name=slide_name(adata)))
        mpp = layers[-1][1]["metadata"][KEY]["mpp"]
    layers.append(data_layer(adata, mpp))
    return layers


def data_layer(adata, mpp: float | None) -> tuple:
    """A sample's spots (measured), or saved predictions as predictions (:mod:`.predictions`)."""
    if is_binned(adata):  # Visium HD: far too many bins for Points
        return raster_layer(adata, mpp, role="predicted" if is_prediction(adata) else "spots")
    return prediction_layer(adata, mpp) if is_prediction(adata) else spots_layer(adata, mpp=mpp)


def last_sample_visible(groups: list[list[tuple]]) -> list[tuple]:
    """Flatten per-sample layer tuples, hiding every sample but the last (the top of the stack).

    Sections of one folder each have their own slide at the same origin: the top slide covers the
    others, which were still drawn and listed as visible.  The last one stays visible, which is also
    the one the widgets' layer choosers offer first (newest); the others are a click away.
    """
    out = []
    for i, group in enumerate(groups):
        for data, kwargs, layer_type in group:
            out.append((data, kwargs if i == len(groups) - 1 else {**kwargs, "visible": False}, layer_type))
    return out

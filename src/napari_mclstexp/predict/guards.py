"""Checks before predicting: is this slide or sample within what the bundle can say something about?

No refusal: each problem is one line for the user (the CLI prints it as a warning, the Predict step shows it)
and the prediction goes ahead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..bundle import Bundle

#: Below this share of the bundle's genes measured in a sample, predictions cannot be checked against it.
MIN_GENE_OVERLAP = 0.5


def scale_warning(bundle: Bundle, mpp: float | None) -> str | None:
    """One line when exactly one of the bundle's training µm/px and the slide's µm/px is known, else ``None``."""
    trained = bundle.metadata.get("training_mpp")
    if bool(trained) == bool(mpp):
        return None
    if trained:
        return (
            f"this slide's µm/px is unknown but the model was trained at {float(trained):.3g} µm/px: patches are "
            f"cut at {bundle.patch_px} px and may not cover the trained {bundle.patch_um or '?'} µm; give the "
            "slide's µm/px if you know it"
        )
    return (
        f"the model's training µm/px is unknown but this slide is {float(mpp):.3g} µm/px: patches are cut at "
        f"the trained {bundle.patch_px} px whatever their size in µm; check that the scales match"
    )


def gene_warning(bundle: Bundle, measured: Iterable[str]) -> str | None:
    """One line when under :data:`MIN_GENE_OVERLAP` of the bundle's genes are among the sample's measured genes."""
    measured = {str(g) for g in measured}
    if not measured:
        return None
    genes = [str(g) for g in bundle.genes]
    shared = sum(g in measured for g in genes)
    if shared >= MIN_GENE_OVERLAP * len(genes):
        return None
    return (
        f"only {shared} of the model's {len(genes)} genes are measured in this sample: it was probably trained "
        "on another panel or species, and its predictions cannot be checked here"
    )


def input_warnings(bundle: Bundle, mpp: float | None, measured: Iterable[str] = ()) -> list[str]:
    """The guards' lines for a slide of ``mpp`` µm/px (``None``: unknown) and a sample's measured genes."""
    return [w for w in (scale_warning(bundle, mpp), gene_warning(bundle, measured)) if w]

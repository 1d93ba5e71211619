"""The normaliser a prediction's ``stain`` option asks for (``auto``, ``none`` or a reference: see
:class:`~napari_mclstexp.predict.options.PredictOptions`) and what ``uns['mclstexp']['stain']`` records.

``auto`` applies the model's rule (:mod:`napari_mclstexp.data.stain_rule`): a model trained as scanned leaves a
slide stained within the spread of its training sections as scanned and moves one further away toward the nearest
training section's stain; a model trained with ``--stain-normalize`` maps every slide to its pooled reference.
The slide's own estimate is made once per slide (:mod:`napari_mclstexp.data.slide_stain`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.slide_stain import METADATA_KEY, StainNormaliser, read_reference
from ..data.stain import StainEstimate
from ..data.stain_rule import NearestStainNormaliser, TrainingStains
from ..errors import BundleError, InputError

if TYPE_CHECKING:
    from ..bundle import Bundle

#: Type of the ``stain`` option of the prediction entry points.
StainOption = str | os.PathLike | StainEstimate | None


def bundle_reference(bundle: Bundle) -> StainEstimate | None:
    """The model's reference stain (``metadata['reference_stain']``), or ``None`` for bundles without one."""
    data = (getattr(bundle, "metadata", None) or {}).get(METADATA_KEY)
    if not data:
        return None
    try:
        return StainEstimate.from_dict(data)
    except InputError as err:
        raise BundleError(f"its reference stain is malformed: {err.problem}", getattr(bundle, "path", None)) from err


def bundle_stains(bundle: Bundle) -> TrainingStains | None:
    """The model's :class:`~napari_mclstexp.data.stain_rule.TrainingStains`, or ``None`` without a reference."""
    data = (getattr(bundle, "metadata", None) or {}).get(METADATA_KEY)
    if not data:
        return None
    try:
        return TrainingStains.from_dict(data)
    except InputError as err:
        raise BundleError(f"its reference stain is malformed: {err.problem}", getattr(bundle, "path", None)) from err


def stain_mode(stain: StainOption) -> str:
    """``"auto"``, ``"none"``, or ``"file"`` (a reference file or a given estimate)."""
    if stain is None or stain is False or (isinstance(stain, str) and stain.strip().lower() == "none"):
        return "none"
    if isinstance(stain, str) and stain.strip().lower() == "auto":
        return "auto"
    return "file"


def stain_normaliser(bundle: Bundle, stain: StainOption = "auto") -> StainNormaliser | None:
    """The normaliser a prediction with this ``stain`` choice uses, or ``None`` (patches as scanned).

    Raises
    ------
    InputError
        A reference file that is missing or not a stain reference.
    """
    mode = stain_mode(stain)
    if mode == "none":
        return None
    if mode == "auto":
        stains = bundle_stains(bundle)
        if stains is None or (not stains.mapped and not stains.sections):
            return None
        return StainNormaliser(stains.reference, "bundle") if stains.mapped else NearestStainNormaliser(stains)
    if isinstance(stain, StainEstimate):
        return StainNormaliser(stain, "given")
    return StainNormaliser(read_reference(stain), Path(stain).name)


def stain_record(
    normaliser: StainNormaliser | None, stain: StainOption, image: str | os.PathLike | None
) -> dict[str, Any]:
    """``uns['mclstexp']['stain']``: the choice, and with a normaliser the reference and the slide's estimate."""
    mode = stain_mode(stain)
    if normaliser is not None:
        return normaliser.record(image, mode)
    reason = "the model has no reference stain" if mode == "auto" else "turned off"
    out: dict[str, Any] = {"mode": mode, "applied": False, "reason": reason}
    return out

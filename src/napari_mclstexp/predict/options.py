"""How to predict: the one set of options every prediction entry point takes.

:func:`~napari_mclstexp.predict.spots.predict_at_spots`, :func:`~napari_mclstexp.predict.bins.predict_at_bins`,
:func:`~napari_mclstexp.predict.slide.predict_whole_slide`, :func:`~napari_mclstexp.predict.cohort.predict_cohort`
and :func:`~napari_mclstexp.workflows.predict.predict_and_score` take a :class:`PredictOptions`; where to
predict (sample, slide, tile step, region) and the live cancel token stay their own arguments.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    import torch

    from ..data.stain import StainEstimate

#: The retrieval distances and embedding precisions a prediction accepts.
DISTANCES = ("l1", "l2")
PRECISIONS = ("bf16", "fp32")
#: The named stain choices; anything else is a reference file (:mod:`~napari_mclstexp.predict.stain_choice`).
STAIN_MODES = ("auto", "none")


@dataclass(frozen=True)
class PredictOptions:
    """Options of a prediction; ``None`` means "as the bundle was built".

    Attributes
    ----------
    device
        ``"auto"`` (cuda > mps > cpu), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a
        :class:`torch.device`.  Default ``"auto"``.
    k
        Neighbours retrieved from the bundle's reference bank; ``None`` (default): the bundle's preset.
    distance
        ``"l1"`` or ``"l2"``, the distance of the ``1/d²`` retrieval weights; ``None`` (default): the
        bundle's preset.
    batch_size
        Image patches per forward pass; ``None`` (default): by device, 256 on CUDA, 128 on MPS, 64 on CPU.
    precision
        ``"bf16"`` (autocast on CUDA) or ``"fp32"``; ``None`` (default): the precision the model was trained
        in (``paper`` → fp32, as the reference code).
    tta
        Test-time augmentation: the mean embedding over the 8 flips/90° rotations (8× the encoder work);
        ``None`` (default): as the bundle's config, which its bank was embedded with.
    smooth
        Blend each spot's (or tile's) prediction with its neighbours' at the weight the bundle chose on
        held-out training data (:mod:`~napari_mclstexp.predict.smoothing`); ``False``: off; a float in
        [0, 1]: that weight.  Default ``True``.  Bins (Visium HD) are never smoothed.
    descriptors
        Blend the retrieval with the tissue-descriptor predictor at the weight the bundle chose
        (:mod:`~napari_mclstexp.predict.descriptor_model`; bundles trained with it; the reads then cover
        3 × the patch), before smoothing; ``False``: off; a float in [0, 1]: that weight.  Default ``True``.
    stain
        ``"auto"`` (default): each slide's stain, estimated once from a sample of its tissue tiles, is compared
        with the training sections' stains (the bundle's ``reference_stain``,
        :mod:`~napari_mclstexp.data.stain_rule`): within their spread the slide is left as scanned, further away
        it is moved toward the nearest training section's stain before patches reach the encoder and the
        descriptors (a model trained with ``stain_normalize``: every slide mapped to its reference); a bundle
        without stored stains predicts as scanned.  ``"none"``: as scanned.  A path to a
        JSON reference stain (:func:`~napari_mclstexp.data.slide_stain.read_reference`; a
        :class:`~napari_mclstexp.data.stain.StainEstimate` also does): that reference instead of the model's.
        Spots and whole-slide tiles of one slide share the estimate; ``uns['mclstexp']['stain']`` records it.

    Raises
    ------
    InputError
        A ``k`` or ``batch_size`` below 1, an unknown ``distance`` or ``precision``, a weight outside [0, 1], a
        ``stain`` reference file that is missing or not a stain reference.

    Examples
    --------
    >>> fast = PredictOptions(device="cpu", smooth=False)
    >>> fast.replace(k=5).k
    5
    """

    device: str | torch.device = "auto"
    k: int | None = None
    distance: str | None = None
    batch_size: int | None = None
    precision: str | None = None
    tta: bool | None = None
    smooth: bool | float = True
    descriptors: bool | float = True
    stain: str | os.PathLike | StainEstimate = "auto"

    def __post_init__(self) -> None:
        for name in ("k", "batch_size"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise InputError(f"{name} must be at least 1, not {value}")
        if self.distance not in (None, *DISTANCES):
            raise InputError(f"distance must be one of {', '.join(DISTANCES)}, not {self.distance!r}")
        if self.precision not in (None, *PRECISIONS):
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        for name in ("smooth", "descriptors"):
            value = getattr(self, name)
            if not isinstance(value, bool) and not 0.0 <= float(value) <= 1.0:
                raise InputError(f"{name} must be on, off or a weight in [0, 1], not {value}")
        self._check_stain()

    def _check_stain(self) -> None:
        from ..data.slide_stain import read_reference
        from ..data.stain import StainEstimate

        if isinstance(self.stain, str) and self.stain.strip().lower() in STAIN_MODES:
            object.__setattr__(self, "stain", self.stain.strip().lower())
        elif isinstance(self.stain, str | os.PathLike):
            read_reference(self.stain)  # a reference file is checked before any slide is read
        elif not isinstance(self.stain, StainEstimate):
            raise InputError(f"stain must be auto, none or a reference file, not {self.stain!r}")

    def replace(self, **changes: Any) -> PredictOptions:
        """A copy with some options changed (validated)."""
        return dataclasses.replace(self, **changes)


#: The options of a prediction that says nothing: everything as the bundle was built, on the best device.
DEFAULT = PredictOptions()

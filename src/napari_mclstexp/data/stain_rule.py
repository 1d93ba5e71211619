"""A model's training stains and the rule ``predict --stain auto`` applies to a new slide.

Every model measures, at training time, the stain of each training section (Macenko's estimate of its tissue
sample, :func:`~napari_mclstexp.data.slide_stain.slide_stain`) and of their pooled tissue (its *reference*,
:func:`~napari_mclstexp.data.slide_stain.reference_stain`), stored as the bundle's ``reference_stain``
(:class:`TrainingStains`).  The distance from a slide's stain to another stain is how far the mapping between
the two moves the slide's own tissue pixels: the mean length of the change of their optical densities
(:func:`stain_distance`, OD units; 0 to its own stain).  The training *spread* is the largest distance from a
training section to the nearest other one (leave one out): stains that far apart the model has seen side by side.
With one training section it is the distance between the estimates of its first and second half of tissue tiles.

A model trained on its sections as scanned (the default) leaves a slide whose stain lies within the spread of the
nearest training section's as scanned; a slide further away is moved toward that section's stain just far enough
to come within the spread: ``1 − spread / distance`` of the way (vectors and log concentrations interpolated,
:func:`toward`), so the change grows continuously from nothing at the spread's edge and a slide stained like
the training slides is left untouched.  A model trained with ``--stain-normalize`` (its sections mapped to the
pooled reference) maps every slide to that reference (:class:`~napari_mclstexp.data.slide_stain.StainNormaliser`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .slide_stain import StainNormaliser, reference_stain, slide_pixels
from .stain import StainEstimate, StainEstimationError, estimate_stain, mapping_matrix, tissue_od

#: ``reference_stain['training']`` of a model whose training sections were mapped to the reference, or not.
MAPPED, AS_SCANNED = "mapped to the reference", "as scanned"
#: ``reference_stain['rule']`` of :class:`NearestStainNormaliser`.
RULE = "left as scanned within the training spread, else moved toward the nearest training section's stain"


def stain_distance(od: np.ndarray, source: StainEstimate, target: StainEstimate) -> float:
    """Mean Euclidean change of the optical densities ``od`` (``(N, 3)``, a slide's tissue pixels, estimated as
    ``source``) when mapped to ``target``
    (:class:`~napari_mclstexp.data.stain.StainMap`, before rounding to 8 bits)."""
    change = np.asarray(od, np.float64) @ (mapping_matrix(source, target) - np.eye(3))
    return float(np.linalg.norm(change, axis=1).mean())


def toward(source: StainEstimate, target: StainEstimate, fraction: float) -> StainEstimate:
    """The stain ``fraction`` of the way from ``source`` to ``target``: unit vectors and log concentrations
    interpolated (0: ``source``, 1: ``target``)."""
    f = float(np.clip(fraction, 0.0, 1.0))
    vectors = (1.0 - f) * source.vectors + f * target.vectors
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    conc = source.max_concentrations ** (1.0 - f) * target.max_concentrations**f
    return StainEstimate(vectors, conc, source.pixels, dict(source.info), source.floor)


def _estimate_dict(est: StainEstimate) -> dict[str, Any]:
    full = est.to_dict()
    return {k: full[k] for k in ("vectors", "max_concentrations", "pixels", "floor")}


@dataclass(frozen=True, eq=False)
class TrainingStains:
    """The stains a model was trained on: the pooled reference, each section's, their spread.

    Attributes
    ----------
    reference
        Macenko's estimate of the training sections' pooled tissue.
    sections
        Each training section's own estimate, by section name.
    spread
        The leave-one-out spread (OD units, :func:`stain_distance`).
    mapped
        Whether the training sections were mapped to ``reference`` (``train --stain-normalize``).
    """

    reference: StainEstimate
    sections: dict[str, StainEstimate]
    spread: float
    mapped: bool

    def to_dict(self) -> dict[str, Any]:
        """The bundle's ``reference_stain``: the reference's :meth:`StainEstimate.to_dict` and, beside it,
        ``training``, ``section_stains``, ``spread`` (see :mod:`napari_mclstexp.model_card`)."""
        out = self.reference.to_dict()
        out.update(
            training=MAPPED if self.mapped else AS_SCANNED,
            section_stains={name: _estimate_dict(est) for name, est in self.sections.items()},
            spread=round(float(self.spread), 6),
        )
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: Any = None) -> TrainingStains:
        """Inverse of :meth:`to_dict`.  A reference without ``section_stains`` (bundles made before every model
        stored its training stains, which stored one only when trained with ``--stain-normalize``) is *mapped*.

        Raises
        ------
        InputError
            A malformed reference or section estimate.
        """
        reference = StainEstimate.from_dict(data, where)
        raw = data.get("section_stains")
        if not isinstance(raw, dict):
            return cls(reference, {}, 0.0, True)
        sections = {str(k): StainEstimate.from_dict(v, where) for k, v in raw.items()}
        return cls(reference, sections, float(data.get("spread") or 0.0), data.get("training") != AS_SCANNED)


def _spread(sections: dict[str, StainEstimate], pixels: dict[str, np.ndarray]) -> float:
    """Largest distance from a section to the nearest other one; one section: between its two halves' estimates."""
    if len(sections) >= 2:
        return max(
            min(stain_distance(pixels[a], est, other) for b, other in sections.items() if b != a)
            for a, est in sections.items()
        )
    od = pixels[next(iter(sections))]
    half = len(od) // 2
    try:
        return stain_distance(od[:half], estimate_stain(od[:half]), estimate_stain(od[half:]))
    except StainEstimationError:
        return 0.0


def training_stains(samples: Sequence[Any], mapped: bool = False) -> TrainingStains | None:
    """Measure the stains of training ``samples`` (their slides: 32 tissue tiles each, cached), or ``None``
    (with a warning) when a slide is missing or none shows enough tissue.

    ``mapped``: whether the training patches are mapped to the reference (``cfg.stain_normalize``).
    """
    from ..sample import image_path, section_name

    paths = [image_path(a) for a in samples]
    names = [section_name(a, i) for i, a in enumerate(samples)]
    if not paths or any(p is None for p in paths):
        return None
    try:
        reference = reference_stain(paths, names)
    except StainEstimationError as err:
        warnings.warn(f"no reference stain stored in the model: {err}", UserWarning, stacklevel=2)
        return None
    sections, pixels = {}, {}
    for path, name in zip(paths, names, strict=True):
        od = tissue_od(slide_pixels(path))
        try:
            sections[name] = estimate_stain(od, {"source": Path(path).name})
        except StainEstimationError as err:
            warnings.warn(f"{name}: its stain is not stored in the model: {err}", UserWarning, stacklevel=2)
            continue
        pixels[name] = od
    spread = _spread(sections, pixels) if sections else 0.0
    return TrainingStains(reference, sections, spread, mapped)


class NearestStainNormaliser(StainNormaliser):
    """The rule of a model trained as scanned: a slide within the training spread of its nearest training section's
    stain is left as scanned; one further away is moved toward that stain until within the spread.

    Parameters
    ----------
    stains
        The model's :class:`TrainingStains` (with at least one section).
    source
        Where they came from, for records.
    """

    def __init__(self, stains: TrainingStains, source: str = "bundle") -> None:
        if not stains.sections:
            raise ValueError("the nearest-stain rule needs the training sections' stains")
        super().__init__(stains.reference, source)
        self.stains = stains
        self._choices: dict[str, dict[str, Any]] = {}

    def _target(self, key: str, own: StainEstimate) -> StainEstimate | str:
        od = tissue_od(slide_pixels(key), self.reference.floor)
        dist = {name: stain_distance(od, own, est) for name, est in self.stains.sections.items()}
        nearest = min(dist, key=dist.__getitem__)
        spread = self.stains.spread
        choice = {"nearest": nearest, "distance": round(dist[nearest], 6), "spread": round(spread, 6)}
        if dist[nearest] <= spread:
            with self._lock:
                self._choices[key] = {**choice, "fraction": 0.0}
            near = f"nearest {nearest}, {dist[nearest]:.3f} ≤ {spread:.3f}"
            return f"left as scanned: within the training stains ({near})"
        fraction = 1.0 - spread / dist[nearest]
        with self._lock:
            self._choices[key] = {**choice, "fraction": round(fraction, 6)}
        return toward(own, self.stains.sections[nearest], fraction)

    def record(self, path: Any, mode: str) -> dict[str, Any]:
        """As :meth:`StainNormaliser.record`, with the rule, the nearest training section, the distance to it,
        the spread and the fraction of the way the slide's stain was moved (0: left as scanned)."""
        out = super().record(path, mode)
        out["rule"] = RULE
        key = str(Path(path).expanduser().resolve()) if path is not None else ""
        out.update(self._choices.get(key, {}))
        return out

"""Evaluation protocols: ``ours`` (per-spot scale) and the reference code's ``paper`` protocol per dataset.

The ``paper`` preset (:func:`~napari_mclstexp.model.presets.get_preset`) is the reference code's HER2+
set-up.  Its evaluation scale, and its other datasets, differ as the reference scripts
(``evel_her2st.py``, ``evel_cscc.py``, ``evel_visium.py``, ``dataset.py``) run them:

``her2st``
    k 200, L1 distance; positions = array coordinates; ImageNet-style RGB in [0, 1].
``cscc``
    k 600, L2 distance; otherwise as ``her2st`` (legacy ST, same loader).
``visium``
    k 200, L2 distance; position indices = full-resolution **pixel** coordinates; images as cv2 reads
    them (BGR, 0–255, no ÷255); only flips and 90° rotations, no colour jitter, and the same random
    flips/rotations applied to the query patches at test time; training inputs, bank values and truth
    all on the per-gene scale (the reference's Visium loader reads the per-gene matrix for training too).

Every ``paper`` protocol scores on the reference's per-gene scale
(:data:`~napari_mclstexp.data.scales.PER_GENE`); ``ours`` on the per-spot scale the model trains on.
A protocol applied to another preset changes only the evaluation scale (bank values and truth), never
the model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..data.scales import PER_GENE, describe_scale, value_normalization
from ..errors import InputError

#: Datasets the reference code published, with a paper protocol each.
DATASETS = ("her2st", "cscc", "visium")
#: Protocol names :func:`resolve_protocol` accepts.
PROTOCOLS = ("ours", "paper", *(f"paper:{d}" for d in DATASETS))
#: cSCC section names in the reference (``P2_ST_rep1`` …).
_CSCC_NAME = re.compile(r"^P\d+_ST_rep\d+$", re.IGNORECASE)


@dataclass(frozen=True)
class PaperProtocol:
    """The reference code's set-up for one published dataset.

    Attributes
    ----------
    dataset
        ``"her2st"``, ``"cscc"`` or ``"visium"``.
    changes
        :class:`~napari_mclstexp.model.presets.TrainConfig` fields that differ from the ``paper``
        preset (which is the HER2+ set-up).
    published
        The paper's leave-one-slide-out means (ACG, HEG@50, MSE, MAE) on the per-gene scale.
    folds
        Number of sections (folds) the paper cross-validates.
    """

    dataset: str
    changes: dict[str, Any] = field(default_factory=dict)
    published: dict[str, float] = field(default_factory=dict)
    folds: int = 0


PAPER_PROTOCOLS: dict[str, PaperProtocol] = {
    "her2st": PaperProtocol(
        "her2st",
        {"k": 200, "distance": "l1"},
        {"acg": 0.2304, "heg50": 0.3866, "mse": 0.5897, "mae": 0.5813},
        32,
    ),
    "cscc": PaperProtocol(
        "cscc",
        {"k": 600, "distance": "l2"},
        {"acg": 0.3235, "heg50": 0.4261, "mse": 0.4302, "mae": 0.5208},
        12,
    ),
    "visium": PaperProtocol(
        "visium",
        {
            "k": 200,
            "distance": "l2",
            "position_source": "pixel",
            "image_norm": "bgr255",
            "flips": True,
            "rot90": True,
            "rotate_deg": 0.0,
            "color_jitter": (0.0, 0.0, 0.0),
            "test_augment": True,
            "normalization": PER_GENE,
        },
        {"acg": 0.1949, "heg50": 0.3611, "mse": 0.2329, "mae": 0.3897},
        9,
    ),
}


def detect_dataset(samples: Sequence[Any]) -> str:
    """The published dataset whose paper protocol fits ``samples``.

    Visium: 10x ``var['gene_ids']`` (Space Ranger matrices) or the Space Ranger scale factor
    ``fiducial_diameter_fullres``; cSCC: legacy ST sections named like ``P2_ST_rep1``; other legacy
    ST: ``her2st``.

    Raises
    ------
    InputError
        No samples, or samples of different kinds (choose ``paper:<dataset>`` explicitly).
    """
    from ..sample import library_id

    kinds = set()
    for adata in samples:
        entry = adata.uns.get("spatial", {}).get(library_id(adata), {}) if hasattr(adata, "uns") else {}
        factors = entry.get("scalefactors", {}) if isinstance(entry, dict) else {}
        if "fiducial_diameter_fullres" in factors or "gene_ids" in adata.var:
            kinds.add("visium")
        elif _CSCC_NAME.match(str(library_id(adata))):
            kinds.add("cscc")
        else:
            kinds.add("her2st")
    if len(kinds) != 1:
        found = ", ".join(sorted(kinds)) or "no samples"
        raise InputError(f"cannot tell the dataset's kind ({found}); choose --protocol paper:her2st|cscc|visium")
    return kinds.pop()


def paper_config(dataset: str, base: Any = None) -> Any:
    """The ``paper`` preset for ``dataset`` (``base``: a paper config to start from, default the preset)."""
    from ..model.presets import get_preset

    if dataset not in PAPER_PROTOCOLS:
        raise InputError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    cfg = get_preset("paper") if base is None else base
    extra = {**cfg.extra, "protocol": f"paper:{dataset}"}
    return cfg.replace(**PAPER_PROTOCOLS[dataset].changes, extra=extra)


def resolve_protocol(config: Any, protocol: str | None, samples: Sequence[Any] = ()) -> tuple[Any, dict[str, Any]]:
    """Apply an evaluation protocol to a training configuration.

    Parameters
    ----------
    config
        A :class:`~napari_mclstexp.model.presets.TrainConfig` (e.g. a preset with user overrides).
    protocol
        ``"ours"`` (per-spot scale), ``"paper"`` (the paper protocol of the data's kind,
        :func:`detect_dataset`), ``"paper:her2st"``, ``"paper:cscc"``, ``"paper:visium"``; ``None``:
        ``"paper"`` for the ``paper`` preset, else ``"ours"``.
    samples
        The data (needed to detect the dataset for ``"paper"``).

    Returns
    -------
    (config, info)
        The configuration to train and evaluate with, and a JSON-ready description: ``protocol``,
        ``dataset`` (paper protocols), ``scale`` (normalisation name), ``scale_description`` and
        ``published`` (the paper's numbers on that scale, for the ``paper`` preset).
    """
    if protocol is None:
        protocol = "paper" if config.preset == "paper" else "ours"
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    info: dict[str, Any] = {"protocol": protocol}
    if protocol == "ours":
        cfg = config.replace(value_normalization=None, extra={**config.extra, "protocol": "ours"})
    else:
        dataset = protocol.split(":", 1)[1] if ":" in protocol else detect_dataset(samples)
        info.update(protocol=f"paper:{dataset}", dataset=dataset)
        if config.preset == "paper":
            cfg = paper_config(dataset, config)
            info["published"] = dict(PAPER_PROTOCOLS[dataset].published)
        else:  # another model scored on the reference's scale: only the values change
            cfg = config.replace(value_normalization=PER_GENE, extra={**config.extra, "protocol": info["protocol"]})
    scale = value_normalization(cfg)
    info.update(scale=scale, scale_description=describe_scale(scale))
    return cfg, info

"""The model card of a bundle: what it was trained on and how far to trust it; the optional keys of format 2.

Bundle format 2 (:mod:`napari_mclstexp.bundle`) adds these *optional* ``metadata.json`` keys to format 1;
a format-1 bundle lacks them and loads as before (:func:`card_of` derives what it can):

``sections``
    ``{section: {"patient": str | None, "n_spots": int, "image": bool}}`` of the training (``image``) and
    expression-only bank sections; patient from ``obs['patient']``, else her2st's naming (the first letter of
    ``A1``…``H6``), else ``None``.
``genes_requested``
    The gene panel as asked for (``hvg:N``, a list file's name, or the marker names given).
``tissue``, ``notes``
    Free text from the user (``train --tissue "breast, HER2+" --notes ...``): organ, disease, stain, source.
``novelty``
    The novelty calibration (:mod:`napari_mclstexp.predict.novelty`): held-out typicality quantiles, ``k``,
    ``level`` and ``threshold``; with it predictions get ``obs['novelty']``.
``reference_stain``
    The training sections' stains (:class:`~napari_mclstexp.data.stain_rule.TrainingStains`): Macenko's H and E
    vectors and concentration percentiles of their pooled tissue
    (:meth:`~napari_mclstexp.data.stain.StainEstimate.to_dict`) and, beside them, ``training`` (``"as scanned"``,
    or ``"mapped to the reference"`` with ``train --stain-normalize``), ``section_stains`` (``{section: {"vectors",
    "max_concentrations", "pixels"}}``, each training section's own estimate) and ``spread`` (the largest
    distance from a training section's stain to the nearest other one, OD units).  ``predict --stain auto`` maps
    every slide to the reference when the sections were mapped to it; otherwise it leaves a slide within the
    spread of its nearest training section as scanned and moves one further away toward that section's stain
    (:mod:`napari_mclstexp.data.stain_rule`).  A reference without ``section_stains`` (stored, before they were,
    only with ``--stain-normalize``) is a mapped one.  Absent: slides are predicted as scanned.
``model_card``
    :func:`build_card`'s summary (no large arrays), copied by predictions into ``uns['mclstexp']['model_card']``.

and one optional array in ``bank.safetensors``: ``novelty_reference`` ``(R, D)`` float32, a bounded sample of
the training spots' head outputs that a bundle *without* a bank (ridge head) measures novelty against.
Every value is h5ad-safe (nested dicts of scalars, strings and lists of them).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Keys of ``metadata.json`` format 2 added, all optional (see the module docstring).
OPTIONAL_KEYS = ("sections", "genes_requested", "tissue", "notes", "novelty", "reference_stain", "model_card")
_HER2ST = re.compile(r"^([A-H])[1-6]$")


def patient_of(adata: Any, section: str) -> str | None:
    """``obs['patient']`` when it holds one value, else her2st's patient (first letter), else ``None``."""
    obs = getattr(adata, "obs", None)
    if obs is not None and "patient" in obs and len(obs):
        values = obs["patient"].astype(str).unique()
        if len(values) == 1:
            return str(values[0])
    match = _HER2ST.match(str(section))
    return match.group(1) if match else None


def section_records(samples: Sequence[Any], extra: Sequence[Any] = ()) -> dict[str, dict[str, Any]]:
    """``metadata['sections']``: patient and spot count of each training (and expression-only) section."""
    from .sample import section_name

    out: dict[str, dict[str, Any]] = {}
    for image, group in ((True, samples), (False, extra)):
        for i, adata in enumerate(group):
            name = section_name(adata, i if image else len(samples) + i)
            out[name] = {"patient": patient_of(adata, name), "n_spots": int(adata.n_obs), "image": image}
    return out


def requested_genes(spec: Any) -> Any:
    """The gene-panel request as JSON: a string as given (``hvg:N``, file name), a list of names, or None."""
    if spec is None:
        return None
    if isinstance(spec, (str, bytes)) or hasattr(spec, "__fspath__"):
        return str(spec)
    return [str(g) for g in spec]


def _reliability_summary(rel: Any) -> dict[str, Any] | None:
    if not isinstance(rel, dict) or "r" not in rel:
        return None
    r = np.array([np.nan if v is None else float(v) for v in rel["r"]], np.float64)
    threshold = float(rel.get("threshold", 0.3))
    ok = r[np.isfinite(r)]
    return {
        "median_r": float(np.median(ok)) if len(ok) else None,
        "n_reliable": int((ok >= threshold).sum()),
        "n_genes": int(len(r)),
        "threshold": threshold,
        "method": rel.get("method"),
    }


def _stain_summary(data: Any) -> dict[str, Any] | None:
    """The card's view of a reference stain: the colours of H and E alone and the sections it was measured on."""
    from .data.stain import StainEstimate
    from .errors import InputError

    if not isinstance(data, dict):
        return None
    try:
        colours = StainEstimate.from_dict(data).swatches()
    except InputError:
        return None
    out = {"haematoxylin": [int(v) for v in colours[0]], "eosin": [int(v) for v in colours[1]]}
    out["training"] = "as scanned" if data.get("training") == "as scanned" else "mapped to the reference"
    if isinstance(data.get("spread"), (int, float)):
        out["spread"] = float(data["spread"])
    return {**out, "sections": data.get("sections")}


def build_card(meta: dict[str, Any], bank_spots: int | None = None) -> dict[str, Any]:
    """The model card of a bundle's metadata: what is known of its training, nothing invented.

    Keys with unknown values are left out; ``complete`` is ``False`` for a bundle made before format 2.
    """
    cfg = meta.get("config") or {}
    sections = meta.get("sections")
    if not isinstance(sections, dict):  # format 1: names only
        sections = {
            str(s): {"patient": patient_of(None, str(s)), "image": key == "train_sections"}
            for key in ("train_sections", "extra_sections")
            for s in meta.get(key, [])
        }
    novelty = meta.get("novelty")
    card = {
        "complete": "novelty" in meta or "sections" in meta,
        "format_version": meta.get("format_version"),
        "sections": {s: {k: v for k, v in rec.items() if v is not None} for s, rec in sections.items()},
        "patients": sorted({str(r["patient"]) for r in sections.values() if r.get("patient") is not None}),
        "n_training_spots": sum(int(r.get("n_spots", 0)) for r in sections.values() if r.get("image", True)) or None,
        "tissue": meta.get("tissue"),
        "notes": meta.get("notes"),
        "n_genes": len(meta.get("genes", [])),
        "genes_requested": meta.get("genes_requested"),
        "preset": meta.get("preset"),
        "encoder": meta.get("encoder"),
        "weights": cfg.get("weights"),
        "head": cfg.get("head", "contrastive"),
        "freeze": cfg.get("freeze"),
        "descriptors": bool(cfg.get("descriptors")),
        "epochs": cfg.get("epochs"),
        "training_mpp": meta.get("training_mpp"),
        "patch_um": meta.get("patch_um"),
        "patch_px": meta.get("patch_px"),
        "bank_spots": bank_spots,
        "reliability": _reliability_summary(meta.get("reliability")),
        "novelty": (
            {
                **{k: novelty.get(k) for k in ("level", "threshold", "median", "k", "n_spots", "groups", "space")},
                "descriptors": isinstance(novelty.get("descriptors"), dict),  # also scored on tissue descriptors
            }
            if isinstance(novelty, dict)
            else None
        ),
        "reference_stain": "reference_stain" in meta,
        "stain": _stain_summary(meta.get("reference_stain")),
        "versions": meta.get("versions"),
        "created": meta.get("created"),
    }
    from .analysis.report import json_safe

    return json_safe(card, drop_none=True)


def card_text(card: dict[str, Any], name: str = "") -> str:
    """The card as a few lines of human text (``mclstexp info``, the Predict step's tooltip)."""
    lines = [f"model {name}".rstrip() + f" (bundle format {card.get('format_version', '?')})"]
    secs = card.get("sections", {})
    parts = []
    for s, rec in secs.items():
        bits = [f"patient {rec['patient']}"] if "patient" in rec else []
        bits += [f"{rec['n_spots']} spots"] if "n_spots" in rec else []
        bits += [] if rec.get("image", True) else ["expression only"]
        parts.append(f"{s} ({', '.join(bits)})" if bits else s)
    lines.append("trained on: " + (", ".join(parts) if parts else "unknown"))
    notes = f"; notes: {card['notes']}" if "notes" in card else ""
    lines.append(f"tissue: {card.get('tissue', 'not given')}{notes}")
    asked = card.get("genes_requested")
    asked = ", ".join(asked) if isinstance(asked, list) else asked
    lines.append(f"genes: {card.get('n_genes', '?')}" + (f" (asked for: {asked})" if asked else ""))
    lines.append(
        f"model: preset {card.get('preset', '?')}, encoder {card.get('encoder', '?')}, head {card.get('head', '?')}"
        + (f", weights {card['weights']}" if "weights" in card else "")
        + (", frozen" if card.get("freeze") else "")
        + (", tissue descriptors" if card.get("descriptors") else "")
    )
    mpp, um = card.get("training_mpp"), card.get("patch_um")
    lines.append(
        f"scale: {f'{mpp:.3g} µm/px' if mpp else 'µm/px unknown'}, patch "
        + (f"{um:.0f} µm" if um else f"{card.get('patch_px', '?')} px")
    )
    rel = card.get("reliability")
    if rel:
        med = rel.get("median_r")
        lines.append(
            f"held-out reliability: median r {'n/a' if med is None else f'{med:.3f}'}, "
            f"{rel['n_reliable']} of {rel['n_genes']} genes at r ≥ {rel['threshold']:.2f}"
        )
    else:
        lines.append("held-out reliability: not recorded")
    nov = card.get("novelty")
    if nov:
        lines.append(
            f"novelty: calibrated on {nov.get('n_spots', '?')} held-out training spots ({nov.get('groups', '?')}); "
            f"novel above the {100 * nov.get('level', 0.99):.0f}th percentile; scored on image embeddings"
            + (" and tissue descriptors" if nov.get("descriptors") else "")
        )
    else:
        lines.append("novelty: not calibrated (bundle made before format 2): predictions carry no obs['novelty']")
    stain = card.get("stain")
    if stain:
        on = f" of {', '.join(stain['sections'])}" if stain.get("sections") else ""
        rule = (
            " (predict --stain auto maps each slide to it)"
            if stain.get("training") != "as scanned"
            else f" (trained as scanned; predict --stain auto leaves slides within the training stains' spread of "
            f"{stain.get('spread', 0):.3f} OD as scanned and moves others toward the nearest section's stain)"
        )
        lines.append(
            f"reference stain{on}: haematoxylin rgb{tuple(stain['haematoxylin'])}, eosin rgb{tuple(stain['eosin'])}"
            + rule
        )
    else:
        lines.append("reference stain: none (bundle made before stains were stored): slides are predicted as scanned")
    vers = card.get("versions") or {}
    lines.append(
        f"made {card.get('created', 'at an unknown date')}"
        + (f" with napari-mclstexp {vers['napari_mclstexp']}" if "napari_mclstexp" in vers else "")
        + (f", torch {vers['torch']}" if "torch" in vers else "")
    )
    return "\n".join(lines)


def card_summary(card: dict[str, Any]) -> str:
    """One line for a label: sections, tissue, genes, novelty calibrated or not."""
    secs = list(card.get("sections", {}))
    where = ", ".join(secs[:4]) + (f" +{len(secs) - 4}" if len(secs) > 4 else "") if secs else "unknown sections"
    tissue = card.get("tissue", "tissue not given")
    nov = "novelty calibrated" if card.get("novelty") else "no novelty calibration"
    return f"trained on {where}; {tissue}; {card.get('n_genes', '?')} genes; {nov}"

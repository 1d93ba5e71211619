"""The shareable model file (``.mclst``): weights, metadata and reference bank in one zip.

Layout (format version 2; version 1 lacks the optional keys, and still loads)::

    metadata.json        format name/version, preset and every hyperparameter, genes, normalisation,
                         patch size (px, µm), image normalisation, encoder, pos_shape, training sections,
                         metrics, library versions, creation time, bank summary
    weights.safetensors  the model's state dict
    bank.safetensors     "embeddings" (M, D) float32 or float16, "expression" (M, G) float32,
                         "section_index" (M,) int32 into metadata["bank"]["sections"], and optionally
                         "descriptors" (M_img, D) float32: tissue descriptors of the first M_img spots
    bank_spots.json      the bank spots' ids (obs_names), a JSON list of M strings

Format 2 adds optional metadata keys (sections with patients and spot counts, genes asked for, tissue and
notes, novelty calibration, reference stain, model card) and the optional bank array ``novelty_reference``,
all documented in one place: :mod:`napari_mclstexp.model_card`.

Loading reads JSON and safetensors only: nothing is ever unpickled.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .analysis.report import json_safe, versions
from .atomic import atomic_write_path
from .bundle_file import FORMAT_NAME, FORMAT_VERSION, read_members
from .errors import BundleError, InputError, MissingInputError
from .model.bank import ReferenceBank, build_bank

SUFFIX = ".mclst"


@dataclass
class Bundle:
    """A trained model with everything needed to predict.

    Attributes
    ----------
    config
        Every hyperparameter (``TrainConfig.to_dict()``).
    genes
        The gene panel, in prediction order.
    state_dict
        Model weights (CPU tensors).
    bank
        The reference bank used for retrieval.
    metadata
        The ``metadata.json`` content (see module docstring).
    """

    config: dict[str, Any]
    genes: list[str]
    state_dict: dict[str, torch.Tensor]
    bank: ReferenceBank
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  #: the file it was loaded from / saved to, if any
    encoder_weights: str | None = None  #: file for referenced (not embedded) encoder weights; None: as recorded
    #: (M_img, D) tissue descriptors of the bank's first M_img (image) spots (predict/descriptor_model.py), or None
    descriptors: np.ndarray | None = None
    #: (R, D) head outputs of a bounded sample of training spots: the novelty reference of a bank-less (ridge) bundle
    novelty_reference: np.ndarray | None = None

    @property
    def card(self) -> dict[str, Any]:
        """The model card (:mod:`~napari_mclstexp.model_card`): stored, else derived from what format 1 knows."""
        from .model_card import build_card

        card = self.metadata.get("model_card")
        return dict(card) if isinstance(card, dict) else build_card(self.metadata, len(self.bank))

    @property
    def pos_shape(self) -> tuple[int, int]:
        """Rows of the (x, y) position tables the weights were trained with."""
        shape = self.metadata.get("pos_shape")
        if shape is None:
            raise BundleError("bundle metadata lacks pos_shape")
        return int(shape[0]), int(shape[1])

    @property
    def patch_px(self) -> int:
        """Crop edge in full-resolution px of the training images."""
        return int(self.config["patch_px"])

    @property
    def patch_um(self) -> float | None:
        """Crop edge in µm when the training images' pixel size was known."""
        value = self.metadata.get("patch_um")
        return float(value) if value else None

    def build_model(self, device: torch.device | str = "cpu") -> torch.nn.Module:
        """Rebuild the model, load the weights, move it to ``device`` in eval mode."""
        from .model.encoder_refs import build_bundle_model

        return build_bundle_model(self, device)


def _training_mpp(samples: Sequence[Any]) -> float | None:
    from .sample import microns_per_pixel

    values = [m for m in (microns_per_pixel(a) for a in samples) if m]
    return float(np.median(values)) if values else None


def make_bundle(
    train_result: Any,
    samples: Sequence[Any],
    device: torch.device | str = "cpu",
    extra_samples: Sequence[Any] = (),
    *,
    metrics: dict[str, Any] | None = None,
    about: dict[str, Any] | None = None,
) -> Bundle:
    """Bundle a training result with a reference bank built from the training spots.

    Parameters
    ----------
    train_result
        A :class:`~napari_mclstexp.train.trainer.TrainResult` (``model``, ``config``, ``genes``,
        ``train_sections``, ``history``, ``pos_shape``).
    samples
        The training sections (their spots become the bank).
    device
        Where to run the spot encoder.
    extra_samples
        Expression-only sections added to the bank (no images needed).
    metrics
        Evaluation figures to record (e.g. cross-validation ACG); the last training epoch's numbers
        are recorded in any case.
    about
        What the user said of the training data: ``tissue``, ``notes`` (free text) and ``genes`` (the panel
        as asked for); stored with the sections' patients and spot counts (:mod:`~napari_mclstexp.model_card`).
    """
    from .data.scales import value_normalization
    from .model.presets import as_config

    cfg = as_config(train_result.config)
    genes = [str(g) for g in train_result.genes]
    model = train_result.model
    model = getattr(model, "module", model)  # unwrap DDP
    if cfg.head == "ridge":  # predicts directly: no reference bank
        dim = int(cfg.embed_dim)
        bank = ReferenceBank(np.zeros((0, dim), np.float32), np.zeros((0, len(genes)), np.float32), genes, [], [])
    else:
        bank = build_bank(model, samples, genes, cfg, device, extra=extra_samples)
    mpp = _training_mpp(samples)
    history = list(getattr(train_result, "history", []) or [])
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "preset": cfg.preset,
        "config": cfg.to_dict(),
        "genes": genes,
        "normalization": cfg.normalization,
        "value_normalization": value_normalization(cfg),  # scale of the bank's values and predictions
        "patch_px": int(cfg.patch_px),
        "input_px": int(cfg.input_px),
        "training_mpp": mpp,
        "patch_um": float(cfg.patch_um) if cfg.patch_um else (float(cfg.patch_px * mpp) if mpp else None),
        "image_normalization": cfg.image_norm,
        "encoder": cfg.encoder,
        "embed_dim": int(cfg.embed_dim),
        "pos_shape": [int(v) for v in train_result.pos_shape],
        "train_sections": [str(s) for s in getattr(train_result, "train_sections", [])],
        "extra_sections": sorted({str(s) for s in bank.sections} - set(map(str, train_result.train_sections))),
        "metrics": {"final_epoch": history[-1] if history else None, **(metrics or {})},
        "history": history,
        "k": int(cfg.k),
        "distance": cfg.distance,
        "versions": versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    from .model_card import requested_genes, section_records

    about = about or {}
    metadata["sections"] = section_records(samples, extra_samples)
    metadata["genes_requested"] = requested_genes(about.get("genes"))
    metadata.update({key: str(about[key]).strip() for key in ("tissue", "notes") if str(about.get(key) or "").strip()})
    from .model.encoder_refs import encoder_metadata, strip_referenced

    metadata.update(encoder_metadata(cfg, model))
    from .data.slide_stain import METADATA_KEY
    from .data.stain_rule import training_stains

    # always measured (32 tissue tiles a section); the patches were mapped to its reference with stain_normalize
    stains = training_stains(samples, mapped=bool(cfg.stain_normalize))
    if stains is not None:
        metadata[METADATA_KEY] = stains.to_dict()
    state = strip_referenced({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, metadata)
    return Bundle(cfg.to_dict(), genes, state, bank, json_safe(metadata))


def save_bundle(bundle: Bundle, path: str | os.PathLike, *, bank_dtype: str = "float32") -> Path:
    """Write ``bundle`` to one ``.mclst`` zip file, atomically.

    Parameters
    ----------
    bundle
        The bundle to write.
    path
        Destination (``.mclst`` recommended).
    bank_dtype
        ``"float32"`` or ``"float16"`` for the bank embeddings (float16 halves the bank's size;
        expression stays float32).

    Returns
    -------
    pathlib.Path
        The written path.
    """
    from safetensors.numpy import save as save_np
    from safetensors.torch import save as save_torch

    if bank_dtype not in ("float32", "float16"):
        raise ValueError(f"bank_dtype must be float32 or float16, not {bank_dtype!r}")
    bank = bundle.bank
    section_names = sorted(set(bank.sections.tolist()))
    lookup = {s: i for i, s in enumerate(section_names)}
    metadata = dict(bundle.metadata)
    metadata.update(format=FORMAT_NAME, format_version=FORMAT_VERSION, config=bundle.config, genes=bundle.genes)
    from .model_card import build_card

    metadata.pop("model_card", None)
    metadata["model_card"] = build_card({**metadata, "format_version": FORMAT_VERSION}, len(bank))
    metadata["bank"] = {
        "n_spots": len(bank),
        "dim": bank.dim,
        "embedding_dtype": bank_dtype,
        "sections": section_names,
    }
    weights = save_torch({k: v.detach().cpu().contiguous() for k, v in bundle.state_dict.items()})
    bank_bytes = save_np(
        {
            "embeddings": np.ascontiguousarray(bank.embeddings, dtype=bank_dtype),
            "expression": np.ascontiguousarray(bank.expression, dtype=np.float32),
            "section_index": np.asarray([lookup[s] for s in bank.sections.tolist()], dtype=np.int32),
            **({} if bundle.descriptors is None else {"descriptors": np.asarray(bundle.descriptors, np.float32)}),
            **(
                {}
                if bundle.novelty_reference is None
                else {"novelty_reference": np.asarray(bundle.novelty_reference, np.float32)}
            ),
        }
    )
    dest = Path(path)
    with atomic_write_path(dest) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr("metadata.json", json.dumps(json_safe(metadata), indent=1))
            zf.writestr("weights.safetensors", weights)
            zf.writestr("bank.safetensors", bank_bytes)
            zf.writestr("bank_spots.json", json.dumps(bank.spot_ids.tolist()))
    bundle.metadata = json_safe(metadata)
    bundle.path = dest.resolve()
    return dest


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Read a ``.mclst`` bundle (JSON + safetensors only; nothing is unpickled).

    Raises
    ------
    MissingInputError
        The file does not exist.
    BundleError
        Not a bundle, corrupt or truncated, incomplete, or of an unknown / newer format version.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_np
    from safetensors.torch import load as load_torch

    path = Path(path)
    if not path.is_file():
        raise MissingInputError("model bundle not found", path)
    members = read_members(path)
    meta = members["metadata"]
    try:
        state = load_torch(members["weights.safetensors"])
        arrays = load_np(members["bank.safetensors"])
        spot_ids = json.loads(members["bank_spots.json"])
    except (SafetensorError, ValueError, OSError) as err:
        raise BundleError(f"corrupt bundle content: {err}", path) from err
    try:
        config, genes = dict(meta["config"]), [str(g) for g in meta["genes"]]
        sections = np.asarray(meta["bank"]["sections"], dtype=str)[arrays["section_index"]]
        bank = ReferenceBank(arrays["embeddings"], arrays["expression"], genes, sections, spot_ids)
        descriptors = arrays.get("descriptors")
        if descriptors is not None and (descriptors.ndim != 2 or len(descriptors) > len(bank)):
            raise ValueError(f"descriptors of shape {descriptors.shape} for a bank of {len(bank)} spots")
        _ = meta["pos_shape"]
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise BundleError(f"bundle content is inconsistent: {err!r}", path) from err
    from .model.presets import as_config

    try:
        as_config(config)
    except InputError as err:
        raise BundleError(f"bundle hyperparameters are not understood by this version: {err}", path) from err
    reference = arrays.get("novelty_reference")
    return Bundle(
        config, genes, state, bank, meta, path.resolve(), descriptors=descriptors, novelty_reference=reference
    )

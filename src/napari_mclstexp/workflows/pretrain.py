"""``mclstexp pretrain``: self-supervised encoder pretraining on a user's own slides, saved for ``--weights``.

One function, :func:`pretrain_and_save`, is what the CLI and the Train widget call: tissue tiles of the
slides (:mod:`.pretrain_tiles`), SimCLR (:mod:`napari_mclstexp.train.pretrain`), then the encoder's
state dict written atomically as ``.safetensors`` and loaded back once into a fresh encoder, so a file
that ``train --weights FILE`` would refuse is never left behind.  The preset fixes the encoder, its
input size, the crop size and the input scaling, so the weights fit the model that preset trains.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_path, check_writable_folder
from ..errors import InputError, OutputError
from ..model.encoders import ENCODERS, make_image_encoder
from ..model.presets import get_preset
from ..model.weights import load_weights_file
from ..progress import CancelToken, ProgressGen
from ..train.pretrain import PretrainResult, iter_pretrain_tiles
from .pretrain_tiles import iter_collect_tiles

__all__ = ["PretrainedEncoder", "pretrain_and_save", "pretrain_output", "save_encoder"]

#: Defaults of a pretraining run (the CLI's and the widget's).
#: The setting measured in ``benchmarks/pretrain.py`` (≈ 140 steps for three slides).
DEFAULT_EPOCHS = 3
DEFAULT_TILES_PER_SLIDE = 1000
DEFAULT_BATCH = 64


@dataclass
class PretrainedEncoder:
    """What :func:`pretrain_and_save` returns: the written file and the run's result."""

    path: Path
    result: PretrainResult
    n_slides: int


def pretrain_output(out: str | os.PathLike) -> Path:
    """Check, before any work, that the weights can be written at ``out`` (``.safetensors`` added if no suffix).

    Raises
    ------
    OutputError
        A folder, another suffix, or an unwritable place.
    """
    if not str(out).strip():
        raise InputError("choose where to save the encoder weights (.safetensors)")
    path = Path(out).expanduser()
    if path.is_dir():
        raise OutputError("is a folder; give a file name such as encoder.safetensors", path)
    if not path.suffix:
        path = path.with_name(path.name + ".safetensors")
    if path.suffix.lower() != ".safetensors":
        raise OutputError("pretrained weights are written as .safetensors; use that suffix", path)
    check_writable_folder(path, "the weights")
    return path


def save_encoder(result: PretrainResult, out: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write ``result.state_dict`` as ``.safetensors`` (atomic) and check it loads into a fresh encoder.

    The file's metadata (strings) records the encoder, input size, input scaling, objective and run facts.

    Raises
    ------
    WeightsUnavailableError
        The written file does not fit ``make_image_encoder(result.encoder, ...)`` (never left behind).
    """
    from safetensors.torch import save

    path = Path(out)
    meta = {
        "format": "pt",
        "mclstexp": "pretrained-encoder",
        "objective": "simclr",
        "encoder": result.encoder,
        "input_px": str(result.input_px),
        "image_norm": result.image_norm,
        "n_tiles": str(result.n_tiles),
        "history": json.dumps(result.history),
        **{k: str(v) for k, v in (extra or {}).items()},
    }
    with atomic_write_path(path) as tmp:
        tmp.write_bytes(save(result.state_dict, metadata=meta))  # keeps the file mode atomic_write_path set
    fresh, _ = make_image_encoder(result.encoder, "none", result.input_px)
    try:  # read back the way ``train --weights`` reads it
        load_weights_file(fresh, path, result.encoder)
    except Exception:
        path.unlink(missing_ok=True)
        raise
    return path


def pretrain_and_save(
    slides: Sequence[str | os.PathLike | Any],
    out: str | os.PathLike,
    *,
    preset: str = "quick",
    encoder: str | None = None,
    epochs: int = DEFAULT_EPOCHS,
    tiles_per_slide: int = DEFAULT_TILES_PER_SLIDE,
    batch_size: int = DEFAULT_BATCH,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "auto",
    cancel: CancelToken | None = None,
    **options: Any,
) -> ProgressGen[PretrainedEncoder]:
    """Pretrain the preset's image encoder on tissue tiles of ``slides`` and save it for ``--weights``.

    Parameters
    ----------
    slides
        Image files, ``.h5ad`` samples with an image, or AnnData samples (slides without ST data too).
    out
        The ``.safetensors`` file to write.
    preset
        Preset whose ``encoder``, ``input_px``, ``patch_px``/``patch_um`` and ``image_norm`` the weights
        are made for (``quick``: ``smallcnn`` at 64 px from 224 px crops, inputs in [0, 1]).
    encoder
        Another encoder name than the preset's (e.g. ``resnet18``).  Pretraining starts from random
        weights unless ``init="imagenet"`` or ``init=FILE`` is passed in ``options``.
    epochs, tiles_per_slide, batch_size, lr, seed, device
        See :func:`~napari_mclstexp.train.pretrain.iter_pretrain_tiles` and
        :func:`~napari_mclstexp.workflows.pretrain_tiles.iter_collect_tiles`.
    **options
        Passed to :func:`~napari_mclstexp.train.pretrain.iter_pretrain_tiles` (``temperature``,
        ``crop_scale``, ``jitter``, ``weight_decay``, ``threads``, ``init``).

    Yields
    ------
    Progress
        Stages ``"tiles"`` then ``"pretrain"``.

    Returns
    -------
    PretrainedEncoder
    """
    path = pretrain_output(out)
    cfg = get_preset(preset)
    name = encoder or cfg.encoder
    if name not in ENCODERS:
        raise InputError(f"pretraining supports smallcnn, resnet18, resnet50 and densenet121, not {name!r}")
    store_px = int(round(cfg.input_px * 1.5))
    tiles = yield from iter_collect_tiles(
        slides,
        tiles_per_slide=tiles_per_slide,
        patch_px=cfg.patch_px,
        patch_um=cfg.patch_um,
        store_px=store_px,
        seed=seed,
        cancel=cancel,
    )
    result = yield from iter_pretrain_tiles(
        tiles,
        encoder=name,
        input_px=cfg.input_px,
        image_norm=cfg.image_norm,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        cancel=cancel,
        **options,
    )
    save_encoder(result, path, {"preset": preset, "patch_px": cfg.patch_px, "patch_um": cfg.patch_um, "seed": seed})
    return PretrainedEncoder(path=path, result=result, n_slides=len(slides))

"""Train and save a model bundle: the one implementation behind ``mclstexp train`` and the Train widget.

Both faces get the same run: patches extracted once into the on-disk :class:`~napari_mclstexp.data.patches.PatchCache`
(a rerun or another preset on the same sections reads them back), a checkpoint after every epoch next to
the bundle (``MODEL.mclst.ckpt``), and resuming from it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..atomic import check_writable_folder
from ..bundle import make_bundle, save_bundle
from ..data.panel import check_default_panel
from ..data.patches import PatchCache, default_cache_root
from ..errors import CheckpointMismatchError, InputError, OutputError
from ..io.h5ad import read_sample
from ..progress import CancelToken, ProgressGen
from ..sample import image_path, library_id
from ..train import trainer
from .reliability import iter_finish_bundle

if TYPE_CHECKING:
    from anndata import AnnData

    from ..bundle import Bundle
    from ..model.presets import TrainConfig


@dataclass
class SavedModel:
    """What :func:`train_and_save` returns.

    Attributes
    ----------
    bundle
        The saved bundle (``None`` on the non-zero ranks of a distributed run, which write nothing).
    result
        The trainer's result (history, device, timings).
    path
        Where the bundle was written.
    checkpoint
        The checkpoint file (kept for resuming; the caller says so or removes it).
    resumed_from_epoch
        Epochs the checkpoint already held when training started (0: a fresh run).
    """

    bundle: Bundle | None
    result: trainer.TrainResult
    path: Path
    checkpoint: Path
    resumed_from_epoch: int = 0


def bundle_output(out: str | os.PathLike, *, add_suffix: bool = True) -> Path:
    """Check, before any training, that the bundle can be written at ``out``; returns the path.

    With ``add_suffix`` a name without ``.mclst`` gets it (the Predict widget's file dialog lists only
    those); missing folders are created.

    Raises
    ------
    InputError
        No path given.
    OutputError
        ``out`` is a folder, or nothing can be written there (the path is named).
    """
    if not str(out).strip():
        raise InputError("choose where to save the model bundle (.mclst)")
    path = Path(out).expanduser()
    if path.is_dir():
        raise OutputError("is a folder; give a file name such as model.mclst", path)
    if add_suffix and path.suffix.lower() != ".mclst":
        path = path.with_name(path.name + ".mclst")
    check_writable_folder(path, "the model")
    return path


def checkpoint_for(bundle_path: Path) -> Path:
    """The default checkpoint of a bundle: ``MODEL.mclst.ckpt`` beside it."""
    return bundle_path.with_name(bundle_path.name + ".ckpt")


def check_training(
    samples: Sequence[AnnData | str | os.PathLike],
    config: TrainConfig,
    out: str | os.PathLike,
    *,
    genes: Any = None,
    add_suffix: bool = False,
) -> tuple[list[AnnData], Path]:
    """What :func:`train_and_save` checks before any training: sections given, each with its slide, the
    bundle writable, a default panel that fits in memory.  Returns the samples (paths read) and the
    bundle path."""
    if not samples:
        raise InputError("give at least one section to train on")
    samples = [s if hasattr(s, "obsm") else read_sample(s, require_image=True) for s in samples]
    for adata in samples:
        if image_path(adata) is None:
            raise InputError(
                f"{library_id(adata)}: no H&E slide for these spots, and training needs one; open "
                "the slide with the spots (Load → Slide) or leave this section out"
            )
    path = bundle_output(out, add_suffix=add_suffix)
    check_default_panel(samples, genes, config)  # all shared genes of real data: tens of GB
    return samples, path


def train_and_save(
    samples: Sequence[AnnData | str | os.PathLike],
    config: TrainConfig,
    out: str | os.PathLike,
    *,
    genes: Any = None,
    device: str = "auto",
    checkpoint: str | os.PathLike | None = None,
    resume: bool | Literal["auto"] = False,
    patch_cache: PatchCache | None = None,
    add_suffix: bool = False,
    cancel: CancelToken | None = None,
    bins_per_epoch: int | None = None,
    bank_size: int | None = None,
    bank_extra: Sequence[Any] = (),
    tissue: str | None = None,
    notes: str | None = None,
) -> ProgressGen[SavedModel]:
    """Generator: train on ``samples``, build the bundle (model + reference bank) and save it atomically.

    Parameters
    ----------
    samples
        Training sections (AnnData or ``.h5ad`` paths), each with its H&E slide.
    config
        The preset with the user's changes.
    out
        The bundle file; checked before training starts (see :func:`bundle_output`).
    genes
        Gene panel spec (``None``, ``"hvg:N"``, a list file, a list of names).
    device
        ``auto``, ``cpu``, ``cuda``, ``cuda:K``, ``mps``.
    checkpoint
        Written after every epoch; default :func:`checkpoint_for` ``(out)``.
    resume
        ``True``: continue from the checkpoint (it must match the data and options); ``"auto"``: continue
        when it matches, else warn and start afresh (what the Train widget does after a Cancel).
    patch_cache
        Where extracted patches are kept; default the user's cache (``$MCLSTEXP_CACHE``).
    add_suffix
        Add ``.mclst`` to an ``out`` without it.
    cancel
        Checked between training steps.
    bins_per_epoch
        Binned data (Visium HD): each epoch trains on a fresh stratified sample of this many bins
        (:func:`~napari_mclstexp.train.bins.train_on_bins`; ``resume`` does not apply).
    bank_size
        The reference bank holds at most this many spots/bins (stratified subsample; ``None``: all).
    bank_extra
        Expression-only sections (AnnData or ``.h5ad`` paths; no image needed) that join the reference
        bank: more reference spots to retrieve from (measured by ``python -m benchmarks accuracy-levers``).

    Returns
    -------
    SavedModel
    """
    samples, path = check_training(samples, config, out, genes=genes, add_suffix=add_suffix)
    ckpt = Path(checkpoint).expanduser() if checkpoint else checkpoint_for(path)
    cache = patch_cache if patch_cache is not None else PatchCache(default_cache_root())
    kwargs = dict(genes=genes, device=device, checkpoint=ckpt, patch_cache=cache, cancel=cancel)
    for name, value in (("bins per epoch", bins_per_epoch), ("bank size", bank_size)):
        if value is not None and value < 1:
            raise InputError(f"{name} must be at least 1, not {value}")
    if bins_per_epoch:
        from ..train.bins import train_on_bins

        result = yield from train_on_bins(samples, config, bins_per_epoch=int(bins_per_epoch), **kwargs)
    else:
        try:
            result = yield from trainer.train(samples, config, resume=bool(resume), **kwargs)
        except CheckpointMismatchError as err:
            if resume != "auto":
                raise
            warnings.warn(f"{err.problem}: training afresh (the checkpoint is replaced)", UserWarning, stacklevel=2)
            result = yield from trainer.train(samples, config, resume=False, **kwargs)
    resumed = result.start_epoch
    if not result.is_main:
        return SavedModel(None, result, path, ckpt, resumed)
    from ..train.bins import bank_samples

    bank = bank_samples(samples, bank_size, seed=config.seed)  # bounded for binned sections (Visium HD)
    extra = [s if hasattr(s, "obsm") else read_sample(s) for s in bank_extra]
    about = {"tissue": tissue, "notes": notes, "genes": genes}
    bundle = make_bundle(result, bank, device=result.device, extra_samples=extra, about=about)
    # descriptors, blend and neighbour weights, per-gene held-out reliability travel with the model
    yield from iter_finish_bundle(bundle, bank, device=result.device, patch_cache=cache, cancel=cancel)
    save_bundle(bundle, path)
    return SavedModel(bundle, result, path, ckpt, resumed)

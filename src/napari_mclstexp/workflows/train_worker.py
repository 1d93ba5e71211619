"""Training in a worker process (the napari panel's training): the viewer's GUI thread never waits for the
training loop's GIL.

:func:`train_in_process` is a generator like :func:`~napari_mclstexp.workflows.train.train_and_save`
(one progress bar, the same cancel, the same :class:`~napari_mclstexp.workflows.train.SavedModel`); the
work runs in a ``spawn`` process (:func:`~napari_mclstexp.progress_process.run_in_process`) with torch on
``cores − 1`` threads and at a lower scheduling priority than the viewer (``nice`` +10); the bundle path
comes back and the bundle is read from it in the caller.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..process_gate import ProcessGate
from ..progress import CancelToken, ProgressGen
from ..progress_process import BACKGROUND_NICE, run_in_process

if TYPE_CHECKING:
    from anndata import AnnData

    from ..model.presets import TrainConfig
    from .train import SavedModel


def worker_threads(device: str) -> int | None:
    """Torch threads of a CPU training beside a GUI: one core left to the viewer (``None``: leave as is)."""
    cores = os.cpu_count() or 1
    if not str(device).startswith("cpu") or cores < 2:
        return None
    return cores - 1


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Torch on ``threads`` threads inside the block (``None``: unchanged)."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_worker(
    samples: Sequence[AnnData | str],
    config: TrainConfig,
    out: str,
    *,
    threads: int | None = None,
    cancel: CancelToken | None = None,
    **kwargs: Any,
) -> ProgressGen[SavedModel]:
    """The worker process's generator: :func:`~.train.train_and_save` on one progress bar
    (:func:`~.train_progress.one_bar`); returns the :class:`SavedModel` without the bundle and the
    trained module (the caller reads the saved bundle)."""
    from .train import train_and_save
    from .train_progress import one_bar

    with torch_threads(threads):
        saved = yield from one_bar(train_and_save(samples, config, out, cancel=cancel, **kwargs))
    result = dataclasses.replace(saved.result, model=None) if saved.result is not None else None
    return dataclasses.replace(saved, bundle=None, result=result)


def train_in_process(
    samples: Sequence[AnnData | str],
    config: TrainConfig,
    out: str,
    *,
    device: str = "auto",
    cancel: CancelToken | None = None,
    gate: ProcessGate | None = None,
    **kwargs: Any,
) -> ProgressGen[SavedModel]:
    """Generator: train and save in a worker process; returns the :class:`SavedModel` with its bundle
    read from the saved file (``result.model`` is ``None``: the bundle holds the model).

    Parameters are those of :func:`~.train.train_and_save` (``samples`` travel pickled to the worker), and
    ``gate``: holds the worker process while the viewer works (:class:`~..process_gate.ProcessGate`).
    """
    from ..bundle import load_bundle
    from .train import check_training

    # the quick checks here: a wrong path or a missing slide is said at once, not after a process starts
    samples, path = check_training(
        samples, config, out, genes=kwargs.get("genes"), add_suffix=bool(kwargs.pop("add_suffix", False))
    )
    saved = yield from run_in_process(
        train_worker,
        samples,
        config,
        str(path),
        device=device,
        threads=worker_threads(device),
        cancel=cancel,
        niceness=BACKGROUND_NICE,
        gate=gate,
        **kwargs,
    )
    if saved.bundle is None and saved.path is not None:
        saved.bundle = load_bundle(saved.path)
    return saved

"""Training checkpoints: model + optimiser + scheduler + RNG states + epoch, written atomically.

Files are ``torch.save`` archives loaded with ``weights_only=True`` (plain tensors and containers;
no code is unpickled).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write_path
from ..errors import InputError

#: Version of the checkpoint layout.
CHECKPOINT_VERSION = 1


def rng_state(np_rng: np.random.Generator) -> dict[str, Any]:
    """Snapshot torch (CPU and every CUDA device) and ``np_rng`` generator states."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np_rng.bit_generator.state}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], np_rng: np.random.Generator) -> None:
    """Restore a snapshot from :func:`rng_state` (CUDA states only when CUDA is present)."""
    torch.set_rng_state(state["torch"])
    np_rng.bit_generator.state = state["numpy"]
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, numbers, strings, lists, dicts) to ``path`` atomically."""
    dest = Path(path)
    with atomic_write_path(dest) as tmp:
        torch.save({"version": CHECKPOINT_VERSION, **payload}, tmp)
    return dest


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors go to the CPU).

    Raises
    ------
    InputError
        The file is unreadable, not a checkpoint, or of another version.
    """
    src = Path(path)
    try:
        data = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as err:
        raise InputError(f"not a readable training checkpoint ({type(err).__name__}: {err})", src) from err
    if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
        raise InputError(f"not a version-{CHECKPOINT_VERSION} training checkpoint", src)
    return data

"""Encoder weights from local files: reading, key prefixes, strict fitting, and content hashes.

Released pathology encoders come as ``.safetensors`` (UNI2-h, H-optimus, Virchow2 on the model hub),
``.bin`` (UNI's ``pytorch_model.bin``) or ``.pth`` checkpoints whose keys carry the training
wrapper's prefix (``module.``, ``model.``, ``backbone.``, ``encoder.``, ``trunk.``).  This module
reads any of them without unpickling arbitrary objects (``torch.load(weights_only=True)``), strips
the prefix that makes the keys fit the model, and refuses a file that does not fit with one error
naming a few missing and unexpected keys.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import MissingInputError, WeightsUnavailableError

#: Wrapper prefixes removed (repeatedly, in any order) when they make keys fit the model.
PREFIXES = ("module.", "model.", "backbone.", "encoder.", "image_encoder.", "trunk.", "student.", "teacher.")
#: Classifier heads dropped when the model has no such keys (the encoders end at pooled features).
HEAD_PREFIXES = ("head.", "fc.", "classifier.", "head_drop.")
#: Keys named in an error message.
SHOW_KEYS = 4

_HASHES: dict[tuple[str, int, int], str] = {}


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors``, ``.bin``, ``.pth`` or ``.pt`` file (CPU).

    Checkpoints that nest the weights under ``state_dict``, ``model`` or ``teacher`` are unpacked.

    Raises
    ------
    MissingInputError
        No such file.
    WeightsUnavailableError
        The file cannot be read or holds no tensors.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingInputError("weights file not found", p)
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt, pickled objects beyond tensors, wrong format
        raise WeightsUnavailableError(f"cannot read weights ({type(err).__name__}: {err})", p) from err
    for nest in ("state_dict", "model", "teacher"):
        if isinstance(state, dict) and isinstance(state.get(nest), dict):
            state = state[nest]
    if not isinstance(state, dict) or not any(torch.is_tensor(v) for v in state.values()):
        raise WeightsUnavailableError("file holds no state dict (no tensors found)", p)
    return {str(k): v for k, v in state.items() if torch.is_tensor(v)}


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key


def fit_keys(state: dict[str, torch.Tensor], model_keys: set[str]) -> dict[str, torch.Tensor]:
    """Rename ``state``'s keys to the model's: keep exact matches, else strip wrapper prefixes.

    Classifier-head tensors the model lacks (``head.``, ``fc.``, ``classifier.``) are dropped.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = key if key in model_keys else _strip(key)
        if name not in model_keys and name.startswith(HEAD_PREFIXES):
            continue
        out[name] = value
    return out


def _few(keys: list[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:SHOW_KEYS])
    return shown + (f" and {len(keys) - SHOW_KEYS} more" if len(keys) > SHOW_KEYS else "")


def load_weights_file(model: nn.Module, path: str | os.PathLike, name: str = "encoder") -> None:
    """Load a local weights file into ``model`` strictly (after :func:`fit_keys`).

    Raises
    ------
    WeightsUnavailableError
        Missing or unexpected keys, or tensors of the wrong shape, naming a few of them.
    """
    p = Path(path).expanduser()
    own = model.state_dict()
    state = fit_keys(read_state_dict(p), set(own))
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_few(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_few(unexpected)}")
    if shapes:
        detail = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in shapes[:SHOW_KEYS]]
        problems.append(f"{len(shapes)} tensor(s) of another shape: {'; '.join(detail)}")
    if problems:
        raise WeightsUnavailableError(
            f"weights do not fit encoder {name}: "
            + "; ".join(problems)
            + " (is this the file of another architecture?)",
            p,
        )
    model.load_state_dict(state, strict=True)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes (memoised per path, size and modification time)."""
    p = Path(path).expanduser().resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def weights_identity(weights: str) -> str:
    """What identifies an encoder's weights in cache keys and bundles.

    ``"sha256:<hex>"`` for a local file, else the spec itself (``"none"``, ``"imagenet"``, ``"hub"``).
    """
    if weights in ("none", "imagenet", "hub", ""):
        return weights or "none"
    return "sha256:" + file_sha256(weights)

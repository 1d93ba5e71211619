"""Choosing the compute device: ``auto`` prefers CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import torch

from .errors import InputError


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """Devices usable here, best first, e.g. ``["cuda", "cuda:0", "cuda:1", "cpu"]``."""
    out: list[str] = []
    if torch.cuda.is_available():
        out.append("cuda")
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        out.append("mps")
    out.append("cpu")
    return out


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:K"`` or ``"mps"`` into a usable device.

    Raises
    ------
    InputError
        The requested device does not exist on this machine.
    """
    if isinstance(name, torch.device):
        name = str(name)
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as err:
        raise InputError(f"unknown device {name!r}; choose one of auto, {', '.join(available_devices())}") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("device 'cuda' requested but CUDA is not available here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"device {name!r} requested but only {torch.cuda.device_count()} GPU(s) exist")
    elif dev.type == "mps" and not _mps_available():
        raise InputError("device 'mps' requested but Apple MPS is not available here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"unsupported device {name!r}; choose one of auto, {', '.join(available_devices())}")
    return dev


def release_gpu_memory() -> str:
    """Free cached accelerator memory (after dropping model references); returns a summary."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        before = torch.cuda.memory_reserved()
        torch.cuda.empty_cache()
        freed = (before - torch.cuda.memory_reserved()) / 2**20
        return f"released {freed:.0f} MiB of GPU memory"
    mps = getattr(torch, "mps", None)
    if mps is not None and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        mps.empty_cache()
        return "released MPS cache"
    return "no GPU here; caches cleared"

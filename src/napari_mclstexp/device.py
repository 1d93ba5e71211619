"""Choosing the compute device: ``auto`` prefers CUDA, then Apple MPS, then the CPU.

torch is imported by the functions that need it, not with this module: the napari panel lists devices
when it opens, and importing torch in the GUI thread froze the window for seconds.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    import torch

#: Device files of the accelerator drivers torch can use on Linux (NVIDIA, AMD ROCm, WSL's GPU).
_LINUX_GPU_FILES = ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")


def accelerator_possible() -> bool:
    """Whether this machine may have a GPU torch can use, without importing torch: ``False`` only on
    Linux without any accelerator driver's device file (macOS on Apple silicon and Windows: ``True``)."""
    if sys.platform.startswith("linux"):
        return any(os.path.exists(f) for f in _LINUX_GPU_FILES)
    if sys.platform == "darwin":
        return platform.machine() == "arm64"
    return True


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """Devices usable here, best first, e.g. ``["cuda", "cuda:0", "cuda:1", "cpu"]``."""
    if not accelerator_possible():
        return ["cpu"]
    import torch

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
    import torch

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
    if "torch" not in sys.modules:  # nothing ran on an accelerator yet
        return "no GPU memory in use; caches cleared"
    import torch

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

"""Device dropdown: only devices that exist here, the active (best) one selected and always listed."""

from __future__ import annotations

import gc

from qtpy.QtWidgets import QComboBox


def device_combo() -> QComboBox:
    """A combo of :func:`napari_mclstexp.train.device.available_devices`, best (active) first."""
    from ..train.device import available_devices

    combo = QComboBox()
    devices = available_devices() or ["cpu"]
    combo.addItems(devices)
    combo.setCurrentIndex(0)
    combo.setToolTip(f"active device: {devices[0]}")
    return combo


def release_gpu_memory() -> str:
    """Free cached accelerator memory (after dropping model references); returns a summary."""
    import torch

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

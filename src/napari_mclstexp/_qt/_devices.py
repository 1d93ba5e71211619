"""Device dropdown: only devices that exist here, the active (best) one selected and always listed."""

from __future__ import annotations

from qtpy.QtWidgets import QComboBox


def device_combo() -> QComboBox:
    """A combo of :func:`napari_mclstexp.device.available_devices`, best (active) first."""
    from ..device import available_devices

    combo = QComboBox()
    devices = available_devices() or ["cpu"]
    combo.addItems(devices)
    combo.setCurrentIndex(0)
    combo.setToolTip(f"active device: {devices[0]}")
    return combo

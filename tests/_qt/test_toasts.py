"""A toast whose Qt side is already gone never fails the work that reports through it (it hung training)."""

from __future__ import annotations

from napari_mclstexp._qt import _toasts


class GoneToast:
    """What napari's toast looks like after its window closed: every Qt call raises RuntimeError."""

    closed = 0

    def close(self):
        GoneToast.closed += 1
        raise RuntimeError("wrapped C/C++ object of type QPropertyAnimation has been deleted")


def test_notify_survives_a_deleted_toast(make_napari_viewer, monkeypatch):
    make_napari_viewer()
    monkeypatch.setattr(_toasts, "_toasts_showing", lambda message: [GoneToast()])
    monkeypatch.setattr(_toasts, "_SHOWN", [("error", "an old error")])
    _toasts.notify("info", "saved model m.mclst")  # closes the old one: its close raises, and is let go
    assert GoneToast.closed >= 1
    assert _toasts.shown() == [("info", "saved model m.mclst")]

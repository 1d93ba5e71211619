"""The plugin's toasts: one at a time, each gone after a few seconds.

napari keeps a toast up until it is closed when the window was not active as it appeared, and every new
toast stops the timers of those already up; on a long session they pile up (ten seen), and an old error
stays over a later success.  Here each new message of ours closes the previous ones and starts its own
timer to close itself.
"""

from __future__ import annotations

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer

#: Milliseconds a toast stays up (errors and warnings a little longer: they are read more slowly).
SHOW_MS = {"info": 5000, "warning": 9000, "error": 9000}
_SHOW = {"info": show_info, "warning": show_warning, "error": show_error}
_SHOWN: list[tuple[str, str]] = []


def _toasts_showing(message: str) -> list:
    try:
        from napari._qt.dialogs.qt_notification import NapariQtNotification
    except ImportError:  # pragma: no cover - napari moved its toast class; nothing to close then
        return []
    found = []
    for toast in list(getattr(NapariQtNotification, "_instances", [])):
        label = getattr(toast, "message", None)
        try:
            if label is not None and label.text() == message:
                found.append(toast)
        except RuntimeError:  # its Qt side is gone (the window that showed it was closed)
            continue
    return found


def _close_toast(toast) -> None:
    """Close ``toast`` unless Qt already deleted it (a closed window, an earlier close): a message of ours
    must never fail the work it reports on."""
    try:
        toast.close()
    except RuntimeError:
        pass


def _close(message: str) -> None:
    for toast in _toasts_showing(message):
        _close_toast(toast)


def notify(kind: str, message: str) -> None:
    """Show ``message`` as a toast of ``kind`` (``info``, ``warning``, ``error``) in place of ours
    still up, closed after :data:`SHOW_MS` whatever the window's focus."""
    for _, old in _SHOWN:
        if old != message:
            _close(old)
    _SHOWN.clear()
    _SHOW[kind](message)
    _SHOWN.append((kind, message))
    for toast in _toasts_showing(message):
        QTimer.singleShot(SHOW_MS[kind], lambda toast=toast: _close_toast(toast))


def shown() -> list[tuple[str, str]]:
    """``(kind, message)`` of our toast still up (the last one; the others were closed)."""
    return list(_SHOWN)

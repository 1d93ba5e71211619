"""Run one engine generator in a napari ``thread_worker`` with progress, Cancel and notifications.

Every widget embeds a :class:`TaskPanel`: it drives ``make_gen(cancel_token)`` in a worker thread,
renders its :class:`~napari_mclstexp.progress.Progress` events (a progress bar and live metrics in the
dock, and a napari ``progress`` bar per stage in the activity dock), and reports errors as napari
notifications with the engine's message.  Errors never escape the worker as exceptions, so a bad file
cannot crash the viewer.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from napari.qt.threading import thread_worker
from napari.utils import progress as napari_progress
from napari.utils.notifications import notification_manager
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ..errors import Cancelled, InputError, MclstexpError
from ..progress import CancelToken, Progress
from ..progress_process import lower_thread_priority
from . import _background, _collector
from ._llvm_guard import guard_triton
from ._toasts import notify


class _Failure:
    """An exception carried out of the worker as a value (so napari never re-raises it)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


@thread_worker(start_thread=False)
def _drive(gen: Generator[Progress, Any, Any], token: CancelToken):
    lower_thread_priority()  # the GUI thread first: on 2 cores it shares them with this work
    try:
        while True:
            try:
                event = next(gen)
            except StopIteration as stop:
                return stop.value
            yield event
            # the engine checks the token between its steps; checking at every event as well
            # guarantees that Cancel returns within one step even in code that forgot to
            token.raise_if_cancelled()
    except BaseException as err:  # noqa: BLE001 - reported to the user as a notification
        gen.close()
        return _Failure(err)


def error_message(err: BaseException) -> str:
    """The text a user sees for ``err``: the problem first, then the file (a toast cuts long lines, and
    a path can fill one), e.g. ``not a model bundle (no metadata.json inside) — in /data/m.mclst``;
    other engine errors as they are, anything else with its type."""
    if isinstance(err, InputError) and err.path is not None:
        return f"{err.problem} — in {err.path}"
    if isinstance(err, MclstexpError):
        return str(err)
    return f"{type(err).__name__}: {err}"


def close_toasts(messages: list[str]) -> None:
    """Close the napari toasts still on the canvas that show one of ``messages`` (a toast stays until
    closed when the window was inactive or a later toast stopped its timer)."""
    if not messages:
        return
    try:
        from napari._qt.dialogs.qt_notification import NapariQtNotification
    except ImportError:  # pragma: no cover - napari moved its toast class; nothing to close then
        return
    for toast in list(getattr(NapariQtNotification, "_instances", [])):
        label = getattr(toast, "message", None)
        if label is not None and label.text() in messages:
            toast.close()


def format_duration(seconds: float) -> str:
    """``5 s``, ``1 min 05 s``, ``1 h 31 min``."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


#: The scale of a bar that spans several stages (:mod:`~napari_mclstexp.workflows.train_progress`).
PER_MILLE = 1000


def format_event(event: Progress) -> str:
    """One status line for an event: stage, step/total, message and the live metrics, in words
    (``loss 3.578 · 237 spots/s · ETA 1 min 05 s``); counters the line already shows are left out."""
    parts = [event.stage]
    if event.total == PER_MILLE:  # one bar over several stages (training): a percentage reads better
        parts.append(f"{event.step / 10:.0f}%")
    elif event.total:
        parts.append(f"{event.step}/{event.total}")
    if event.message:
        parts.append(event.message)
    for key, value in event.metrics.items():
        if (key == "step" and event.total) or (key == "epoch" and "epoch" in event.message):
            continue
        if key == "eta_s":
            if value > 0:
                parts.append(f"ETA {format_duration(value)}")
        elif key.endswith("_per_s") and isinstance(value, int | float):
            rate = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
            parts.append(f"{rate} {key[: -len('_per_s')]}/s")
        else:
            parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return " · ".join(parts)


_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])


def _relay_warning(args: tuple) -> None:
    """Show our own warnings raised in a worker (``showwarning`` arguments) as napari notifications;
    other libraries' warnings go to the console as usual.

    napari's own relay is never connected in 0.9 (its mixin's ``__init__`` is not reached through
    ``QRunnable``); ``receive_warning`` shows each distinct warning once, so a napari that does
    relay cannot make duplicates.
    """
    message, category, filename, lineno = args[:4]
    if str(Path(filename).resolve()).startswith(_PACKAGE_DIR):
        notification_manager.receive_warning(message, category, filename, lineno)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno))


#: Appended to a background task's progress-bar text while the viewer's own work holds it (:meth:`TaskPanel.show_held`).
HELD = " · waiting for the viewer"

#: What an ``on_result`` returns when it finishes later, over several event-loop turns
#: (:meth:`TaskPanel.complete` then emits ``finished``).
DEFERRED = object()


class TaskPanel(QWidget):
    """Progress bar, status line and Cancel button for one long engine call at a time.

    Signals
    -------
    finished(object)
        Emitted once per run with the result (``None`` after an error or a cancel).
    """

    finished = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.status = QLabel("idle")
        self.status.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        row = QHBoxLayout()
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self.worker = None
        self.token: CancelToken | None = None
        self.last_event: Progress | None = None
        self.last_error: BaseException | None = None
        self._pbar: Any = None
        self._stage: str | None = None
        self._t_last_ui = 0.0
        self._stale_toasts: list[str] = []  # cancel toasts a later successful run closes
        #: The owner's :class:`~._gui_steps.GuiSteps`: ``finished`` comes after the layer steps it queued.
        self.steps: Any = None
        #: A background task (the panel's training) does not hold the others (:mod:`._background`); a foreground
        #: one holds them from its start until ``finished``.
        self.background = False
        key = self
        self.destroyed.connect(lambda *_: _background.release(key))  # a panel closed while its task ran

    @property
    def running(self) -> bool:
        """Whether a task is in flight."""
        return self.worker is not None

    def start(
        self,
        make_gen: Callable[[CancelToken], Generator[Progress, Any, Any]],
        on_result: Callable[[Any], None],
        *,
        description: str,
    ):
        """Start ``make_gen(token)`` in a worker; call ``on_result(value)`` in the GUI thread.

        Returns the worker (already started), or ``None`` when a task is already running or
        building the generator failed (then a notification says why).
        """
        if self.running:
            notify("info", "A task is already running: wait for it or press Cancel.")
            return None
        self.token = CancelToken()
        self.last_error = None
        guard_triton()
        try:
            gen = make_gen(self.token)
        except Exception as err:  # noqa: BLE001 - bad parameters become a notification
            self._report(err)
            self.finished.emit(None)
            return None
        self._description = description
        self.status.setText(f"{description}: starting…")
        self.bar.setRange(0, 0)
        self.cancel_button.setEnabled(True)
        self._pbar, self._stage = napari_progress(total=0, desc=description), None
        worker = _drive(gen, self.token)
        worker.yielded.connect(self._on_event)
        worker.warned.connect(_relay_warning)
        worker.returned.connect(lambda value: self._on_returned(value, on_result))
        self.worker = worker
        if not self.background:
            _background.hold(self)
        _collector.freeze(full=False)  # what lives now sits out the full collections of the task's allocations
        worker.start()
        return worker

    def cancel(self) -> None:
        """Ask the running task to stop at its next step."""
        if self.token is not None:
            self.token.cancel()
        self.status.setText(f"{getattr(self, '_description', 'task')}: cancelling…")
        self.cancel_button.setEnabled(False)

    def _on_event(self, event: Progress) -> None:
        if self.worker is None:
            return  # a late event of a task already finished
        self.last_event = event
        now = time.perf_counter()
        done = event.total is not None and event.step >= event.total
        if now - self._t_last_ui < 0.05 and not done:
            return  # no faster than the eye reads: the GUI thread stays free
        self._t_last_ui = now
        if event.total:
            self.bar.setRange(0, int(event.total))
            self.bar.setValue(int(min(event.step, event.total)))
        else:
            self.bar.setRange(0, 0)
        self.status.setText(format_event(event))
        self._napari_progress(event)  # last: napari's activity dock may run the event loop

    def _napari_progress(self, event: Progress) -> None:
        """One napari progress bar per task (creating one per stage costs the GUI ~0.1 s each)."""
        bar = self._pbar
        if bar is None:
            return
        if event.stage != self._stage:
            self._stage = event.stage
            bar.set_description(f"{self._description}: {event.stage}")
        total = int(event.total or 0)
        if bar.total != total:
            bar.total = total
        bar.n = int(event.step)
        bar.update(0)

    def _on_returned(self, value: Any, on_result: Callable[[Any], None]) -> None:
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        self.worker = None
        self.cancel_button.setEnabled(False)
        self.bar.setRange(0, 1)
        if isinstance(value, _Failure):
            self.bar.setValue(0)
            self._report(value.error)
            self._finish(None)
            return
        self.bar.setValue(1)
        self.status.setText(f"{self._description}: done")
        close_toasts(self._stale_toasts)
        self._stale_toasts.clear()
        try:
            if on_result(value) is DEFERRED:  # the widget calls complete() when its layers are in
                return
        except Exception as err:  # noqa: BLE001 - turning results into layers must not crash
            self._report(err)
            self._finish(None)
            return
        self._finish(value)

    def complete(self, value: Any, error: BaseException | None = None) -> None:
        """End a run whose ``on_result`` returned :data:`DEFERRED` (``error``: it failed meanwhile)."""
        if error is not None:
            self._report(error)
            self._finish(None)
            return
        self._finish(value)

    def _finish(self, value: Any) -> None:
        _background.release(self)  # the layer steps still queued hold the background tasks themselves
        if self.steps is not None and self.steps.busy:  # e.g. a streaming layer still to go in
            self.steps.add(lambda: self.finished.emit(value))
        else:
            self.finished.emit(value)

    def show_held(self, held: bool) -> None:
        """A background task held while the viewer works (:mod:`._background`) says so in its progress bar.

        In the bar, not the status line: a status line that grows a line re-lays out the dock and the canvas
        beside it (measured: an 0.8–0.9 s GUI gap at the start of predicting at spots during training)."""
        self.bar.setFormat(f"%p%{HELD}" if held and self.running else "%p%")

    def fail(self, message: str) -> None:
        """Report a problem found before any work started: in the status line (where the widget's
        errors always are) and as a notification.  Returns ``None`` (what ``start`` returns then)."""
        self.status.setText(f"error: {message}")
        notify("error", message)

    def _report(self, err: BaseException) -> None:
        self.last_error = err
        if isinstance(err, Cancelled):
            self.status.setText(f"{getattr(self, '_description', 'task')}: cancelled")
            message = f"{getattr(self, '_description', 'Task')} cancelled."
            self._stale_toasts.append(message)
            notify("info", message)
            return
        message = error_message(err)
        self.status.setText(f"error: {message}")
        notify("error", message)


def run_guarded(action: Callable[[], Any], status: QLabel | None = None) -> Any:
    """Run a quick GUI-thread action; engine errors become a notification instead of a crash (and
    the widget's ``status`` line says so too, when given).

    Returns the action's value, or ``None`` after an error.
    """
    try:
        return action()
    except Exception as err:  # noqa: BLE001 - the user sees the message, the viewer survives
        message = error_message(err)
        if status is not None:
            status.setText(f"error: {message}")
        notify("error", message)
        return None

"""Run a long generator in a worker process: the same :class:`~napari_mclstexp.progress.Progress` events,
the same result, the same cancel, without sharing the caller's GIL.

A training loop in a thread of the viewer's process holds the GIL between torch calls, so the GUI thread
waits for it (stalls of 0.3–2.5 s measured while the panel trained on 2 cores).  :func:`run_in_process`
starts ``target(*args, cancel=token, **kwargs)`` (a generator function importable by name) in a fresh
``spawn`` process and is itself a generator: the child's events come back over a queue, its warnings are
issued again in the caller (``warnings.warn_explicit`` with the child's file and line), its exception is
raised again (engine errors keep their type and message), its return value is returned.  Cancelling
the caller's :class:`~napari_mclstexp.progress.CancelToken` sets an event the child's token reads, so
the child stops at its next check; closing the generator (or the caller's process ending) stops the
child too.  Arguments, events and the result travel pickled: keep the result small (e.g. a path).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Generator, Iterator
from typing import Any, TypeVar

from .errors import Cancelled, MclstexpError
from .process_gate import ProcessGate, die_with_parent
from .progress import CancelToken, Progress, ProgressGen

T = TypeVar("T")

#: Seconds between two looks at the caller's cancel token while the child is silent.
POLL_S = 0.1
#: Seconds a child gets to stop by itself (after a cancel or a close) before it is terminated.
STOP_GRACE_S = 10.0
#: How much lower than the caller a background child runs (POSIX ``nice``; 0 to 19).
BACKGROUND_NICE = 10


class ProcessCancelToken(CancelToken):
    """A :class:`CancelToken` over a ``multiprocessing`` event (set in the parent, read in the child)."""

    def __init__(self, event: Any) -> None:
        self._event = event


class WorkerProcessError(MclstexpError):
    """The worker process failed with an error that could not travel back as it was, or died."""


_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _main_not_reimported() -> Iterator[None]:
    """While a child starts, hide the caller's main script from ``spawn``: the target is imported by name, and
    a script without an ``if __name__ == "__main__"`` guard (``viewer = napari.Viewer(); napari.run()``)
    would otherwise run again in the child (a second window, a child that never trains)."""
    main = sys.modules.get("__main__")
    with _MAIN_LOCK:
        saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
        try:
            if "__file__" in saved:
                del main.__file__
            if "__spec__" in saved:
                main.__spec__ = None
            yield
        finally:
            if main is not None:
                main.__dict__.update(saved)


def _send_warning(events: Any) -> Callable[..., None]:
    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001 - showwarning's signature
        events.put(("warning", str(message), category, str(filename), int(lineno)))

    return show


def _child(target: Callable[..., ProgressGen[Any]], args: tuple, kwargs: dict, events: Any, stop: Any) -> None:
    """The worker process: drive the generator, send every event, warning, the result or the error."""
    die_with_parent()  # a child held (stopped) by a ProcessGate cannot see its parent go
    warnings.showwarning = _send_warning(events)
    try:
        gen = target(*args, cancel=ProcessCancelToken(stop), **kwargs)
        while True:
            try:
                event = next(gen)
            except StopIteration as done:
                events.put(("return", done.value))
                return
            events.put(("event", event))
    except BaseException as err:  # noqa: BLE001 - every failure goes back to the caller
        events.put(("error", _portable(err), traceback.format_exc()))


def _portable(err: BaseException) -> BaseException:
    """``err`` when it survives pickling, else a :class:`WorkerProcessError` with its type and message."""
    import pickle

    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:  # noqa: BLE001 - any unpicklable exception becomes one with its text
        return WorkerProcessError(f"{type(err).__name__}: {err}")


def lower_thread_priority(niceness: int = BACKGROUND_NICE) -> bool:
    """Run the calling thread ``niceness`` lower than the process's main thread (Linux: a thread has its own nice
    value, and threads it starts inherit it); returns whether it changed.

    Background work in the viewer's process — a Predict worker, its reading threads, the compiled descriptor
    loops that run without the GIL — then yields the CPU to the GUI thread on a machine with few cores, as the
    training process does (:data:`BACKGROUND_NICE`).  Measured against the main thread, so a pool thread that runs
    one task after another is lowered once, not once per task (a foreign thread's ``threading.local`` does not
    last between tasks), and keeps the lower priority: it only ever runs such work.  Elsewhere, or when refused,
    nothing changes.
    """
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError):
        target = _below_main_thread(niceness)
        if os.getpriority(os.PRIO_PROCESS, 0) < target:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), target)
            return True
    return False


def _below_main_thread(niceness: int) -> int:
    """The nice value ``niceness`` above this process's main thread's (at most 19)."""
    return min(os.getpriority(os.PRIO_PROCESS, os.getpid()) + int(niceness), 19)


def _lower_priority(pid: int, niceness: int) -> None:
    """Set process ``pid``'s nice value ``niceness`` above this process's main thread's (POSIX; elsewhere, or when
    refused, nothing), whichever thread asks (a worker thread may itself run lower)."""
    if niceness <= 0 or not hasattr(os, "setpriority"):
        return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, _below_main_thread(niceness))


def run_in_process(
    target: Callable[..., ProgressGen[T]],
    *args: Any,
    cancel: CancelToken | None = None,
    niceness: int = 0,
    gate: ProcessGate | None = None,
    **kwargs: Any,
) -> Generator[Progress, None, T]:
    """Generator: ``target(*args, cancel=token, **kwargs)`` driven in a ``spawn`` worker process.

    Parameters
    ----------
    target
        A generator function defined at module level (the child imports it by name).
    args, kwargs
        Its arguments (pickled to the child).
    cancel
        Checked every :data:`POLL_S` seconds and at every event; a cancel reaches the child's token.
    niceness
        Run the child this much lower in the scheduler's priority than the caller (POSIX; e.g.
        :data:`BACKGROUND_NICE`): on a machine with few cores the viewer's GUI thread (and the X server)
        then get a core first whenever they need one, and the child takes what is left.
    gate
        Holds the child while the caller's foreground work runs (:class:`~.process_gate.ProcessGate`: the
        viewer's tasks and layer steps); a cancel or the end of the run lets it go on.

    Returns
    -------
    The child's return value (raises the child's exception; :class:`WorkerProcessError` when the child
    died without a word, e.g. killed for memory).
    """
    ctx = multiprocessing.get_context("spawn")
    events, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_child, args=(target, args, kwargs, events, stop), daemon=True, name="mclstexp-worker")
    with _main_not_reimported():
        proc.start()
    _lower_priority(proc.pid, niceness)
    if gate is not None:
        gate.attach(proc.pid)
    try:
        while True:
            if cancel is not None and cancel.cancelled:
                stop.set()
                if gate is not None:  # a held child cannot stop
                    gate.detach()
            try:
                message = events.get(timeout=POLL_S)
            except queue.Empty:
                if not proc.is_alive() and events.empty():
                    code = proc.exitcode
                    raise WorkerProcessError(f"the worker process ended without a result (exit code {code})") from None
                continue
            kind = message[0]
            if kind == "event":
                yield message[1]
            elif kind == "warning":
                _, text, category, filename, lineno = message
                warnings.warn_explicit(text, category, filename, lineno)
            elif kind == "return":
                return message[1]
            else:
                err = message[1]
                if isinstance(err, Cancelled) or cancel is None or not cancel.cancelled:
                    raise err
                raise Cancelled("cancelled by the user") from err
    finally:
        stop.set()
        if gate is not None:
            gate.detach()
        end = time.monotonic() + STOP_GRACE_S
        while proc.is_alive() and time.monotonic() < end:  # keep reading: a full pipe would block its exit
            with contextlib.suppress(queue.Empty, OSError, EOFError):
                events.get(timeout=POLL_S)
        if proc.is_alive():
            proc.terminate()
            proc.join(STOP_GRACE_S)
        with contextlib.suppress(Exception):
            events.close()

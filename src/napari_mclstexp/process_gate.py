"""Hold a background worker process while foreground work runs (the viewer's tasks and layer steps first).

On a machine with few cores the panel's own training shares the CPU with everything the viewer does; a lower
scheduling priority alone did not keep the viewer's longest GUI gaps at their quiet-machine size (measured on 2
cores: predicting at spots 356 ms during training, 240 ms with the training process stopped for the action;
``SCHED_IDLE`` instead of ``nice`` +10: 331 ms).  A :class:`ProcessGate` stops the process (``SIGSTOP``) while at
least one holder holds it and lets it go on (``SIGCONT``) when the last one releases it: the training only loses the
seconds the viewer worked.  Linux only (:data:`SUPPORTED`); elsewhere the gate does nothing.

A stopped child cannot notice its parent's death, so the child asks the kernel to kill it when the thread that
started it ends (:func:`die_with_parent`, Linux): a viewer that crashes while the training is held leaves no
stopped process behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Hashable

#: Whether the gate stops processes here: Linux only, where a stopped child also dies with its parent
#: (:func:`die_with_parent`); elsewhere a crash while it held one would leave a stopped process behind.
SUPPORTED = sys.platform.startswith("linux") and hasattr(signal, "SIGSTOP")


class ProcessGate:
    """Stops a process while anyone holds the gate; keyed holds (a holder that releases twice releases once).

    The process is named by :meth:`attach` once it runs and forgotten by :meth:`detach` (which lets it go on);
    holds taken before, between or after apply to whichever process is attached.  Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._holders: set[Hashable] = set()
        self._stopped = False

    @property
    def held(self) -> bool:
        """Whether a holder holds the gate (the attached process, if any, is stopped)."""
        with self._lock:
            return bool(self._holders)

    @property
    def stopped(self) -> bool:
        """Whether the attached process is stopped by this gate now."""
        with self._lock:
            return self._stopped

    def attach(self, pid: int) -> None:
        """Gate process ``pid`` (stopped at once when the gate is held)."""
        with self._lock:
            self._pid = int(pid)
            self._apply()

    def detach(self) -> None:
        """Let the attached process go on and forget it (e.g. to cancel it: a stopped process cannot stop)."""
        with self._lock:
            if self._stopped and self._pid is not None:
                _signal(self._pid, signal.SIGCONT)
            self._pid, self._stopped = None, False

    def hold(self, key: Hashable) -> None:
        """Hold the gate for ``key`` (the first holder stops the process)."""
        with self._lock:
            self._holders.add(key)
            self._apply()

    def release(self, key: Hashable) -> None:
        """Release ``key``'s hold (the last one lets the process go on); a key not holding is ignored."""
        with self._lock:
            self._holders.discard(key)
            self._apply()

    def _apply(self) -> None:
        want = bool(self._holders) and self._pid is not None and SUPPORTED
        if want == self._stopped or self._pid is None:
            return
        if _signal(self._pid, signal.SIGSTOP if want else signal.SIGCONT):
            self._stopped = want
        else:  # the process is gone: nothing to stop any more
            self._pid, self._stopped = None, False


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def die_with_parent() -> None:
    """In a child process: be killed when the parent thread that started it ends (Linux ``PR_SET_PDEATHSIG``).

    A child stopped by a :class:`ProcessGate` cannot see its parent go; without this, a viewer that crashed while
    it held the training would leave a stopped process holding its memory.  Elsewhere (or refused): nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)

"""Progress events and cancellation shared by every long operation.

Long operations are generators: they ``yield`` :class:`Progress` events and ``return`` their result.
The CLI renders the events as a progress bar (:func:`run_with_progress`); a napari widget runs the same
generator in a ``thread_worker`` and renders them in the activity dock.  Cancelling is cooperative: the
operation calls :meth:`CancelToken.raise_if_cancelled` between steps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import Cancelled

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """One progress event.

    Parameters
    ----------
    stage
        Short name of the phase (``"patches"``, ``"train"``, ``"bank"``, ``"predict"``, ...).
    step, total
        Steps done so far and the total (``total=None`` when unknown).
    message
        Optional human-readable detail.
    metrics
        Numbers to show live, e.g. ``{"epoch": 3, "loss": 4.1, "spots_per_s": 812.0, "eta_s": 40.0}``.
    """

    stage: str
    step: int = 0
    total: int | None = None
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        """Fraction done in [0, 1], or ``None`` when the total is unknown."""
        if not self.total:
            return None
        return min(1.0, self.step / self.total)


ProgressGen = Generator[Progress, None, T]


class CancelToken:
    """Thread-safe cancellation flag checked by long operations between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the operation to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`~napari_mclstexp.errors.Cancelled` if cancellation was requested."""
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


def run(gen: Generator[Progress, Any, T], on_event: Callable[[Progress], None] | None = None) -> T:
    """Drive a progress generator to completion and return its result.

    Parameters
    ----------
    gen
        A generator yielding :class:`Progress` and returning a value.
    on_event
        Called with each event (e.g. to update a progress bar).

    Returns
    -------
    The generator's return value.
    """
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_event is not None:
            on_event(event)


#: Event metrics the bar itself already shows (step count, remaining time): left out of its postfix.
_SHOWN_BY_BAR = frozenset({"step", "eta_s"})


def run_with_progress(gen: Generator[Progress, Any, T], *, disable: bool = False) -> T:
    """Drive a progress generator while showing a tqdm bar per stage (the CLI's face).

    Stages run one after the other, so a stage's bar is closed when the next stage starts (one live
    bar, no nesting).  Without a terminal (logs, CI) bars refresh at most every 10 s.
    """
    import sys

    from tqdm.auto import tqdm

    interval = 0.1 if getattr(sys.stderr, "isatty", lambda: False)() else 10.0
    current: dict[str, Any] = {}

    def show(event: Progress) -> None:
        bar = current.get(event.stage)
        if bar is None:
            for old in current.values():
                old.close()
            current.clear()
            # a stage that comes back (an outer loop around inner stages) continues where it was
            bar = tqdm(
                total=event.total,
                desc=event.stage,
                disable=disable,
                leave=True,
                initial=event.step,
                mininterval=interval,
                maxinterval=max(interval, 10.0),
            )
            current[event.stage] = bar
        if event.total is not None and bar.total != event.total:
            bar.total = event.total
        shown = {k: v for k, v in event.metrics.items() if k not in _SHOWN_BY_BAR}
        if shown:
            bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)
        bar.update(event.step - bar.n)  # redraws only when mininterval has passed

    try:
        return run(gen, show)
    finally:
        for bar in current.values():
            bar.close()

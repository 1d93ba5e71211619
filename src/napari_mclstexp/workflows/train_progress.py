"""Training as one progress bar: patches, epochs and the finishing stages (patches again, image
embeddings, held-out reliability) on one per-mille scale with one ETA to the end.

The trainer's own ETA covers its epochs only; the finishing stages then ran tens of seconds with none
(a her2st quick run: ETA "1 s", then 38 s more).  Their cost is estimated as one more pass over the
training spots at the training rate (measured: 9 s for 336 synthetic spots at 40 spots/s, on a loaded
2-core machine), then corrected by the time they actually take.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

from ..progress import Progress

#: Per mille: the scale of the one bar.
SCALE = 1000
#: Where each finishing stage starts and ends within the finishing part (fractions).
FINISH_SPANS = {"patches": (0.0, 0.3), "embed": (0.3, 0.9), "reliability": (0.9, 1.0)}


class OneBar:
    """Turns the events of training into events on one bar (``step`` of ``SCALE``) with an overall ETA."""

    def __init__(self, clock=time.perf_counter) -> None:
        self.clock = clock
        self.t0 = clock()
        self.spots = 0
        self.train_done_at: float | None = None
        self.train_eta: float | None = None
        self.rate: float | None = None
        self.finish_estimate: float | None = None
        self.best = 0

    def _finish_fraction(self, event: Progress) -> float:
        start, end = FINISH_SPANS.get(event.stage, (0.0, 1.0))
        inner = (event.step / event.total) if event.total else 0.0
        return start + (end - start) * min(1.0, inner)

    def remaining_s(self, event: Progress, now: float) -> float | None:
        """Seconds left to the end of the whole run (``None`` until training gives a rate)."""
        if self.train_done_at is None:
            if event.stage == "patches" and event.total:
                self.spots = max(self.spots, int(event.total))
            if event.stage == "train":
                self.train_eta = float(event.metrics.get("eta_s", 0.0))
                rate = event.metrics.get("spots_per_s")
                self.rate = float(rate) if rate else self.rate
                if event.total and event.step >= event.total:
                    self.train_done_at = now
            if self.rate is None or self.train_eta is None:
                return None
            return self.train_eta + self._finishing_guess()
        elapsed = now - self.train_done_at
        guess = self._finishing_guess()
        fraction = self._finish_fraction(event)
        if fraction > 0.2:  # the stages themselves now say how long they take
            guess = max(guess if fraction < 0.5 else 0.0, elapsed / fraction)
        return max(0.0, guess - elapsed)

    def _finishing_guess(self) -> float:
        if self.finish_estimate is None and self.rate:
            self.finish_estimate = self.spots / self.rate if self.spots else 0.0
        return self.finish_estimate or 0.0

    def event(self, event: Progress) -> Progress:
        """``event`` on the one bar: the stage and message kept, ``step`` per mille, ``eta_s`` to the end."""
        now = self.clock()
        left = self.remaining_s(event, now)
        elapsed = now - self.t0
        if left is None:  # before the first training step: the patches' share of a first guess
            fraction = 0.05 * (event.fraction or 0.0)
        else:
            fraction = elapsed / max(elapsed + left, 1e-9)
        self.best = max(self.best, min(SCALE - 1, int(SCALE * fraction)))
        metrics = {k: v for k, v in event.metrics.items() if k not in ("eta_s", "step")}
        if left is not None:
            metrics["eta_s"] = max(1.0, left)
        detail = f"{event.step}/{event.total}" if event.total else ""
        message = " · ".join(part for part in (event.message, detail) if part)
        return Progress(event.stage, self.best, SCALE, message=message, metrics=metrics)


def one_bar(gen: Generator[Progress, Any, Any]) -> Generator[Progress, Any, Any]:
    """Generator: ``gen``'s events on one bar (:class:`OneBar`); returns ``gen``'s value."""
    bar = OneBar()
    try:
        while True:
            try:
                event = next(gen)
            except StopIteration as stop:
                return stop.value
            yield bar.event(event)
    finally:
        gen.close()  # a cancel or an error stops the training itself, not only this wrapper

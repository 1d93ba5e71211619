"""Training's events on one bar: per mille, never back, an ETA through the finishing stages."""

from __future__ import annotations

from napari_mclstexp.progress import Progress
from napari_mclstexp.workflows.train_progress import SCALE, OneBar, one_bar


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def run_events():
    """A run of 100 spots: patches 1 s, 10 training steps of 1 s (10 spots/s), finishing 10 s."""
    events = [(0.5, Progress("patches", 50, 100)), (1.0, Progress("patches", 100, 100))]
    for i in range(1, 11):
        events.append((1.0 + i, Progress("train", i, 10, metrics={"eta_s": 10.0 - i, "spots_per_s": 10.0})))
    events += [(14.0, Progress("patches", 100, 100)), (20.0, Progress("embed", 100, 100))]
    events += [(21.0, Progress("reliability", 1, 2)), (21.5, Progress("reliability", 2, 2))]
    return events


def test_one_bar_never_goes_back_and_counts_the_finishing_stages():
    clock = Clock()
    bar = OneBar(clock)
    out = []
    for t, event in run_events():
        clock.t = t
        out.append(bar.event(event))
    steps = [e.step for e in out]
    assert all(e.total == SCALE for e in out) and steps == sorted(steps)
    last_train = out[11]
    assert last_train.stage == "train" and last_train.metrics["eta_s"] >= 9.0  # the finishing stages still to go
    assert 400 < last_train.step < 600  # 11 s done of about 21
    assert all("eta_s" in e.metrics for e in out[2:])
    assert [e.stage for e in out[-4:]] == ["patches", "embed", "reliability", "reliability"]


def test_one_bar_returns_the_value_and_closes_the_inner_run():
    closed = []

    def inner():
        try:
            yield Progress("train", 1, 2, metrics={"loss": 3.0, "spots_per_s": 5.0, "eta_s": 1.0})
            yield Progress("train", 2, 2, metrics={"loss": 2.5, "spots_per_s": 5.0, "eta_s": 0.0})
            return "model"
        finally:
            closed.append(True)

    gen = one_bar(inner())
    events = []
    try:
        while True:
            events.append(next(gen))
    except StopIteration as stop:
        assert stop.value == "model"
    assert events[-1].stage == "train" and events[-1].metrics["loss"] == 2.5 and closed
    gen = one_bar(inner())
    next(gen)
    gen.close()
    assert len(closed) == 2

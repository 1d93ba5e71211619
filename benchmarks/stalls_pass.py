"""One pass of the pathologist's walk (issue 24) in one fresh napari, every action measured in the order a
user does them: the way :mod:`benchmarks.stalls` runs the walk.

A pass opens one window (1366×768), then does the walk's actions one after the other, each measured from its
click until its task is finished and the panel's queued layer steps ran (plus
:data:`~benchmarks.stalls_walk.SETTLE_S`), as :func:`~benchmarks.stalls_walk.run_action` measures one action
in a process of its own.  What changes is only what was paid before the action: in a pass, an action finds
the window as the actions before it left it (napari's first-use costs — shader programs, glyphs, imports —
paid by the first action that needed them, as in a user's session); in a process of its own it first set the
window up to just before the action (load, predict: two to five minutes of set-up per run of one action).
One pass costs the set-up once for every action: 5 runs of the walk, quiet and during training, take about
half an hour on 2 quiet cores instead of hours.

``quiet``: open the panel, load the folder, train (1 epoch), predict at spots, explore genes, side by side on
and off, domains on spots, export, predict the whole slide, domains on its tiles, detect tissue.
``training``: open the panel and load the folder (not measured), start the panel's own training
(1000 epochs: it runs to the end of the pass), wait until it is in its epochs, then the same actions but
``train``; opening the six step widgets as docks one click at a time (``open_panel``) and loading the folder again
(``load_her2st``) come last, so that the walk's other actions find the viewer as in quiet mode.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .stalls_walk import Ticks, Walk, pump, wait_until

#: Actions measured after the set-up, in order (``train`` only when quiet: training is the other mode's load).
IN_ORDER = (
    "train",
    "predict_spots",
    "explore_genes",
    "side_by_side",
    "side_by_side_off",
    "domains_spots",
    "export",
    "predict_slide",
    "domains_tiles",
    "detect_tissue",
)


def _measure(walk: Walk, do: Callable[[], None], mode: str, settle_s: float = 3600.0, do_trains: bool = False) -> dict:
    """The longest gap of one action (``do()`` then until the walk is idle) and what the machine did."""
    load_before = os.getloadavg()[0]
    ticks = Ticks()
    ticks.start()
    do()
    if do_trains:  # the panel's own training is the action: until it is done (idle() skips it otherwise)
        wait_until(lambda: walk.idle(training_ok=False), settle_s, "the panel's training")
    walk.settle(settle_s)
    ticks.stop()
    gaps = ticks.gaps_ms()
    event = walk.panel.train.task.last_event if walk.panel is not None else None
    return {
        "longest_ms": float(gaps.max()),
        "p99_ms": float(np.percentile(gaps, 99)),
        "measured_s": float(ticks.times[-1] - ticks.times[0]),
        "load_average_1min": load_before,
        "load_average_after": os.getloadavg()[0],
        "training_stage": event.stage if (mode == "training" and event is not None) else None,
        "training_running": bool(walk.panel is not None and walk.panel.train.task.running),
        **ticks.gc_record(),
    }


def walk_pass(mode: str, her2st: Path, bundle: Path) -> dict:
    """Every action of the walk in one window, in order; ``{action: record}`` (see :func:`_measure`)."""
    out: dict = {}
    walk = Walk(her2st)
    pump(1.0)  # the window is up and drawn
    try:
        if mode == "quiet":
            out["open_panel"] = _measure(walk, walk.open_panel, mode)  # until the panel is built
            out["load_her2st"] = _measure(walk, walk.load, mode)
        else:
            walk.open_panel()
            walk.settle()
            walk.load()
            walk.settle()
        walk.show_scored()
        if mode == "training":
            walk.start_training(epochs=1000)
            wait_until(walk.training_in_epochs, 1800, "the panel's training reaching its epochs")
        for action in IN_ORDER:
            if action == "train" and mode == "training":
                continue
            out[action] = _measure(walk, _action(walk, action, bundle), mode, do_trains=action == "train")
            _after(walk, action)
        if mode == "training":
            out["open_panel"] = _measure(walk, walk.open_docks, mode)
            out["load_her2st"] = _measure(walk, walk.load, mode)
    finally:
        walk.close()
    return out


def _action(walk: Walk, action: str, bundle: Path) -> Callable[[], None]:
    return {
        "train": lambda: walk.start_training(epochs=1),
        "predict_spots": lambda: walk.predict("at spots", bundle),
        "explore_genes": walk.explore_genes,
        "side_by_side": walk.side_by_side,
        "side_by_side_off": walk.side_by_side_off,
        "domains_spots": lambda: walk.domains(False),
        "export": walk.export,
        "predict_slide": lambda: walk.predict("whole slide", bundle),
        "domains_tiles": lambda: walk.domains(True),
        "detect_tissue": walk.detect_tissue,
    }[action]


def _after(walk: Walk, action: str) -> None:
    """Leave the window as the next action expects it (not measured)."""
    if action in ("train", "predict_spots", "side_by_side_off", "domains_spots", "domains_tiles"):
        walk.show_scored()
    pump(0.2)


def timed_pass(mode: str, her2st: Path, bundle: Path) -> dict:
    """:func:`walk_pass` plus the pass's own wall time."""
    t0 = time.perf_counter()
    actions = walk_pass(mode, her2st, bundle)
    return {"actions": actions, "pass_s": round(time.perf_counter() - t0, 1)}

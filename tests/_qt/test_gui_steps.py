"""GuiSteps: heavy GUI work one step per event-loop turn (issue 16, no UI stall > 250 ms).

The stall itself is GUI-thread time (``pytest -m timing``, test_fit_and_stalls.py); here the order is
checked, which does not depend on the machine: a 10 ms QTimer — like every other timer, input and
paint of the window — gets a turn between any two steps.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from qtpy.QtCore import QTimer


class Ticks:
    """A 10 ms QTimer that writes ``"tick"`` into a shared log."""

    def __init__(self, log: list) -> None:
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(lambda: log.append("tick"))

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.stop()


def _steps_between_ticks(log: list, name: str) -> list[int]:
    """How many ``name`` entries ran back to back without a tick between them, per run of them."""
    runs, current = [], 0
    for entry in log:
        if entry == "tick":
            if current:
                runs.append(current)
            current = 0
        elif entry == name:
            current += 1
    return runs + ([current] if current else [])


def test_steps_run_in_order_with_a_timer_turn_between_each(qtbot):
    from napari_mclstexp._qt._gui_steps import GuiSteps

    log: list = []
    steps = GuiSteps()

    def step(i: int):
        def run() -> None:
            time.sleep(0.03)  # a layer costs napari 0.1-0.3 s: far longer than one timer interval
            log.append(i)

        return run

    with Ticks(log):
        steps.add(*(step(i) for i in range(5)))
        assert steps.busy and len(steps) == 5 and log == []  # nothing runs inside add()
        qtbot.waitUntil(lambda: not steps.busy and 4 in log, timeout=5000)
        qtbot.wait(30)
    done = [e for e in log if e != "tick"]
    assert done == [0, 1, 2, 3, 4]
    positions = [log.index(i) for i in range(5)]
    assert all("tick" in log[a:b] for a, b in zip(positions, positions[1:], strict=False)), log


def test_next_runs_ahead_and_an_error_drops_the_rest(qtbot):
    from napari_mclstexp._qt._gui_steps import GuiSteps

    log, errors = [], []
    steps = GuiSteps(on_error=errors.append)

    def split() -> None:
        log.append("first half")
        steps.next(lambda: log.append("second half"))

    def broken() -> None:
        raise ValueError("bad layer")

    steps.add(split, lambda: log.append("after"), broken, lambda: log.append("never"))
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    qtbot.wait(50)
    assert log == ["first half", "second half", "after"]
    assert [str(e) for e in errors] == ["bad layer"] and not steps.busy


def test_finished_comes_after_the_steps_still_queued(qtbot):
    from napari_mclstexp._qt._gui_steps import GuiSteps
    from napari_mclstexp._qt._worker import TaskPanel

    panel = TaskPanel()
    panel.steps = GuiSteps(panel)
    log: list = []
    panel.finished.connect(lambda value: log.append(("finished", value)))
    panel.steps.add(lambda: log.append("layer"))
    panel.complete(None, ValueError("the worker failed"))  # e.g. Cancel while a layer waits
    assert log == []
    qtbot.waitUntil(lambda: len(log) == 2, timeout=5000)
    assert log == ["layer", ("finished", None)]
    panel.complete("done")  # nothing queued: at once
    assert log[-1] == ("finished", "done")


def test_loading_adds_one_layer_per_event_loop_turn(make_napari_viewer, qtbot, synthetic_samples):
    """Failing first: Load chained its layers with ``QTimer.singleShot(0)`` (posted events, delivered
    ahead of timers), so two layers went in back to back: a 0.47 s stall on the her2st folder."""
    from napari_mclstexp.layer_data import sample_layers

    viewer = make_napari_viewer()
    load = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Load")[1]
    tuples = [t for adata in synthetic_samples for t in sample_layers(adata)]  # what the worker returns
    log: list = []
    viewer.layers.events.inserted.connect(lambda *_: log.append("layer"))
    with Ticks(log), qtbot.waitSignal(load.task.finished, timeout=60_000) as blocker:
        load._add(tuples)
    assert blocker.args[0] is not None and log.count("layer") == len(tuples) == 6
    assert _steps_between_ticks(log, "layer") == [1] * 6, log
    # each went in hidden and was drawn a step later: in the end as asked, the last one selected
    assert [layer.visible for layer in load.added] == [kw.get("visible", True) for _, kw, _ in tuples]
    assert viewer.layers.selection.active == load.added[-1]


def test_layers_go_in_unselected_and_the_canvas_follows_the_last_in_a_step_of_its_own(
    make_napari_viewer, qtbot, synthetic_samples, monkeypatch
):
    """Failing first: napari selected every layer it added (a selection change rebuilds the layer controls'
    view and the canvas title, a third of an add's time), and the canvas title and colour bar followed in the
    same slot as the selection: both paints in one stall."""
    from napari_mclstexp._qt._canvas_follow import CanvasFollower, follow_selection
    from napari_mclstexp._qt._gui_steps import GuiSteps, queue_layers
    from napari_mclstexp.layer_data import sample_layers

    log: list = []
    real_update = CanvasFollower.update

    def update(self, *args):
        if not self.paused:
            log.append("follow")
        real_update(self, *args)

    monkeypatch.setattr(CanvasFollower, "update", update)
    viewer = make_napari_viewer()
    follow_selection(viewer)
    viewer.layers.selection.events.active.connect(lambda *_: log.append("select"))
    steps, added = GuiSteps(), []
    queue_layers(steps, viewer, [t for adata in synthetic_samples[:2] for t in sample_layers(adata)], added)
    with Ticks(log):
        qtbot.waitUntil(lambda: not steps.busy, timeout=30_000)
    assert log.count("select") == 1 and viewer.layers.selection.active is added[-1]
    assert [e for e in log if e != "tick"][-2:] == ["select", "follow"]
    assert _steps_between_ticks(log, "select") == [1] and log.index("follow") > log.index("select") + 1


def test_the_canvas_font_is_warmed_while_idle(make_napari_viewer, qtbot):
    """The characters of the plugin's canvas texts are rendered into napari's glyph cache in idle steps,
    so no later paint renders one (5–10 ms a character)."""
    from napari_mclstexp._qt._canvas_follow import follow_selection
    from napari_mclstexp._qt._glyphs import CHARS, PER_STEP, canvas_font

    viewer = make_napari_viewer()
    follower = follow_selection(viewer)
    font = canvas_font(viewer)
    assert font is not None and len(follower.warming) == -(-len(CHARS) // PER_STEP)
    qtbot.waitUntil(lambda: not follower.warming.busy, timeout=30_000)

    def no_rendering(char):
        raise AssertionError(f"{char!r} rendered in a paint")

    font._load_char = no_rendering
    for char in "ERBB2 · predicted (normalised) · held-out r 0.62 ⚠ unreliable 1.5–3.4 µm":
        font[char]


class _Clock:
    """A GUI that never answers (``wait`` always times out) on a clock that advances only by those waits."""

    def __init__(self) -> None:
        self.now, self.waits = 0.0, 0

    def monotonic(self) -> float:
        return self.now

    def wait(self, timeout: float) -> bool:
        self.waits += 1
        self.now += timeout
        return False


def test_the_worker_waits_for_the_gui_but_never_forever(monkeypatch):
    import types

    from napari_mclstexp._qt import _tile_stream
    from napari_mclstexp._qt._tile_stream import wait_for_gui
    from napari_mclstexp.errors import Cancelled
    from napari_mclstexp.progress import CancelToken

    ready = threading.Event()
    threading.Timer(0.1, ready.set).start()
    wait_for_gui(ready, CancelToken(), timeout=60.0)  # returns once the GUI is ready
    assert ready.is_set()
    clock = _Clock()
    monkeypatch.setattr(_tile_stream, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    wait_for_gui(clock, None, timeout=0.2)  # a GUI that never answers: go on anyway, after the timeout
    assert clock.now >= 0.2 and clock.waits == 4  # 50 ms waits
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        wait_for_gui(threading.Event(), token, timeout=5.0)


@pytest.mark.timing
def test_the_worker_waits_for_the_gui_in_real_time():
    from napari_mclstexp._qt._tile_stream import wait_for_gui
    from napari_mclstexp.progress import CancelToken

    ready = threading.Event()
    threading.Timer(0.1, ready.set).start()
    t0 = time.perf_counter()
    wait_for_gui(ready, CancelToken(), timeout=5.0)
    assert 0.05 < time.perf_counter() - t0 < 2.0
    t0 = time.perf_counter()
    wait_for_gui(threading.Event(), None, timeout=0.2)
    assert 0.15 < time.perf_counter() - t0 < 2.0


def test_uncertainty_layer_is_built_whole_and_hidden(synthetic_sample):
    from napari_mclstexp.layer_data import values_to_rgba
    from napari_mclstexp.layer_data.colors import auto_limits
    from napari_mclstexp.layer_data.predictions import uncertainty_spots_layer

    pred = synthetic_sample
    pred.obs["uncertainty"] = np.linspace(0, 1, pred.n_obs).astype(np.float32)
    data, kwargs, kind = uncertainty_spots_layer(pred, 0.5, name="x uncertainty")
    assert kind == "points" and kwargs["visible"] is False and kwargs["name"] == "x uncertainty"
    values = pred.obs["uncertainty"].to_numpy()
    assert np.array_equal(kwargs["features"]["value"], values)
    assert np.allclose(kwargs["face_color"], values_to_rgba(values, "magma", auto_limits(values)))
    assert kwargs["metadata"]["mclstexp"]["role"] == "uncertainty" and len(data) == pred.n_obs
    del pred.obs["uncertainty"]
    _, kwargs, _ = uncertainty_spots_layer(pred)
    assert kwargs["face_color"] == "#dddddd" and not kwargs["features"]["value"].any()

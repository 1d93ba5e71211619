"""Shorter cycle-collector pauses in the viewer (issue 24): after the viewer's work that imported modules, the
objects alive are frozen out of full collections; a layer frozen in is still freed when it leaves the viewer."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest


@pytest.fixture
def collector(make_napari_viewer, qtbot, monkeypatch):
    """A watched viewer, a freeze due (as after new imports); thawed again before napari checks for leaks."""
    from qtpy.QtWidgets import QWidget

    from napari_mclstexp._qt import _background, _collector

    qtbot.waitUntil(lambda: not _background.holding(), timeout=10_000)
    _collector.thaw()
    viewer = make_napari_viewer()
    widget = QWidget()
    qtbot.addWidget(widget)
    _collector.watch(widget, viewer)
    monkeypatch.setitem(_collector._STATE, "modules", 0)
    monkeypatch.setitem(_collector._STATE, "thawed", False)
    yield viewer
    _collector.thaw()


def _viewer_work_ends(qtbot) -> None:
    """A foreground action of the viewer starts and ends (what a task or a queue of layer steps does)."""
    from napari_mclstexp._qt import _background

    _background.hold("test work")
    _background.release("test work")
    qtbot.wait(50)  # the freeze runs in its own turn of the event loop


def test_the_end_of_the_viewers_work_freezes_what_is_alive(collector, qtbot):
    from napari_mclstexp._qt import _collector

    walked_before = len(gc.get_objects())
    _viewer_work_ends(qtbot)
    assert _collector.frozen() > 0
    # a full collection now walks a fraction of the objects it walked before
    assert len(gc.get_objects()) < walked_before / 4


def test_no_freeze_without_new_imports(collector, qtbot, monkeypatch):
    import sys

    from napari_mclstexp._qt import _collector

    monkeypatch.setitem(_collector._STATE, "modules", len(sys.modules))
    _viewer_work_ends(qtbot)
    assert _collector.frozen() == 0


def test_a_big_layer_frozen_in_is_freed_when_it_leaves_the_viewer(collector, qtbot, monkeypatch):
    from napari_mclstexp._qt import _collector

    monkeypatch.setattr(_collector, "BIG_BYTES", 512 * 512 * 4)  # the test's layer is "big"
    layer = collector.add_image(np.zeros((512, 512), np.float32), name="slide")
    qtbot.wait(50)
    _viewer_work_ends(qtbot)
    assert _collector.frozen() > 0
    gone = weakref.ref(layer)
    collector.layers.remove(layer)
    del layer
    assert _collector.frozen() == 0  # thawed: the next full collection walks it again
    qtbot.wait(50)
    gc.collect()
    assert gone() is None
    _viewer_work_ends(qtbot)
    assert _collector.frozen() > 0  # frozen anew at the next end of the viewer's work


def test_a_small_layer_frozen_in_leaves_without_a_walk_of_the_whole_heap(collector, qtbot):
    from napari_mclstexp._qt import _collector

    layer = collector.add_points(np.zeros((10, 2)), name="spots")
    qtbot.wait(50)
    _viewer_work_ends(qtbot)
    collector.layers.remove(layer)
    assert _collector.frozen() > 0 and not _collector._STATE["thawed"]  # stays frozen (kept until a thaw)


def test_a_layer_added_after_the_freeze_leaves_without_a_thaw(collector, qtbot):
    from napari_mclstexp._qt import _collector

    _viewer_work_ends(qtbot)
    assert _collector.frozen() > 0
    layer = collector.add_image(np.zeros((512, 512), np.float32), name="prediction")
    qtbot.wait(50)
    gone = weakref.ref(layer)
    collector.layers.remove(layer)
    del layer
    assert _collector.frozen() > 0 and not _collector._STATE["thawed"]  # (dead frozen objects leave its count)
    qtbot.wait(50)
    gc.collect()
    assert gone() is None


def test_a_destroyed_widget_thaws(collector, qtbot):
    from qtpy.QtWidgets import QWidget

    from napari_mclstexp._qt import _collector

    widget = QWidget()
    _collector.watch(widget, collector)
    _viewer_work_ends(qtbot)
    assert _collector.frozen() > 0
    widget.deleteLater()
    qtbot.waitUntil(lambda: _collector.frozen() == 0, timeout=5_000)


def test_the_idle_check_freezes_after_a_background_tasks_imports(collector, qtbot):
    from napari_mclstexp._qt import _collector

    qtbot.waitUntil(lambda: _collector.frozen() > 0, timeout=_collector.CHECK_MS + 3_000)


def test_after_a_closed_widgets_thaw_only_new_imports_freeze_again(collector, qtbot, monkeypatch):
    import sys

    from qtpy.QtWidgets import QWidget

    from napari_mclstexp._qt import _collector

    widget = QWidget()
    _collector.watch(widget, collector)
    _viewer_work_ends(qtbot)
    widget.deleteLater()
    qtbot.waitUntil(lambda: _collector.frozen() == 0, timeout=5_000)
    _viewer_work_ends(qtbot)
    assert _collector.frozen() == 0  # a closed viewer's session: no collection of the whole heap at each end
    monkeypatch.setitem(_collector._STATE, "modules", len(sys.modules) - _collector.NEW_MODULES)
    _viewer_work_ends(qtbot)
    assert _collector.frozen() > 0

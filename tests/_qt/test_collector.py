"""Shorter cycle-collector pauses in the viewer (issue 24): at the end of the viewer's work what lives on is frozen
out of full collections; a big layer frozen in (or many small ones) that left is still freed, once."""

from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest


@pytest.fixture
def collector(make_napari_viewer, qtbot, monkeypatch):
    """A watched viewer and the collector's state as after a thaw; thawed again before napari checks for leaks."""
    from qtpy.QtWidgets import QWidget

    from napari_mclstexp._qt import _background, _collector

    qtbot.waitUntil(lambda: not _background.holding(), timeout=10_000)
    _collector.thaw()
    viewer = make_napari_viewer()
    widget = QWidget()
    qtbot.addWidget(widget)
    _collector.watch(widget, viewer)
    monkeypatch.setitem(_collector._STATE, "modules", len(sys.modules))
    yield viewer
    _collector.thaw()


def _viewer_work_ends(qtbot) -> None:
    """A foreground action of the viewer starts and ends (what a task or a queue of layer steps does)."""
    from napari_mclstexp._qt import _background

    _background.hold("test work")
    _background.release("test work")
    qtbot.wait(50)  # the freeze runs in its own turn of the event loop


def _image(viewer, qtbot, name: str):
    layer = viewer.add_image(np.zeros((512, 512), np.float32), name=name)
    qtbot.wait(50)
    return layer


def test_the_end_of_the_viewers_work_freezes_what_is_alive(collector, qtbot):
    from napari_mclstexp._qt import _collector

    walked_before = len(gc.get_objects())
    _viewer_work_ends(qtbot)
    assert _collector.frozen() > 0
    # a full collection now walks a fraction of the objects it walked before
    assert len(gc.get_objects()) < walked_before / 4


def test_the_idle_check_freezes_after_new_imports_only(collector, qtbot, monkeypatch):
    from napari_mclstexp._qt import _collector

    _collector._check()
    assert _collector.frozen() == 0  # nothing imported since the last freeze
    monkeypatch.setitem(_collector._STATE, "modules", len(sys.modules) - _collector.NEW_MODULES)
    _collector._check()  # (a background task's imports: no end of the viewer's work comes)
    assert _collector.frozen() > 0


def test_a_big_layer_frozen_in_is_freed_at_the_end_of_the_work_that_removed_it(collector, qtbot, monkeypatch):
    from napari_mclstexp._qt import _collector

    monkeypatch.setattr(_collector, "BIG_BYTES", 512 * 512 * 4)  # the test's layer is "big"
    layer = _image(collector, qtbot, "slide")
    _viewer_work_ends(qtbot)
    gone = weakref.ref(layer)
    collector.layers.remove(layer)
    del layer
    gc.collect()  # napari's own collection for a removed layer: it walks only the unfrozen part
    assert gone() is not None and _collector.frozen() > 0
    _viewer_work_ends(qtbot)  # the end of the work: thawed, collected (the layer freed), frozen again
    assert gone() is None
    assert _collector.frozen() > 0 and not _collector._STATE["refreeze"]


def test_small_layers_frozen_in_are_kept_until_many_have_left(collector, qtbot, monkeypatch):
    from napari_mclstexp._qt import _collector

    monkeypatch.setattr(_collector, "LEFT_LAYERS", 2)
    first, second = _image(collector, qtbot, "spots 1"), _image(collector, qtbot, "spots 2")
    _viewer_work_ends(qtbot)
    gone = [weakref.ref(first), weakref.ref(second)]
    collector.layers.remove(first)
    del first
    _viewer_work_ends(qtbot)
    assert gone[0]() is not None  # kept: its removal cost no walk of the whole heap
    collector.layers.remove(second)
    del second
    assert _collector._STATE["refreeze"]
    _viewer_work_ends(qtbot)
    assert gone[0]() is None and gone[1]() is None


def test_a_layer_added_after_the_freeze_is_freed_without_a_thaw(collector, qtbot):
    from napari_mclstexp._qt import _collector

    _viewer_work_ends(qtbot)
    layer = _image(collector, qtbot, "prediction")
    gone = weakref.ref(layer)
    collector.layers.remove(layer)
    del layer
    qtbot.wait(50)
    gc.collect()
    assert gone() is None
    assert _collector.frozen() > 0 and not _collector._STATE["refreeze"]


def test_a_destroyed_widget_thaws(collector, qtbot):
    from qtpy.QtWidgets import QWidget

    from napari_mclstexp._qt import _collector

    widget = QWidget()
    _collector.watch(widget, collector)
    _viewer_work_ends(qtbot)
    assert _collector.frozen() > 0
    widget.deleteLater()
    qtbot.waitUntil(lambda: _collector.frozen() == 0, timeout=5_000)

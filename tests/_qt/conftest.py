"""Fixtures for widget tests: capture napari notifications."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ..conftest import TINY  # noqa: F401 - the widget tests import it from here


@pytest.fixture
def notes():
    """List of napari notifications (``Notification``) dispatched during the test."""
    from napari.utils.notifications import notification_manager

    seen: list = []

    def keep(event) -> None:
        seen.append(event.value if hasattr(event, "value") else event)

    notification_manager.notification_ready.connect(keep)
    yield seen
    notification_manager.notification_ready.disconnect(keep)


@pytest.fixture(scope="session")
def h5ad_paths(synthetic_samples, tmp_path_factory):
    """The three synthetic sections written as ``.h5ad`` files (images beside them)."""
    out = tmp_path_factory.mktemp("h5ad")
    paths = []
    for adata in synthetic_samples:
        path = out / f"{adata.obs['section'].iloc[0]}.h5ad"
        adata.write_h5ad(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def tiny_bundle(tiny_trained, synthetic_samples, tmp_path_factory):
    """The session's one-epoch tiny model (``tiny_trained``) saved as a bundle file (engine only, no Qt)."""
    from napari_mclstexp.bundle import make_bundle, save_bundle

    path = tmp_path_factory.mktemp("bundle") / "tiny.mclst"
    save_bundle(make_bundle(tiny_trained, synthetic_samples[:2], device="cpu"), path)
    return path


@pytest.fixture
def whole_slide_panels(make_napari_viewer, qtbot, synthetic_samples, tiny_bundle):
    """Factory ``(step px) -> (viewer, predict)``: the third synthetic slide loaded (no spots) and the Predict
    panel set to predict it whole with ``tiny_bundle`` on a grid of that step."""
    from napari_mclstexp.sample import image_path

    def open_panels(step: int):
        viewer = make_napari_viewer()
        load = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Load")[1]
        with qtbot.waitSignal(load.task.finished, timeout=60_000):
            load.load(slide=str(image_path(synthetic_samples[2])), spots="")
        predict = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Predict")[1]
        predict.bundle_path.setText(str(tiny_bundle))
        predict.mode.setCurrentText("whole slide")
        predict.step.setValue(step)
        return viewer, predict

    return open_panels


# --- what a fresh napari's GUI thread imports (a subprocess: the check needs cold imports) ---------------

#: Audit hook, hidden viewer, ``recording``/``loaded``; a script adds its steps and prints ``RESULT <json>``.
PREAMBLE = r"""
import json, sys, threading, time
import napari
from qtpy.QtWidgets import QApplication

main, recording, loaded = threading.main_thread(), [False], []

def hook(event, args):
    if event == "import" and recording[0] and threading.current_thread() is main:
        loaded.append(args[0])

sys.addaudithook(hook)
viewer = napari.Viewer(show=False)
"""


@pytest.fixture
def fresh_napari(tmp_path):
    """``run(steps, *args, timeout=600) -> dict``: :data:`PREAMBLE` + ``steps`` in a fresh interpreter, the
    dict it printed as ``RESULT``."""

    def run(steps: str, *args: str, timeout: int = 600) -> dict:
        """Run :data:`PREAMBLE` + ``steps`` with ``args`` in a fresh interpreter; the dict it printed as RESULT."""
        out = subprocess.run(
            [sys.executable, "-c", PREAMBLE + steps, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            cwd=tmp_path,
            check=False,
        )
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        assert line is not None, out.stderr[-3000:]
        return json.loads(line[len("RESULT ") :])

    return run

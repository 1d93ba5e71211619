"""npe2 manifest: it validates, and every widget opens from the plugin menu machinery."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

WIDGETS = ["mclSTExp", "Load", "Train", "Predict", "Explore", "Domains", "Export"]


def test_npe2_validate():
    npe2 = Path(sys.executable).with_name("npe2")
    out = subprocess.run([str(npe2), "validate", "napari-mclstexp"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "valid" in out.stdout


def test_manifest_contributions():
    import npe2

    manifest = npe2.PluginManifest.from_distribution("napari-mclstexp")
    assert [w.display_name for w in manifest.contributions.widgets] == WIDGETS
    assert {w.filename_extensions[0] for w in manifest.contributions.writers} == {".h5ad", ".csv", ".geojson"}
    assert {s.key for s in manifest.contributions.sample_data} == {"demo", "her2st"}
    for command in manifest.contributions.commands:
        module, _, attr = command.python_name.partition(":")
        assert attr and len(attr) > 1, command.python_name


def test_root_manifest_points_to_package():
    root = Path(__file__).resolve().parents[2]
    assert (root / "napari.yaml").resolve() == (root / "src/napari_mclstexp/napari.yaml").resolve()


@pytest.mark.parametrize("name", WIDGETS)
def test_widget_opens_from_plugin(make_napari_viewer, name):
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("napari-mclstexp", name)
    assert type(widget).__name__ == ("McLSTExpPanel" if name == "mclSTExp" else f"{name}Widget")
    # napari hands plugins a public-only proxy of the viewer
    assert getattr(widget.viewer, "__wrapped__", widget.viewer) is viewer
    assert dock.isVisible() or not viewer.window._qt_window.isVisible()


def test_closed_widgets_stop_listening(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QApplication

    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Explore")

    def listeners() -> int:
        return sum("LayerCombo" in repr(cb) for cb in viewer.layers.events.inserted.callbacks)

    assert listeners() >= 1
    viewer.window.remove_dock_widget(dock)
    dock.deleteLater()
    widget.deleteLater()
    QApplication.sendPostedEvents(None, 0)
    qtbot.wait(50)
    assert listeners() == 0

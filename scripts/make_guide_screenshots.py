"""Screenshots of the user guide (docs/user-guide.md), made from the offline demo slide.

Opens a real napari window at 1366×768 with the mclSTExp panel, walks Data → Train → Predict → Explore →
Domains → Export through the panel's own methods, and saves one optimised PNG of the whole window per step,
so that the guide's pictures stay true as the GUI changes. Needs a display; on a server run it under Xvfb::

    xvfb-run -a -s "-screen 0 1366x768x24" python scripts/make_guide_screenshots.py docs/images/guide
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 1366, 768
#: Seconds a whole-slide prediction may take before the guide shows the spots-only walk (issue 24: < 1 min).
WHOLE_SLIDE_S = 60.0
#: The gene shown in Explore: a tumour marker of the demo panel.
GENE = "TUMOUR_M1"


def wait_for(task, app, timeout: float) -> object:
    """Process events until ``task`` (a TaskPanel) emits ``finished``; returns its value.

    Raises
    ------
    TimeoutError
        When it has not finished after ``timeout`` seconds (the task is cancelled first).
    RuntimeError
        When the task failed.
    """
    done: list = []
    task.finished.connect(done.append)
    start = time.perf_counter()
    try:
        while not done:
            app.processEvents()
            time.sleep(0.01)
            if time.perf_counter() - start > timeout:
                task.cancel()
                raise TimeoutError(f"{task.status.text()!r} still running after {timeout:.0f} s")
    finally:
        task.finished.disconnect(done.append)
    if done[0] is None:
        raise RuntimeError(f"the step failed: {task.status.text()}")
    return done[0]


def settle(app, seconds: float = 1.0) -> None:
    """Let napari draw (layers load their tiles asynchronously)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.02)


def save(viewer, app, out: Path, name: str) -> Path:
    """Grab the whole window and write it as an optimised (palette) PNG."""
    from PIL import Image

    settle(app)
    pixels = viewer.screenshot(canvas_only=False, flash=False)
    image = Image.fromarray(np.asarray(pixels)[..., :3])
    if image.size != (WIDTH, HEIGHT):
        image = image.resize((WIDTH, HEIGHT), Image.LANCZOS)
    path = out / f"{name}.png"
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"{path}: {path.stat().st_size // 1024} KB")
    return path


def walk(out: Path, whole_slide: bool) -> list[Path]:
    """Open napari, walk the panel's steps on the demo slide and save a screenshot of each."""
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_mclstexp._qt._worker import close_toasts
    from napari_mclstexp.workflows.demo import SAMPLE_BUNDLE, SAMPLE_H5AD, SAMPLE_IMAGE, sample_data_dir

    folder = sample_data_dir()
    viewer = napari.Viewer(title="mclSTExp", show=True)
    app = QApplication.instance()
    window = viewer.window._qt_window
    window.showNormal()
    window.resize(WIDTH, HEIGHT)
    _dock, panel = viewer.window.add_plugin_dock_widget("napari-mclstexp", "mclSTExp")
    settle(app, 0.5)
    shots = []

    # Data: the slide and its spots
    panel.show_step("Data")
    panel.load.slide_edit.setText(str(folder / SAMPLE_IMAGE))
    panel.load.spots_edit.setText(str(folder / SAMPLE_H5AD))
    panel.load.load()
    wait_for(panel.load.task, app, 120)
    shots.append(save(viewer, app, out, "1-data"))

    # Train: which sections would train (the one in view is left out); the demo ships a trained model
    panel.show_step("Train")
    shots.append(save(viewer, app, out, "2-train"))

    # Predict: at the spots, then (when quick enough) over the whole slide
    panel.show_step("Predict")
    panel.predict.bundle_path.setText(str(folder / SAMPLE_BUNDLE))
    panel.predict.mode.setCurrentText("at spots")
    panel.predict.predict()
    wait_for(panel.predict.task, app, 300)
    spots_pred = viewer.layers.selection.active
    if whole_slide:
        panel.predict.mode.setCurrentText("whole slide")
        panel.predict.predict()
        try:
            wait_for(panel.predict.task, app, WHOLE_SLIDE_S)
        except TimeoutError as err:
            print(f"whole slide skipped: {err}", file=sys.stderr)
            settle(app, 2)
    shots.append(save(viewer, app, out, "3-predict"))

    # Explore: the spot predictions coloured by a gene, and a region ranked against the rest
    panel.show_step("Explore")
    viewer.layers.selection.active = spots_pred  # the canvas follows: tiles and mask over the spots hide
    panel.explore.target.select(spots_pred)
    region = panel.explore.regions.region_layer()  # in the spots' scale
    viewer.layers.selection.active = spots_pred
    panel.explore.target.select(spots_pred)
    panel.explore.refresh_genes()
    panel.explore.search.setText(GENE)
    panel.explore.choose_top_match()
    ys, xs = spots_pred.data[:, 0], spots_pred.data[:, 1]
    cy, cx = np.percentile(ys, 50), np.percentile(xs, 80)
    h, w = 0.12 * np.ptp(ys), 0.08 * np.ptp(xs)
    region.add_rectangles(np.array([[cy - h, cx - w], [cy + h, cx + w]]) / np.asarray(region.scale))
    panel.explore.regions.rank()
    wait_for(panel.explore.regions.task, app, 300)
    viewer.layers.selection.active = spots_pred
    viewer.reset_view()
    shots.append(save(viewer, app, out, "4-explore"))

    # Domains: clusters of the predictions
    panel.show_step("Domains")
    panel.domains.target.select(spots_pred)
    panel.domains.run()
    wait_for(panel.domains.task, app, 300)
    shots.append(save(viewer, app, out, "5-domains"))

    # Export: the newest layer (the domains) to QuPath, AnnData or CSV
    panel.show_step("Export")
    with tempfile.TemporaryDirectory(prefix="mclstexp-guide-") as tmp:
        panel.export.folder.setText(tmp)
        saved = panel.export.export(".geojson")
        settle(app, 1)
        if saved is not None:  # the dock's status line says it; the toast would hide the canvas legend
            close_toasts([f"saved {saved.name} in {saved.parent}{panel.export._note}"])
        shots.append(save(viewer, app, out, "6-export"))
    viewer.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the PNGs (e.g. docs/images/guide)")
    parser.add_argument("--no-whole-slide", action="store_true", help="predict at the spots only")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    walk(args.out, whole_slide=not args.no_whole_slide)
    return 0


if __name__ == "__main__":
    sys.exit(main())

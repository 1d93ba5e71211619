"""The pathologist's walk (issue 24), one action per fresh napari: set the window up to just before the
action, optionally start the panel's own training in the background, then measure the action's longest
gap between the ticks of a 10 ms GUI ``QTimer`` (from the click until its task is finished and the
panel's queued layer steps ran, plus :data:`SETTLE_S`).

Used by :mod:`benchmarks.stalls` (each run is a child process: ``--one ACTION --mode quiet|training``).
The her2st actions need the shared data and a model trained on B4/C2/C3 (:func:`her2st_bundle`
trains one once, the quick preset for 2 epochs, kept in ``$MCLSTEXP_STALLS_CACHE`` or the temp folder).
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: Actions of the walk, in order; ``train`` is the panel's own training (its finishing stage included).
ACTIONS = (
    "open_panel",
    "load_her2st",
    "train",
    "predict_spots",
    "predict_slide",
    "explore_genes",
    "side_by_side",
    "side_by_side_off",
    "domains_spots",
    "domains_tiles",
    "export",
    "detect_tissue",
)
#: Actions whose "during training" run makes no sense (training itself is the load).
QUIET_ONLY = ("train",)
#: Event-loop time kept measuring after the action (late paints, deferred steps).
SETTLE_S = 0.5
GENES = "hvg:200+ERBB2,CD74"
SECTIONS_TRAIN = ("B4", "C2", "C3")
SECTION_SCORED = "C4"


def cache_dir() -> Path:
    """Where the walk keeps its model and outputs."""
    path = Path(os.environ.get("MCLSTEXP_STALLS_CACHE", Path(tempfile.gettempdir()) / "mclstexp-stalls"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def her2st_bundle(her2st: Path) -> Path:
    """A quick model of B4/C2/C3 (trained once, 2 epochs: what is measured is the window, not the model)."""
    out = cache_dir() / "her2st_quick.mclst"
    if out.exists():
        return out
    from napari_mclstexp.io.her2st import read_her2st
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.progress import run
    from napari_mclstexp.workflows.train import train_and_save

    samples = read_her2st(her2st, list(SECTIONS_TRAIN))
    config = get_preset("quick").replace(epochs=2)
    run(train_and_save(list(samples.values()), config, out, genes=GENES, device="cpu"))
    return out


class Ticks:
    """A 10 ms GUI timer's tick times, and the cycle collector's pauses while it ticks (``gc.callbacks``)."""

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.times: list[float] = []
        self.collections: list[tuple[int, float]] = []  # (generation, ms)
        self._collecting = 0.0
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(lambda: self.times.append(time.perf_counter()))

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._collecting = time.perf_counter()
        else:
            self.collections.append((info["generation"], (time.perf_counter() - self._collecting) * 1e3))

    def start(self) -> None:
        """Start ticking; the start counts as a tick (a click whose slot blocks is a gap from here)."""
        gc.callbacks.append(self._on_gc)
        self.times.append(time.perf_counter())
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        self.times.append(time.perf_counter())
        gc.callbacks.remove(self._on_gc)

    def gc_record(self) -> dict:
        """The collector's longest pause, its full (oldest generation) collections and their time."""
        full = [ms for generation, ms in self.collections if generation == 2]
        return {
            "gc_longest_ms": round(max((ms for _, ms in self.collections), default=0.0), 1),
            "gc_full_collections": len(full),
            "gc_full_ms": round(sum(full), 1),
        }

    def gaps_ms(self) -> np.ndarray:
        return np.diff(self.times) * 1e3 if len(self.times) > 1 else np.array([np.inf])


def wait_until(done: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Run the event loop until ``done()`` (checked every 20 ms)."""
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + timeout_s
    while not done():
        if time.perf_counter() > end:
            raise TimeoutError(f"{what}: not done after {timeout_s:.0f} s")
        QApplication.processEvents()
        time.sleep(0.005)


def pump(seconds: float) -> None:
    """Run the event loop for ``seconds``."""
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.005)


class Walk:
    """One napari window with the mclSTExp panel, driven like a user would."""

    def __init__(self, her2st: Path | None) -> None:
        import napari

        self.her2st = her2st
        self.viewer = napari.Viewer(show=True)
        self.viewer.window._qt_window.resize(1366, 768)
        self.panel = None

    # --- the panel's steps -------------------------------------------------------------------------
    def widgets(self) -> list:
        p = self.panel
        return [] if p is None else [p.load, p.train, p.predict, p.explore, p.domains, p.export]

    def idle(self, *, training_ok: bool = True) -> bool:
        """The panel is open, no task of it runs (the background training aside), no layer step waits."""
        if self.panel is not None and not getattr(self.panel, "ready", True):
            return False  # a panel that opens in steps (the step widgets still going in)
        for w in self.widgets():
            if w is self.panel.train and training_ok:
                continue
            task = getattr(w, "task", None)
            if task is not None and task.running:
                return False
            for steps in (getattr(w, "steps", None), getattr(getattr(w, "side", None), "steps", None)):
                if steps is not None and steps.busy:
                    return False
        return True

    def settle(self, timeout_s: float = 900.0) -> None:
        wait_until(self.idle, timeout_s, "the action")
        pump(SETTLE_S)

    def open_panel(self) -> None:
        self.panel = self.viewer.window.add_plugin_dock_widget("napari-mclstexp", "mclSTExp")[1]

    def open_docks(self) -> None:
        """The six step widgets as docks, one Plugins-menu click each: each in its own turn of the event loop,
        a user's clicks 0.3 s apart (six in one turn, as before 2026-12-07, is no click a user can make)."""
        for name in ("Load", "Train", "Predict", "Explore", "Domains", "Export"):
            self.viewer.window.add_plugin_dock_widget("napari-mclstexp", name)
            pump(0.3)

    def load(self) -> None:
        self.panel.show_step("Data")
        self.panel.load.load(slide="", spots=str(self.her2st))

    def layer(self, suffix: str):
        return self.viewer.layers[f"{SECTION_SCORED} {suffix}"]

    def show_scored(self) -> None:
        """Select the scored section's spots (what the user looks at)."""
        self.viewer.layers.selection.active = self.layer("spots")

    def start_training(self, epochs: int) -> None:
        """The panel's Train step with its defaults (every section but the one in view) and the walk's panel."""
        train = self.panel.train
        self.panel.show_step("Train")
        train.refresh_sections()
        train.set_checked([f"{s} spots" for s in SECTIONS_TRAIN])
        train.genes.setText(GENES)
        train.preset.setCurrentText("quick")
        train.epochs.setValue(epochs)
        train.device.setCurrentText("cpu")
        train.out.setText(str(cache_dir() / f"walk-{os.getpid()}.mclst"))
        train.train()

    def training_in_epochs(self) -> bool:
        event = self.panel.train.task.last_event
        return self.panel.train.task.running and event is not None and event.stage == "train"

    def predict(self, mode: str, bundle: Path) -> None:
        predict = self.panel.predict
        self.panel.show_step("Predict")
        predict.bundle_path.setText(str(bundle))
        predict.mode.setCurrentText(mode)
        predict.spots.select(self.layer("spots"))
        predict.slide.select(self.layer("slide"))
        predict.predict()

    def prediction(self, dense: bool):
        from napari_mclstexp.layer_data import role

        want = "dense" if dense else "predicted"
        return next(layer for layer in reversed(self.viewer.layers) if role(layer) == want)

    def explore_genes(self) -> None:
        explore = self.panel.explore
        self.panel.show_step("Explore")
        explore.target.select(self.prediction(False))
        for gene in ("ERBB2", "CD74", "GNAS", "ERBB2"):
            explore.set_gene(gene)
            pump(0.2)

    def side_by_side(self) -> None:
        explore = self.panel.explore
        self.panel.show_step("Explore")
        explore.target.select(self.prediction(False))
        explore.side_by_side.setChecked(True)

    def side_by_side_off(self) -> None:
        self.panel.explore.side_by_side.setChecked(False)

    def domains(self, dense: bool) -> None:
        self.panel.show_step("Domains")
        self.panel.domains.target.select(self.prediction(dense))
        self.panel.domains.run()

    def export(self) -> None:
        export = self.panel.export
        self.panel.show_step("Export")
        export.layer.select(self.prediction(False))
        for suffix in (".h5ad", ".csv", ".geojson"):
            export.export(suffix, str(cache_dir() / f"walk-{os.getpid()}{suffix}"))
            pump(0.1)

    def detect_tissue(self) -> None:
        self.panel.show_step("Predict")
        self.panel.predict.slide.select(self.layer("slide"))
        self.panel.predict.detect_tissue()

    def close(self) -> None:
        if self.panel is not None and self.panel.train.task.running:
            self.panel.train.task.cancel()
            wait_until(lambda: not self.panel.train.task.running, 120, "cancelling the training")
        self.viewer.close()


def run_action(action: str, mode: str, her2st: Path | None, bundle: Path | None) -> dict:
    """Set up, (train in the background), measure ``action``; the run's longest gap and details."""
    walk = Walk(her2st)
    pump(1.0)  # the window is up and drawn
    ticks = Ticks()

    def measured(do: Callable[[], None]) -> None:
        ticks.start()
        do()
        walk.settle()
        ticks.stop()

    if action == "open_panel" and mode == "quiet":
        measured(walk.open_panel)
    else:
        walk.open_panel()
        walk.settle()  # the panel built (a user cannot click Load before it is there)
        if action == "load_her2st" and mode == "quiet":
            measured(walk.load)
        else:
            walk.load()
            walk.settle()
            walk.show_scored()
    before = time.perf_counter()
    if mode == "training":
        walk.start_training(epochs=1000)
        wait_until(walk.training_in_epochs, 1800, "the panel's training reaching its epochs")
    if action in ("open_panel", "load_her2st") and mode == "training":
        # the training needs loaded sections: open the six step widgets as docks (Plugins menu), or
        # load the folder again
        measured(walk.open_docks if action == "open_panel" else walk.load)
    elif action == "train":  # until the training is done (settle() alone skips the panel's training)

        def train_to_the_end() -> None:
            walk.start_training(epochs=1)
            wait_until(lambda: walk.idle(training_ok=False), 1800, "the panel's training")

        measured(train_to_the_end)
    elif action in ("predict_spots", "predict_slide"):
        measured(lambda: walk.predict("at spots" if action == "predict_spots" else "whole slide", bundle))
    elif action in ("explore_genes", "side_by_side", "side_by_side_off", "domains_spots", "export"):
        walk.predict("at spots", bundle)
        walk.settle()
        if action == "side_by_side_off":
            walk.side_by_side()
            walk.settle()
        do = {
            "explore_genes": walk.explore_genes,
            "side_by_side": walk.side_by_side,
            "side_by_side_off": walk.side_by_side_off,
            "domains_spots": lambda: walk.domains(False),
            "export": walk.export,
        }[action]
        measured(do)
    elif action == "domains_tiles":
        walk.predict("whole slide", bundle)
        walk.settle(3600)
        measured(lambda: walk.domains(True))
    elif action == "detect_tissue":
        measured(walk.detect_tissue)
    gaps = ticks.gaps_ms()
    training = walk.panel.train.task.last_event if walk.panel is not None else None
    result = {
        "longest_ms": float(gaps.max()),
        "p99_ms": float(np.percentile(gaps, 99)),
        "measured_s": float(ticks.times[-1] - ticks.times[0]) if len(ticks.times) > 1 else None,
        "set_up_s": round(time.perf_counter() - before, 1),
        "training_stage": training.stage if (mode == "training" and training is not None) else None,
        **ticks.gc_record(),
    }
    walk.close()
    return result

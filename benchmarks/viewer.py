"""Viewer benchmark: gene-switch time on 100,000 spots and the longest UI stall while training.

Run ``python -m benchmarks viewer`` (under ``xvfb-run`` when there is no display); writes
``benchmarks/results/viewer.json``.  "Own work" is the time our code spends in
``ExploreWidget.set_gene`` (values, colours, features); "to frame" adds napari/vispy until the next
frame is drawn (software OpenGL under Xvfb here, far less on a real GPU).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def predicted_spots(n: int, n_genes: int, seed: int = 0):
    """A predictions AnnData with ``n`` spots on a hexagon-like grid and ``n_genes`` smooth genes."""
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    yy, xx = np.divmod(np.arange(n), side)
    xy = np.stack([xx * 100.0 + (yy % 2) * 50.0, yy * 87.0], axis=1)
    phases = rng.uniform(0, 2 * np.pi, size=(n_genes, 2))
    X = np.stack([np.sin(xy[:, 0] / 3000 + p[0]) + np.cos(xy[:, 1] / 2000 + p[1]) for p in phases], 1)
    X = (X + rng.normal(0, 0.2, X.shape)).astype(np.float32)
    a = ad.AnnData(
        X=X,
        obs=pd.DataFrame({"uncertainty": rng.random(n).astype(np.float32)}, index=[f"s{i}" for i in range(n)]),
        var=pd.DataFrame(index=[f"GENE{g}" for g in range(n_genes)]),
    )
    a.obsm["spatial"] = xy
    a.uns["spatial"] = {
        "BENCH": {"scalefactors": {"spot_diameter_fullres": 55.0}, "metadata": {"microns_per_pixel": 1.0}}
    }
    return a


def gene_switch(viewer, app, n_spots: int, n_genes: int, repeats: int) -> dict:
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.layer_data import spots_layer

    adata = predicted_spots(n_spots, n_genes)
    (layer,) = add_layer_tuples(viewer, [spots_layer(adata, role="predicted", name="bench predicted")])
    _, explore = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Explore")
    explore.target.select(layer)
    explore.refresh_genes()
    viewer.reset_view()
    app.processEvents()
    own, in_napari, to_frame = [], [], []
    for i in range(repeats):
        t0 = time.perf_counter()
        own.append(explore.set_gene(f"GENE{i % n_genes}"))
        in_napari.append(explore.last_napari_ms)
        viewer.window._qt_viewer.canvas._scene_canvas.native.repaint()
        app.processEvents()
        to_frame.append(1e3 * (time.perf_counter() - t0))
    viewer.layers.remove(layer)
    return {
        "n_spots": n_spots,
        "n_genes": n_genes,
        "repeats": repeats,
        "own_ms_median": float(np.median(own)),
        "own_ms_max": float(np.max(own)),
        "napari_face_color_ms_median": float(np.median(in_napari)),
        "to_frame_ms_median": float(np.median(to_frame)),
    }


def training_stall(viewer, app, epochs: int) -> dict:
    from qtpy.QtCore import QTimer

    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.layer_data import spots_layer
    from napari_mclstexp.synthetic import make_synthetic_sample

    tmp = Path(tempfile.mkdtemp())
    samples = [make_synthetic_sample(tmp, seed=s, section=f"SYN{s}") for s in (1, 2)]
    add_layer_tuples(viewer, [spots_layer(a) for a in samples])
    _, train = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Train")
    train.config_overrides = {"patch_px": 32, "input_px": 16, "batch_size": 32, "embed_dim": 16, "k": 10}
    train.epochs.setValue(epochs)
    train.out.setText(str(tmp / "bench.mclst"))
    from qtpy.QtCore import QEventLoop

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    stages: list[str] = []

    def tick() -> None:
        ticks.append(time.perf_counter())
        event = train.task.last_event
        stages.append(f"{event.stage} {event.step}/{event.total}" if event is not None else "start")

    timer.timeout.connect(tick)
    loop = QEventLoop()
    done: list = []
    train.task.finished.connect(lambda value: (done.append(value), loop.quit()))
    t0 = time.perf_counter()
    timer.start()
    train.train()
    if not done:
        loop.exec()
    timer.stop()
    gaps = np.diff(ticks) * 1e3
    import os

    return {
        "epochs": epochs,
        "wall_s": time.perf_counter() - t0,
        "ok": done[0] is not None,
        "load_average_1min": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
        "ticks": len(ticks),
        "longest_stall_ms": float(gaps.max()),
        "longest_stall_after": stages[int(np.argmax(gaps))],
        "longest_stall_at_s": float(ticks[int(np.argmax(gaps))] - t0),
        "p99_gap_ms": float(np.percentile(gaps, 99)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spots", type=int, default=100_000)
    parser.add_argument("--genes", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS / "viewer.json"))
    args = parser.parse_args(argv)
    import napari
    import torch._dynamo  # noqa: F401  (load Triton before Mesa's LLVM, see _qt/_llvm_guard.py)
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    result = {
        "python": sys.version.split()[0],
        "napari": napari.__version__,
        "machine": platform.machine(),
        "gene_switch": gene_switch(viewer, app, args.spots, args.genes, args.repeats),
        "training": training_stall(viewer, app, args.epochs),
    }
    viewer.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0

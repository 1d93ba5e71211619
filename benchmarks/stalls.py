"""The longest UI stall of two interactive cases (issue 16): loading the her2st folder and streaming a
whole-slide prediction of the demo slide.

Each run is a fresh process (a user opening napari), under a display (``xvfb-run -a``).  A 10 ms
``QTimer`` ticks in the GUI thread from the click until the task's ``finished``; the longest gap between
two ticks is the longest time the window could not react.  The stream case also records the longest
gap while the demo slide opens (``slide_load_longest_ms``: a fresh napari's first slide layer).  The
same measure as the ``timing`` tests (``tests/_qt/test_fit_and_stalls.py``), repeated and kept::

    python -m benchmarks stalls --repeats 5     # under xvfb-run when there is no display

writes ``benchmarks/results/stalls-cpu.json``: per case every run's longest gap, their median and
maximum, the 250 ms goal, and the 1-minute load average before each run (a stall is GUI-thread time:
on a busy machine the GUI thread gets no CPU, so the gaps also measure the machine).  The her2st case is
skipped without the shared data (``$MCLSTEXP_SHARED_DATA`` or ``../shared/data``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GOAL_MS = 250.0


def shared_her2st() -> Path | None:
    """The shared her2st folder, or ``None``."""
    base = Path(os.environ.get("MCLSTEXP_SHARED_DATA", ROOT.parent / "shared" / "data"))
    folder = base / "her2st"
    return folder if (folder / "ST-cnts").is_dir() else None


def _until_finished(app, task, start) -> tuple[object, list[float]]:
    """Tick every 10 ms from ``start()`` until ``task.finished``; returns (its value, the tick times)."""
    from qtpy.QtCore import QEventLoop, QTimer

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    loop, done = QEventLoop(), []
    task.finished.connect(lambda value: (done.append(value), loop.quit()))
    timer.start()
    start()
    if not done:
        loop.exec()
    timer.stop()
    return done[0], ticks


def one_run(case: str, step: int) -> dict:
    """One measurement in this process (the child of :func:`main`)."""
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=False)
    app = QApplication.instance()
    load = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Load")[1]
    if case == "her2st_load":
        value, ticks = _until_finished(app, load.task, lambda: load.load(slide="", spots=str(shared_her2st())))
        detail = {"layers": len(load.added)}
    else:
        from napari_mclstexp.workflows.demo import sample_data_dir

        data = sample_data_dir()
        slide = str(data / "demo_slide.ome.tif")
        _, opening = _until_finished(app, load.task, lambda: load.load(slide=slide, spots=""))
        predict = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Predict")[1]
        predict.bundle_path.setText(str(data / "demo_quick.mclst"))
        predict.mode.setCurrentText("whole slide")
        predict.step.setValue(step)
        predict.load_bundle()  # reading the bundle is the click's own work, not streaming
        value, ticks = _until_finished(app, predict.task, predict.predict)
        detail = {
            "tiles": int(getattr(value, "n_obs", 0)),
            "streamed": int(predict.streamed_tiles),
            "slide_load_longest_ms": float(np.diff(opening).max() * 1e3) if len(opening) > 1 else None,
        }
    gaps = np.diff(ticks) * 1e3 if len(ticks) > 1 else np.array([np.inf])
    viewer.close()
    longest, p99 = float(gaps.max()), float(np.percentile(gaps, 99))
    return {"ok": value is not None, "longest_ms": longest, "p99_ms": p99, **detail}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--step", type=int, default=0, help="whole-slide grid step in px (0: the widget's auto step)")
    parser.add_argument("--out", default=str(HERE / "results" / "stalls-cpu.json"))
    parser.add_argument("--one", choices=("her2st_load", "whole_slide_stream"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(one_run(args.one, args.step)), flush=True)
        return 0
    cases = ["whole_slide_stream"] + (["her2st_load"] if shared_her2st() else [])
    result: dict = {"goal_ms": GOAL_MS, "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}}
    for case in cases:
        runs = []
        for _ in range(args.repeats):  # cases alternate per repeat in spirit: each run is its own process
            load_avg = os.getloadavg()[0]
            cmd = [sys.executable, "-m", "benchmarks", "stalls", "--one", case, "--step", str(args.step)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise RuntimeError(f"{case} run failed:\n{out.stderr[-2000:]}")
            runs.append({**json.loads(line[7:]), "load_average_1min": load_avg})
            print(case, runs[-1], flush=True)
        longest = [r["longest_ms"] for r in runs]
        result[case] = {
            "runs": runs,
            "median_longest_ms": float(np.median(longest)),
            "max_longest_ms": float(np.max(longest)),
            "runs_under_goal": int(sum(v < GOAL_MS for v in longest)),
        }
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1)[:3000])
    return 0

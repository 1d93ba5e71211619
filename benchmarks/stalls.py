"""No freeze (issues 16 and 24): the longest UI stall of every action of the pathologist's walk, on a
quiet machine and while the panel's own training runs, and of streaming the demo slide's whole-slide
prediction.

Under a display (``xvfb-run -a``), a 10 ms ``QTimer`` ticks in the GUI thread from the click (which counts as
a tick: a slot that blocks is a gap) until the action is done; the longest gap between two ticks is the
longest time the window could not react.  A run of the walk is one fresh process (a user opening napari)
doing every action in the user's order, each measured on its own (:mod:`benchmarks.stalls_pass`; the actions
are in :mod:`benchmarks.stalls_walk`); runs alternate quiet and training.  ``--fresh`` measures each action
in a process of its own instead, set up anew to just before it (hours for the whole walk on 2 cores).
``whole_slide_stream`` (the demo slide, a fresh process per run; the prediction is clicked 1 s after the slide
opened, so that what the load left queued runs first, as in the walk) also records the longest gap while the
slide opens (``slide_load_longest_ms``)::

    python -m benchmarks stalls                       # every action, quiet and training, 5 runs each
    python -m benchmarks stalls --repeats 1 --actions side_by_side,predict_spots   # still walks all, keeps these
    python -m benchmarks stalls --repeats 1 --actions side_by_side --modes training --fresh

writes ``benchmarks/results/stalls-cpu.json``: per action and mode every run's longest gap, their median and
maximum against the goals (median <= 250 ms; no run over 350 ms quiet, 500 ms during training), and the
1-minute load average before and after each action (a stall is GUI-thread time: on a busy machine the GUI
thread gets no CPU, so the gaps also measure the machine), and the cycle collector's pauses in the action
(``gc_longest_ms``, ``gc_full_collections``, ``gc_full_ms``); ``passes`` gives each walk's wall time.  The walk
is skipped without the shared her2st data (``$MCLSTEXP_SHARED_DATA`` or ``../shared/data``).
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
GOAL_MS = 250.0  #: median of the runs' longest gaps
QUIET_MAX_MS = 350.0  #: no run over this on a quiet machine
TRAINING_MAX_MS = 500.0  #: no run over this while the panel trains


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
    ticks.append(time.perf_counter())  # the click: a slot that blocks is a gap from here
    timer.start()
    start()
    if not done:
        loop.exec()
    timer.stop()
    ticks.append(time.perf_counter())
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
        from .stalls_walk import pump

        pump(1.0)  # what the load left queued (the collector's freeze after it) runs before the click, as in the walk
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


def walk_run(action: str, mode: str) -> dict:
    """One action of the pathologist's walk (:mod:`benchmarks.stalls_walk`) in this process."""
    from .stalls_walk import her2st_bundle, run_action

    her2st = shared_her2st()
    bundle = her2st_bundle(her2st) if action not in ("open_panel", "load_her2st", "train") else None
    return {"ok": True, **run_action(action, mode, her2st, bundle)}


def summary(runs: list[dict], goal_max: float) -> dict:
    """Median and maximum of the runs' longest gaps, against the goals."""
    longest = [r["longest_ms"] for r in runs]
    return {
        "runs": runs,
        "median_longest_ms": float(np.median(longest)),
        "max_longest_ms": float(np.max(longest)),
        "goal_median_ms": GOAL_MS,
        "goal_max_ms": goal_max,
        "within_goals": bool(np.median(longest) <= GOAL_MS and np.max(longest) <= goal_max),
        "runs_under_goal": int(sum(v < GOAL_MS for v in longest)),
    }


def child(args: list[str]) -> dict:
    """Run one measurement in a fresh process; its RESULT line plus the load average before it."""
    load_avg = os.getloadavg()[0]
    cmd = [sys.executable, "-m", "benchmarks", "stalls", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return {**json.loads(line[7:]), "load_average_1min": load_avg, "load_average_after": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    from .stalls_walk import ACTIONS, QUIET_ONLY

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="fresh runs per action and mode (default 5)")
    parser.add_argument(
        "--actions",
        default="all",
        help=f"comma-separated subset of: whole_slide_stream, {', '.join(ACTIONS)} (default all)",
    )
    parser.add_argument("--modes", default="quiet,training", help="quiet, training or both (default both)")
    parser.add_argument("--step", type=int, default=0, help="whole-slide grid step in px (0: the widget's auto step)")
    parser.add_argument("--out", default=str(HERE / "results" / "stalls-cpu.json"))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="quiet", help=argparse.SUPPRESS)
    parser.add_argument("--pass", dest="walk_pass", help=argparse.SUPPRESS)
    parser.add_argument(
        "--fresh", action="store_true", help="one fresh process per action and run (the walk set up anew each time)"
    )
    args = parser.parse_args(argv)
    if args.walk_pass:
        from .stalls_pass import timed_pass
        from .stalls_walk import her2st_bundle

        her2st = shared_her2st()
        print("RESULT " + json.dumps(timed_pass(args.walk_pass, her2st, her2st_bundle(her2st))), flush=True)
        return 0
    if args.one:
        if args.one in ("her2st_load", "whole_slide_stream"):
            value = one_run(args.one, args.step)
        else:
            value = walk_run(args.one, args.mode)
        print("RESULT " + json.dumps(value), flush=True)
        return 0
    actions = ["whole_slide_stream", *ACTIONS] if args.actions == "all" else args.actions.split(",")
    if not shared_her2st():
        actions = [a for a in actions if a == "whole_slide_stream"]
    modes = args.modes.split(",")
    if any(a not in ("whole_slide_stream", *ACTIONS) for a in actions) or any(
        m not in ("quiet", "training") for m in modes
    ):
        parser.error(f"unknown action or mode in {args.actions!r} / {args.modes!r}")
    if any(a in ACTIONS and a not in ("open_panel", "load_her2st", "train") for a in actions):
        from .stalls_walk import her2st_bundle

        her2st_bundle(shared_her2st())  # once, before any measurement
    out_path = Path(args.out)
    # a subset run keeps the other actions' figures; a full run starts afresh
    full = args.actions == "all" and set(modes) == {"quiet", "training"}
    result: dict = json.loads(out_path.read_text()) if out_path.exists() and not full else {}
    result.update(
        {
            "goal_ms": GOAL_MS,
            "goals": {"quiet": [GOAL_MS, QUIET_MAX_MS], "training": [GOAL_MS, TRAINING_MAX_MS]},
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        }
    )

    def save(key: str, runs: list[dict], mode: str) -> None:
        result[key] = summary(runs, QUIET_MAX_MS if mode == "quiet" else TRAINING_MAX_MS)
        result[key]["date"] = time.strftime("%Y-%m-%d")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=1))  # after every run: a long run keeps its part

    if "whole_slide_stream" in actions:
        runs = []
        for _ in range(args.repeats):
            runs.append(child(["--one", "whole_slide_stream", "--step", str(args.step)]))
            print("whole_slide_stream", runs[-1], flush=True)
        save("whole_slide_stream", runs, "quiet")
    walk = [a for a in actions if a in ACTIONS]
    if walk and args.fresh:  # one fresh process per action and run (hours for all)
        for mode in modes:
            for action in walk:
                if mode == "training" and action in QUIET_ONLY:
                    continue
                runs = [child(["--one", action, "--mode", mode]) for _ in range(args.repeats)]
                print(mode, action, runs, flush=True)
                save(f"{action}:{mode}", runs, mode)
    elif walk:  # one fresh process per run and mode doing the whole walk in order (benchmarks.stalls_pass)
        per: dict[str, list[dict]] = {}
        result["passes"] = []
        for _ in range(args.repeats):
            for mode in modes:  # modes alternate: a drifting machine load touches both alike
                one = child(["--pass", mode])
                result["passes"].append(
                    {"mode": mode, "pass_s": one["pass_s"], "load_average_1min": one["load_average_1min"]}
                )
                for action, record in one["actions"].items():
                    if action in walk:
                        per.setdefault(f"{action}:{mode}", []).append(record)
                        save(f"{action}:{mode}", per[f"{action}:{mode}"], mode)
                print(
                    mode,
                    f"pass {one['pass_s']} s",
                    {a: round(r["longest_ms"]) for a, r in one["actions"].items()},
                    flush=True,
                )
    brief = {
        k: (v["median_longest_ms"], v["max_longest_ms"])
        for k, v in result.items()
        if isinstance(v, dict) and "runs" in v
    }
    print(json.dumps(brief, indent=1))
    return 0

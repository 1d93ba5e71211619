"""Cohort prediction on the CPU: 20 synthetic slides, a clean run, a run killed halfway and resumed,
and a 2-process ``torchrun`` (gloo) run; writes JSON.

Checks what the issue asks to show: the resumed run predicts only the slides the killed one had not
finished, its outputs equal the clean run's, and under ``torchrun`` each slide is predicted exactly once.
Usage: ``python -m benchmarks cohort [--out cohort.json] [--slides 20]`` (~ 2–5 min on 2 cores; default output
``benchmarks/results/cohort-cpu-<date>.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "sample_data" / "demo_quick.mclst"


def _cmd(paths, out: Path) -> list[str]:
    return [
        "-m",
        "napari_mclstexp.cli",
        "predict",
        str(BUNDLE),
        "--image",
        *map(str, paths),
        "--out-dir",
        str(out),
        "--device",
        "cpu",
        "-q",
    ]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env.pop("WORLD_SIZE", None)
    return env


def _equal(a: Path, b: Path, names) -> bool:
    import anndata as ad

    for name in names:
        x, y = ad.read_h5ad(a / f"{name}.h5ad"), ad.read_h5ad(b / f"{name}.h5ad")
        if list(x.obs_names) != list(y.obs_names) or not np.allclose(x.X, y.X, rtol=1e-6, atol=1e-6):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / f"cohort-cpu-{date.today()}.json")
    p.add_argument("--slides", type=int, default=20)
    p.add_argument("--size-px", type=int, default=512)
    args = p.parse_args(argv)
    from napari_mclstexp.synthetic.cohort import write_cohort_slides

    result: dict = {"slides": args.slides, "slide_px": args.size_px}
    with tempfile.TemporaryDirectory(prefix="mclstexp-cohort-") as tmp:
        tmp = Path(tmp)
        paths = write_cohort_slides(tmp / "slides", args.slides, size_px=(args.size_px, args.size_px), seed=11)
        names = [q.name.split(".")[0] for q in paths]
        t0 = time.perf_counter()
        clean = subprocess.run(
            [sys.executable, *_cmd(paths, tmp / "clean")], env=_env(), capture_output=True, text=True
        )
        result["clean"] = {"exit": clean.returncode, "seconds": time.perf_counter() - t0}
        summary = pd.read_csv(tmp / "clean" / "cohort_summary.csv")
        result["clean"]["tiles"] = int(summary["tiles"].sum())
        result["clean"]["slides_per_min"] = 60 * args.slides / result["clean"]["seconds"]

        proc = subprocess.Popen(
            [sys.executable, *_cmd(paths, tmp / "killed")],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while len(list((tmp / "killed").glob("*.h5ad"))) < args.slides // 2 and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        finished = len(list((tmp / "killed").glob("*.h5ad")))
        t0 = time.perf_counter()
        rerun = subprocess.run(
            [sys.executable, *_cmd(paths, tmp / "killed")], env=_env(), capture_output=True, text=True
        )
        summary = pd.read_csv(tmp / "killed" / "cohort_summary.csv")
        result["kill_and_resume"] = {
            "finished_before_kill": finished,
            "rerun_exit": rerun.returncode,
            "rerun_seconds": time.perf_counter() - t0,
            "rerun_skipped": int((summary["status"] == "skipped").sum()),
            "rerun_predicted": int((summary["status"] == "done").sum()),
            "outputs_equal_clean_run": _equal(tmp / "clean", tmp / "killed", names),
        }

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        t0 = time.perf_counter()
        dist = subprocess.run(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nproc-per-node",
                "2",
                "--master-port",
                str(port),
                *_cmd(paths, tmp / "dist"),
            ],
            env=_env(),
            capture_output=True,
            text=True,
        )
        summary = pd.read_csv(tmp / "dist" / "cohort_summary.csv")
        result["torchrun_2_cpu"] = {
            "exit": dist.returncode,
            "seconds": time.perf_counter() - t0,
            "slides_per_rank": summary["rank"].value_counts().sort_index().tolist(),
            "each_slide_once": bool(
                summary["name"].is_unique and len(summary) == args.slides and (summary["status"] == "done").all()
            ),
            "outputs_equal_clean_run": _equal(tmp / "clean", tmp / "dist", names),
        }
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0

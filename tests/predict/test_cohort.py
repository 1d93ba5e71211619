"""Cohort prediction: resume after a kill equals a clean run, failures recorded, slides spread over ranks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from napari_mclstexp.bundle import load_bundle
from napari_mclstexp.errors import InputError
from napari_mclstexp.predict.cohort import (
    SUMMARY_NAME,
    predict_cohort,
    read_manifest,
    slides_from_paths,
)
from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.progress import run
from napari_mclstexp.synthetic.cohort import write_cohort_slides

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "sample_data" / "demo_quick.mclst"
N = 6


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort")
    paths = write_cohort_slides(folder / "slides", N, size_px=(480, 480), seed=3)
    bundle = load_bundle(BUNDLE)
    clean = run(predict_cohort(bundle, slides_from_paths(paths), folder / "clean", PredictOptions(device="cpu")))
    return paths, bundle, clean, folder / "clean"


def _same_outputs(a: Path, b: Path, names) -> None:
    for name in names:
        x, y = ad.read_h5ad(a / f"{name}.h5ad"), ad.read_h5ad(b / f"{name}.h5ad")
        assert list(x.obs_names) == list(y.obs_names)
        np.testing.assert_allclose(x.X, y.X, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(x.obsm["spatial"], y.obsm["spatial"])


def test_manifest(tmp_path):
    (tmp_path / "m.csv").write_text("image,name,mpp\nslides/a.ome.tif,,\n/abs/b.svs,B2,0.25\n")
    slides = read_manifest(tmp_path / "m.csv")
    assert [s.name for s in slides] == ["a", "B2"]
    assert slides[0].image == tmp_path / "slides" / "a.ome.tif" and slides[0].mpp is None
    assert slides[1].mpp == 0.25
    (tmp_path / "bad.csv").write_text("path\nx.tif\n")
    with pytest.raises(InputError, match="'image' column"):
        read_manifest(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="repeated: x"):
        slides_from_paths(["a/x.tif", "b/x.tif"])


def test_interrupted_run_resumes_and_equals_clean_run(cohort, tmp_path):
    paths, bundle, clean, clean_dir = cohort
    assert clean.count("done") == N and all(r["tiles"] > 0 for r in clean.rows)
    slides = slides_from_paths(paths)
    gen = predict_cohort(bundle, slides, tmp_path, PredictOptions(device="cpu"))
    for event in gen:  # stop the run (as a kill would) once half the slides are written
        if event.message.endswith(": done") and event.step == N // 2:
            break
    gen.close()
    assert len(list(tmp_path.glob("*.h5ad"))) == N // 2
    (tmp_path / ".slide_005.h5ad.abc.h5ad.part").write_bytes(b"half-written")  # a killed write's leftover
    again = run(predict_cohort(bundle, slides, tmp_path, PredictOptions(device="cpu")))
    assert [r["status"] for r in again.rows] == ["skipped"] * (N // 2) + ["done"] * (N - N // 2)
    assert [r["tiles"] for r in again.rows] == [r["tiles"] for r in clean.rows]
    # each slide's novel fraction: from the prediction, or (skipped slides) read back from its output
    assert all(0.0 <= r["novel_fraction"] <= 1.0 for r in clean.rows)
    assert [r["novel_fraction"] for r in again.rows] == [r["novel_fraction"] for r in clean.rows]
    assert "novel_fraction" in pd.read_csv(again.summary_path).columns
    assert not list(tmp_path.glob("*.part"))
    _same_outputs(clean_dir, tmp_path, [s.name for s in slides])
    summary = pd.read_csv(tmp_path / SUMMARY_NAME)
    assert list(summary["status"]) == [r["status"] for r in again.rows]


def test_failed_slides_are_recorded_and_the_rest_go_on(cohort, tmp_path, capsys):
    from napari_mclstexp.cli import main

    paths, *_ = cohort
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"not a tiff at all")
    manifest = tmp_path / "slides.csv"
    pd.DataFrame({"image": [str(paths[0]), str(broken), str(tmp_path / "missing.svs")]}).to_csv(manifest, index=False)
    code = main(
        [
            "predict",
            str(BUNDLE),
            "--manifest",
            str(manifest),
            "--out-dir",
            str(tmp_path / "out"),
            "--device",
            "cpu",
            "-q",
        ]
    )
    assert code == 1
    summary = pd.read_csv(tmp_path / "out" / SUMMARY_NAME)
    assert list(summary["status"]) == ["done", "failed", "failed"]
    assert "broken.tif" in summary["error"][1] and "missing.svs" in summary["error"][2]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.h5ad")) == ["slide_000.h5ad"]
    assert "broken failed" in capsys.readouterr().err
    # a rerun retries only what failed: the finished slide is skipped
    assert (
        main(
            [
                "predict",
                str(BUNDLE),
                "--manifest",
                str(manifest),
                "--out-dir",
                str(tmp_path / "out"),
                "--device",
                "cpu",
                "-q",
            ]
        )
        == 1
    )
    assert list(pd.read_csv(tmp_path / "out" / SUMMARY_NAME)["status"]) == ["skipped", "failed", "failed"]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"))
    env.pop("WORLD_SIZE", None)
    return env


#: Runs the CLI with the h5ad writer held before its third slide: the parent kills it there, after
#: exactly two finished outputs, whatever the machine's speed (a wait on a file, not on a clock).
HOLD_BEFORE_THIRD = r"""
import sys, threading
from pathlib import Path
import napari_mclstexp.io.h5ad as h5ad
from napari_mclstexp.cli import main

ready, real, written = Path(sys.argv[1]), h5ad.write_h5ad, []

def write_h5ad(adata, path, *args, **kwargs):
    if len(written) == 2:
        ready.write_text("2 written")
        threading.Event().wait()  # held here until killed
    real(adata, path, *args, **kwargs)
    written.append(path)

h5ad.write_h5ad = write_h5ad
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_process_killed_midway_then_rerun_finishes_the_rest(cohort, tmp_path):
    paths, _, clean, clean_dir = cohort
    out = tmp_path / "out"
    args = ["predict", str(BUNDLE), "--image", *map(str, paths), "--out-dir", str(out), "--device", "cpu", "-q"]
    ready, log = tmp_path / "two-written", tmp_path / "stderr.txt"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD_BEFORE_THIRD, str(ready), *args],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        while not ready.exists():  # pytest-timeout bounds this wait if the run hangs
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert sorted(p.name for p in out.glob("*.h5ad")) == ["slide_000.h5ad", "slide_001.h5ad"]
    done = subprocess.run(
        [sys.executable, "-m", "napari_mclstexp.cli", *args], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    summary = pd.read_csv(out / SUMMARY_NAME)
    assert list(summary["status"]) == ["skipped"] * 2 + ["done"] * (N - 2)
    _same_outputs(clean_dir, out, [p.name.split(".")[0] for p in paths])


@pytest.mark.slow
def test_torchrun_two_cpu_ranks_predict_each_slide_once(cohort, tmp_path):
    paths, _, clean, clean_dir = cohort
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        str(port),
        "-m",
        "napari_mclstexp.cli",
        "predict",
        str(BUNDLE),
        "--image",
        *map(str, paths[:4]),
        "--out-dir",
        str(out),
        "--device",
        "cpu",
        "-q",
    ]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = pd.read_csv(out / SUMMARY_NAME)
    assert list(summary["name"]) == [f"slide_{i:03d}" for i in range(4)]
    assert list(summary["status"]) == ["done"] * 4
    assert list(summary["rank"]) == [0, 1, 0, 1]  # dealt round-robin: every slide on exactly one rank
    _same_outputs(clean_dir, out, list(summary["name"]))

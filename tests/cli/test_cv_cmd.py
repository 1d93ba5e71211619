"""``mclstexp cv``: arguments reach the engine, results JSON and table, resume, clear errors."""

from __future__ import annotations

import json

import pytest

from napari_mclstexp.cli import main
from napari_mclstexp.workflows import cv


@pytest.fixture
def files(synthetic_samples, tmp_path):
    paths = []
    for s in synthetic_samples:
        p = tmp_path / f"{s.obs['section'].iloc[0]}.h5ad"
        s.write_h5ad(p)
        paths.append(str(p))
    return paths


def test_cv_command_passes_options_and_resumes(files, tmp_path, monkeypatch, capsys):
    seen = []

    def fake_fold(fold, samples, config, **kwargs):
        seen.append((fold.test, fold.train, config.epochs, config.preset, kwargs["device"]))
        yield from ()
        return {"metrics": {"acg": 0.25, "heg50": 0.5, "mse": 1.0}, "device": "cpu", "timings": {"train_s": 2.0}}

    monkeypatch.setattr(cv, "run_fold", fake_fold)
    out = tmp_path / "cv.json"
    argv = [
        *files,
        "--scheme",
        "patient",
        "--epochs",
        "1",
        "--folds",
        "SYN3,SYN1",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "cache"),
    ]
    assert main(["cv", *argv]) == 0
    assert seen == [("SYN3", ("SYN1", "SYN2"), 1, "quick", "cpu"), ("SYN1", ("SYN3",), 1, "quick", "cpu")]
    data = json.loads(out.read_text())
    assert data["scheme"] == "patient" and data["config"]["epochs"] == 1
    assert data["mean"]["acg"] == pytest.approx(0.25) and data["folds"]["SYN1"]["excluded"] == ["SYN2"]
    table = capsys.readouterr().out
    assert "SYN3" in table and "mean" in table and "0.2500" in table
    seen.clear()
    assert main(["cv", *argv]) == 0 and seen == []  # resumed: nothing left to do


def test_cv_command_errors(files, tmp_path, capsys):
    out = str(tmp_path / "cv.json")
    assert main(["cv", *files[:2], "--scheme", "patient", "--out", out]) == 2  # SYN1, SYN2: one patient
    assert "no section left" in capsys.readouterr().err
    assert main(["cv", *files, "--scheme", "slide", "--folds", "XX", "--out", out]) == 2
    assert "XX" in capsys.readouterr().err
    assert main(["cv", *files, "--scheme", "slide", "--out", files[0]]) == 2
    assert "overwrite" in capsys.readouterr().err

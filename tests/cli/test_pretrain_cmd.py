"""``mclstexp pretrain``: weights written, then loaded by ``train --weights``; refusals exit 2 naming the path."""

from __future__ import annotations

import pytest

from napari_mclstexp.cli import main


@pytest.fixture
def sample_file(synthetic_samples, tmp_path, monkeypatch):
    from napari_mclstexp.io.h5ad import write_h5ad

    monkeypatch.setenv("MCLSTEXP_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "SYN1.h5ad"
    write_h5ad(synthetic_samples[0], path)
    return path


def test_pretrain_then_train_with_weights(sample_file, tmp_path, capsys):
    from napari_mclstexp.bundle import load_bundle

    enc = tmp_path / "enc.safetensors"
    args = ["--epochs", "1", "--tiles-per-slide", "8", "--batch-size", "8", "--device", "cpu", "--seed", "2"]
    assert main(["-q", "pretrain", str(sample_file), "--out", str(enc), *args]) == 0
    assert enc.is_file()
    out = tmp_path / "m.mclst"
    train = ["train", str(sample_file), "--out", str(out), "--preset", "quick", "--weights", str(enc)]
    assert main(["-q", *train, "--epochs", "1", "--device", "cpu", "--genes", "hvg:8"]) == 0
    bundle = load_bundle(out)
    assert bundle.config["weights"] == str(enc)


def test_missing_slide_exits_2_naming_it(tmp_path, capsys):
    missing = tmp_path / "absent.tif"
    code = main(["-q", "pretrain", str(missing), "--out", str(tmp_path / "e.safetensors"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "slide not found" in err and str(missing) in err


def test_bad_numbers_exit_2(sample_file, tmp_path, capsys):
    code = main(["-q", "pretrain", str(sample_file), "--out", str(tmp_path / "e.safetensors"), "--epochs", "0"])
    assert code == 2 and "--epochs" in capsys.readouterr().err

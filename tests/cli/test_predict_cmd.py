"""``mclstexp predict``: at spots, whole slide, and refusing to overwrite inputs."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

import napari_mclstexp.cli as cli
from napari_mclstexp.bundle import save_bundle
from napari_mclstexp.io.h5ad import write_h5ad


@pytest.fixture
def main(monkeypatch):
    # only the predict command: the real main() path without depending on other commands' modules
    monkeypatch.setattr(cli, "COMMANDS", ("predict",))
    return cli.main


@pytest.fixture
def files(tiny_bundle, synthetic_samples, tmp_path):
    model = save_bundle(tiny_bundle, tmp_path / "model.mclst")
    sample = write_h5ad(synthetic_samples[2], tmp_path / "SYN3.h5ad")
    return model, sample, tmp_path


def test_predict_at_spots(main, files, synthetic_samples):
    model, sample, tmp = files
    out = tmp / "pred.h5ad"
    assert main(["-q", "predict", str(model), str(sample), "--out", str(out), "--device", "cpu", "--k", "3"]) == 0
    pred = ad.read_h5ad(out)
    assert list(pred.obs_names) == list(synthetic_samples[2].obs_names)
    np.testing.assert_array_equal(pred.obsm["spatial"], synthetic_samples[2].obsm["spatial"])
    assert pred.uns["mclstexp"]["k"] == 3 and pred.X.shape[1] == 24


def test_predict_whole_slide(main, files, synthetic_samples):
    model, _, tmp = files
    image = synthetic_samples[2].uns["spatial"]["SYN3"]["metadata"]["source_image_path"]
    out = tmp / "slide.h5ad"
    argv = ["-q", "predict", str(model), "--image", image, "--out", str(out), "--step-px", "128", "--batch-size", "8"]
    assert main(argv) == 0
    pred = ad.read_h5ad(out)
    assert pred.uns["mclstexp"]["grid"]["shape"].tolist() == [4, 4] and 0 < pred.n_obs <= 16


@pytest.mark.parametrize("which", ["sample", "model"])
def test_refuses_to_overwrite_an_input(main, files, which, capsys):
    model, sample, _ = files
    target = sample if which == "sample" else model
    before = target.read_bytes()
    assert main(["predict", str(model), str(sample), "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "overwrite an input" in err and len(err.strip().splitlines()) == 1
    assert target.read_bytes() == before


def test_refuses_image_as_output_and_bad_combinations(main, files, synthetic_samples, capsys):
    model, sample, tmp = files
    image = synthetic_samples[2].uns["spatial"]["SYN3"]["metadata"]["source_image_path"]
    assert main(["predict", str(model), "--image", image, "--out", image]) == 2
    assert main(["predict", str(model), "--out", str(tmp / "x.h5ad")]) == 2  # neither sample nor image
    assert main(["predict", str(model), str(sample), "--image", image, "--out", str(tmp / "x.h5ad")]) == 2
    assert main(["predict", str(tmp / "missing.mclst"), str(sample), "--out", str(tmp / "x.h5ad")]) == 2
    assert not (tmp / "x.h5ad").exists()
    assert "missing.mclst" in capsys.readouterr().err


def test_tta_flag_overrides_the_bundle_and_is_recorded(main, files):
    model, sample, tmp = files
    runs = {}
    for flag in ("--tta", "--no-tta", None):
        out = tmp / f"pred{flag}.h5ad"
        argv = ["-q", "predict", str(model), str(sample), "--out", str(out), "--device", "cpu"]
        assert main(argv + ([flag] if flag else [])) == 0
        runs[flag] = ad.read_h5ad(out)
    assert bool(runs["--tta"].uns["mclstexp"]["tta"]) is True
    assert bool(runs["--no-tta"].uns["mclstexp"]["tta"]) is False
    assert bool(runs[None].uns["mclstexp"]["tta"]) is False  # the quick bundle's default
    np.testing.assert_array_equal(runs[None].X, runs["--no-tta"].X)
    assert not np.allclose(runs["--tta"].obsm["embedding"], runs["--no-tta"].obsm["embedding"])

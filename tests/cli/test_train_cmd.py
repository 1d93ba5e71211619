"""``mclstexp train`` end to end on a tiny synthetic sample, and its refusals."""

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


def test_train_quick_writes_bundle(sample_file, tmp_path, capsys):
    from napari_mclstexp.bundle import load_bundle

    out = tmp_path / "m.mclst"
    code = main(
        [
            "-q",
            "train",
            str(sample_file),
            "--out",
            str(out),
            "--preset",
            "quick",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--seed",
            "3",
            "--batch-size",
            "64",
            "--genes",
            "hvg:12",
        ]
    )
    assert code == 0
    bundle = load_bundle(out)
    assert len(bundle.genes) == 12
    cfg = bundle.config if isinstance(bundle.config, dict) else bundle.config.to_dict()
    assert (cfg["preset"], cfg["epochs"], cfg["seed"], cfg["batch_size"]) == ("quick", 1, 3, 64)
    assert (tmp_path / "m.mclst.ckpt").is_file()  # checkpoint beside the bundle by default
    # the neighbour weight was chosen on held-out predictions of the training section (its halves)
    from napari_mclstexp.predict.smoothing import ALPHAS

    assert bundle.metadata["smoothing"]["alpha"] in ALPHAS and len(bundle.metadata["smoothing"]["scores"]) == len(
        ALPHAS
    )
    # resuming a finished run trains nothing more and gives the same weights
    out2 = tmp_path / "m2.mclst"
    assert (
        main(
            [
                "-q",
                "train",
                str(sample_file),
                "--out",
                str(out2),
                "--preset",
                "quick",
                "--epochs",
                "1",
                "--device",
                "cpu",
                "--seed",
                "3",
                "--batch-size",
                "64",
                "--genes",
                "hvg:12",
                "--checkpoint",
                str(tmp_path / "m.mclst.ckpt"),
                "--resume",
            ]
        )
        == 0
    )
    again = load_bundle(out2)
    for key, value in bundle.state_dict.items():
        assert (again.state_dict[key] == value).all(), key


def test_train_refuses_to_overwrite_input(sample_file, capsys):
    before = sample_file.read_bytes()
    code = main(["train", str(sample_file), "--out", str(sample_file), "--preset", "quick", "--device", "cpu"])
    assert code == 2
    err = capsys.readouterr().err
    assert "overwrite an input" in err and err.count("\n") == 1
    assert sample_file.read_bytes() == before


def test_train_bad_options(sample_file, tmp_path, capsys):
    assert main(["train", str(sample_file), "--out", str(tmp_path / "x.mclst"), "--epochs", "0"]) == 2
    assert "--epochs" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "absent.h5ad"), "--out", str(tmp_path / "x.mclst")]) == 2
    assert "absent.h5ad" in capsys.readouterr().err


def test_train_with_context_and_expression_only_bank_sections(sample_file, synthetic_samples, tmp_path):
    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.io.h5ad import write_h5ad

    extra = synthetic_samples[2].copy()
    for lib in extra.uns.get("spatial", {}).values():
        lib.get("metadata", {}).pop("source_image_path", None)
        lib.pop("images", None)
    write_h5ad(extra, tmp_path / "SYN3.h5ad")
    out = tmp_path / "ctx.mclst"
    args = ["-q", "train", str(sample_file), "--out", str(out), "--preset", "quick", "--epochs", "1"]
    args += ["--device", "cpu", "--batch-size", "64", "--genes", "hvg:12", "--context-scale", "3"]
    assert main([*args, "--bank-extra", str(tmp_path / "SYN3.h5ad")]) == 0
    bundle = load_bundle(out)
    assert bundle.config["context_scale"] == 3
    assert len(bundle.bank) == synthetic_samples[0].n_obs + extra.n_obs
    assert set(bundle.bank.sections) == {"SYN1", "SYN3"}
    # quick trains its tissue descriptors by default: for the image section's spots only
    assert bundle.config["descriptors"] and bundle.descriptors.shape[0] == synthetic_samples[0].n_obs
    assert bundle.metadata["descriptors"]["weight"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    import anndata as ad

    for flag, weight in (([], bundle.metadata["descriptors"]["weight"]), (["--no-descriptors"], 0.0)):
        pred = tmp_path / "p.h5ad"
        assert main(["-q", "predict", str(out), str(sample_file), "--out", str(pred), "--device", "cpu", *flag]) == 0
        assert ad.read_h5ad(pred).uns["mclstexp"]["descriptor_weight"] == weight


def test_train_and_predict_without_descriptors(sample_file, tmp_path):
    import anndata as ad

    from napari_mclstexp.bundle import load_bundle

    out = tmp_path / "plain.mclst"
    args = ["-q", "train", str(sample_file), "--out", str(out), "--preset", "quick", "--epochs", "1"]
    assert main([*args, "--device", "cpu", "--genes", "hvg:12", "--no-descriptors"]) == 0
    bundle = load_bundle(out)
    assert not bundle.config["descriptors"] and bundle.descriptors is None and "descriptors" not in bundle.metadata
    pred = tmp_path / "p.h5ad"
    assert main(["-q", "predict", str(out), str(sample_file), "--out", str(pred), "--device", "cpu"]) == 0
    assert ad.read_h5ad(pred).uns["mclstexp"]["descriptor_weight"] == 0.0

"""CLI: ``train --encoder timm:... --weights FILE --freeze``/``--head ridge``, ``predict --encoder-weights``."""

from __future__ import annotations

import pytest
import torch

from napari_mclstexp.cli import main

TINY = "timm:vit_tiny_patch16_224"


@pytest.fixture
def files(synthetic_samples, tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from napari_mclstexp.io.h5ad import write_h5ad
    from napari_mclstexp.model.encoders import make_image_encoder

    monkeypatch.setenv("MCLSTEXP_CACHE", str(tmp_path / "cache"))
    paths = []
    for a in synthetic_samples:
        paths.append(tmp_path / f"{a.obs['section'].iloc[0]}.h5ad")
        write_h5ad(a, paths[-1])
    weights = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        enc, _ = make_image_encoder(TINY, "none", input_px=64)
        weights.append(tmp_path / f"vit{seed}.safetensors")
        save_file({k: v.contiguous() for k, v in enc.model.state_dict().items()}, str(weights[-1]))
    return paths, weights


def test_frozen_timm_training_and_prediction_by_cli(files, tmp_path, capsys):
    from napari_mclstexp.bundle import load_bundle

    (s1, s2, s3), (w1, w2) = files
    out = tmp_path / "m.mclst"
    common = ["--preset", "quick", "--epochs", "1", "--device", "cpu", "--encoder", TINY]
    assert main(["-q", "train", str(s1), str(s2), "--out", str(out), "--weights", str(w1), "--freeze", *common]) == 0
    bundle = load_bundle(out)
    assert bundle.config["freeze"] is True and bundle.metadata["encoder_weights"]["embedded"] is False
    pred = tmp_path / "p.h5ad"
    assert main(["-q", "predict", str(out), str(s3), "--out", str(pred), "--device", "cpu"]) == 0
    assert pred.is_file()
    code = main(
        [
            "-q",
            "predict",
            str(out),
            str(s3),
            "--out",
            str(tmp_path / "q.h5ad"),
            "--device",
            "cpu",
            "--encoder-weights",
            str(w2),
        ]
    )
    assert code == 2 and "different file" in capsys.readouterr().err
    ridge = tmp_path / "r.mclst"
    assert (
        main(["-q", "train", str(s1), str(s2), "--out", str(ridge), "--weights", str(w1), "--head", "ridge", *common])
        == 0
    )
    assert load_bundle(ridge).config["head"] == "ridge"
    assert main(["-q", "predict", str(ridge), str(s3), "--out", str(tmp_path / "r.h5ad"), "--device", "cpu"]) == 0


def test_foundation_model_offline_is_one_clear_error(files, tmp_path, capsys, monkeypatch):
    import huggingface_hub.constants as hc

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf"))
    (s1, _, _), _ = files
    code = main(
        ["train", str(s1), "--out", str(tmp_path / "u.mclst"), "--encoder", "uni", "--device", "cpu", "--epochs", "1"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "MahmoodLab/UNI" in err and "--weights PATH" in err
    assert len(err.strip().splitlines()) == 1

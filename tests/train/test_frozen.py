"""Frozen-feature training with a tiny timm ViT: cache reuse, bundles referencing weights by hash, predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_mclstexp.bundle import load_bundle, make_bundle, save_bundle
from napari_mclstexp.data.features import FeatureCache
from napari_mclstexp.errors import BundleError
from napari_mclstexp.model.presets import get_preset
from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.progress import run
from napari_mclstexp.train.trainer import train

TINY = "timm:vit_tiny_patch16_224"


def _weights(path, seed, fmt):
    from napari_mclstexp.model.encoders import make_image_encoder

    torch.manual_seed(seed)
    enc, _ = make_image_encoder(TINY, "none", input_px=32)
    state = {k: v.contiguous() for k, v in enc.model.state_dict().items()}
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save({f"model.{k}": v for k, v in state.items()}, path)
    return str(path)


def _cfg(weights, **kw):
    opts = dict(
        encoder=TINY, weights=weights, input_px=32, patch_px=64, embed_dim=16, freeze=True, epochs=2, batch_size=32, k=8
    )
    return get_preset("quick").replace(**{**opts, **kw})


def _train(samples, cfg, cache):
    events = []
    result = run(train(samples, cfg, device="cpu", feature_cache=cache), events.append)
    return result, events


@pytest.fixture(scope="module")
def trained(synthetic_samples, tmp_path_factory):
    root = tmp_path_factory.mktemp("frozen")
    weights = _weights(root / "vit.safetensors", 1, "safetensors")
    cache = FeatureCache(root / "features")
    result, events = _train(synthetic_samples[:2], _cfg(weights), cache)
    return root, weights, cache, result, events


def test_frozen_training_computes_features_once_and_reuses_them(trained, synthetic_samples):
    root, weights, cache, result, events = trained
    assert any(e.stage == "features" for e in events)
    assert cache.misses == 2 and cache.hits == 0
    assert not any(p.requires_grad for p in result.model.image_encoder.parameters())
    assert len(result.history) == 2 and np.isfinite(result.history[-1]["loss"])
    again = FeatureCache(cache.root)
    _, events2 = _train(synthetic_samples[:2], _cfg(weights), again)
    assert again.hits == 2 and again.misses == 0
    assert not any(e.stage in ("patches",) for e in events2)
    # other weights (same architecture): new entries, features recomputed
    other = _weights(root / "other.bin", 2, "bin")
    third = FeatureCache(cache.root)
    _train(synthetic_samples[:2], _cfg(other), third)
    assert third.misses == 2 and third.hits == 0


def test_frozen_encoder_matches_its_weights_file(trained):
    from safetensors.torch import load_file

    _, weights, _, result, _ = trained
    state = load_file(weights)
    for key, value in state.items():
        torch.testing.assert_close(result.model.image_encoder.model.state_dict()[key], value)


def test_bundle_references_weights_and_predicts_identically_after_reload(trained, synthetic_samples, tmp_path):
    from napari_mclstexp.predict.slide import predict_whole_slide
    from napari_mclstexp.predict.spots import predict_at_spots
    from napari_mclstexp.sample import image_path

    root, weights, _, result, _ = trained
    bundle = make_bundle(result, synthetic_samples[:2], "cpu")
    info = bundle.metadata["encoder_weights"]
    assert info["embedded"] is False and len(info["sha256"]) == 64
    assert not any(k.startswith("image_encoder.") for k in bundle.state_dict)
    assert bundle.metadata["preprocessing"]["mean"] == pytest.approx([0.5, 0.5, 0.5])
    path = save_bundle(bundle, tmp_path / "m.mclst")
    loaded = load_bundle(path)
    test = synthetic_samples[2]
    a = run(predict_at_spots(bundle, test, PredictOptions(device="cpu")))
    b = run(predict_at_spots(loaded, test, PredictOptions(device="cpu")))
    np.testing.assert_allclose(a.X, b.X, rtol=1e-5, atol=1e-6)
    assert a.X.shape == (test.n_obs, len(bundle.genes)) and np.isfinite(a.X).all()
    slide = image_path(test)
    sa = run(predict_whole_slide(bundle, slide, PredictOptions(device="cpu"), step_px=128, detect_tissue=False))
    sb = run(predict_whole_slide(loaded, slide, PredictOptions(device="cpu"), step_px=128, detect_tissue=False))
    assert sa.n_obs > 4
    np.testing.assert_allclose(sa.X, sb.X, rtol=1e-5, atol=1e-6)


def test_loading_with_a_different_weights_file_is_refused(trained, synthetic_samples, tmp_path):
    root, _, _, result, _ = trained
    bundle = make_bundle(result, synthetic_samples[:2], "cpu")
    loaded = load_bundle(save_bundle(bundle, tmp_path / "m.mclst"))
    loaded.encoder_weights = _weights(tmp_path / "other.safetensors", 7, "safetensors")
    with pytest.raises(BundleError, match="different file"):
        loaded.build_model("cpu")
    loaded.encoder_weights = str(tmp_path / "gone.safetensors")
    with pytest.raises(BundleError, match="not there"):
        loaded.build_model("cpu")


def test_embed_option_copies_the_encoder(trained, synthetic_samples, tmp_path):
    _, weights, cache, _, _ = trained
    result, _ = _train(synthetic_samples[:2], _cfg(weights, embed_encoder=True, epochs=1), cache)
    bundle = make_bundle(result, synthetic_samples[:2], "cpu")
    assert bundle.metadata["encoder_weights"]["embedded"] is True
    assert any(k.startswith("image_encoder.") for k in bundle.state_dict)
    loaded = load_bundle(save_bundle(bundle, tmp_path / "e.mclst"))
    loaded.metadata["encoder_weights"]["file"] = str(tmp_path / "nowhere")  # not needed
    assert loaded.build_model("cpu") is not None


def test_partial_fine_tuning_unfreezes_the_last_blocks(synthetic_samples, tmp_path):
    from napari_mclstexp.model.frozen import freeze_encoder
    from napari_mclstexp.model.mclstexp import build_model

    model = build_model(_cfg("none"), 24, (40, 40))
    freeze_encoder(model, 2)
    trainable = {
        ".".join(n.split(".")[1:3])
        for n, p in model.image_encoder.named_parameters()
        if p.requires_grad and n.startswith("model.blocks")
    }
    assert trainable == {"blocks.10", "blocks.11"}
    assert model.image_encoder.model.norm.weight.requires_grad
    assert not model.image_encoder.model.patch_embed.proj.weight.requires_grad

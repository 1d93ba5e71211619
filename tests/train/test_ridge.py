"""``--head ridge``: the HEST recipe on frozen features, collapsed to one linear layer, as a bundle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_mclstexp.bundle import load_bundle, make_bundle, save_bundle
from napari_mclstexp.data.features import FeatureCache
from napari_mclstexp.model.presets import get_preset
from napari_mclstexp.model.ridge import fit_ridge, hest_alpha
from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.progress import run
from napari_mclstexp.train.trainer import train


def test_collapsed_pipeline_equals_sklearn_pipeline():
    from sklearn.decomposition import PCA
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 40)) * rng.uniform(0.5, 3, 40)
    y = x[:, :5] @ rng.normal(size=(5, 6)) + 0.1 * rng.normal(size=(300, 6))
    w, b = fit_ridge(x, y, n_components=20, alpha=0.5)
    pipe = make_pipeline(StandardScaler(), PCA(20, random_state=0), Ridge(alpha=0.5)).fit(x, y)
    np.testing.assert_allclose(x @ w.T + b, pipe.predict(x), rtol=1e-4, atol=1e-4)
    assert hest_alpha(256, 100) == pytest.approx(100 / 25600)


def test_ridge_bundle_predicts_at_spots_and_over_a_slide(synthetic_samples, tmp_path):
    from napari_mclstexp.predict.slide import predict_whole_slide
    from napari_mclstexp.predict.spots import predict_at_spots
    from napari_mclstexp.sample import image_path

    cfg = get_preset("quick").replace(
        encoder="timm:vit_tiny_patch16_224", weights="none", input_px=32, patch_px=64, head="ridge"
    )
    cache = FeatureCache(tmp_path / "f")
    events = []
    result = run(train(synthetic_samples[:2], cfg, device="cpu", feature_cache=cache), events.append)
    assert any(e.stage == "fit" for e in events) and cache.misses == 2
    assert result.config.head == "ridge" and result.config.embed_dim == len(result.genes)
    assert result.history[0]["r2"] > 0.0  # in-sample fit explains some variance
    bundle = make_bundle(result, synthetic_samples[:2], "cpu")
    assert len(bundle.bank) == 0 and bundle.metadata["encoder_weights"]["embedded"] is True
    loaded = load_bundle(save_bundle(bundle, tmp_path / "r.mclst"))
    test = synthetic_samples[2]
    a = run(predict_at_spots(bundle, test, PredictOptions(device="cpu")))
    b = run(predict_at_spots(loaded, test, PredictOptions(device="cpu")))
    np.testing.assert_allclose(a.X, b.X, rtol=1e-5, atol=1e-5)
    assert np.isnan(a.obs["uncertainty"]).all() and a.X.std(0).max() > 0
    # the same numbers as features @ W + b (of the patches mapped to the model's stain, as predictions map them):
    # ridge predictions through the shared prediction path
    from napari_mclstexp.predict.stain_choice import stain_normaliser
    from napari_mclstexp.train.frozen import iter_features_of

    stain = stain_normaliser(bundle, "auto")  # the rule of a model trained as scanned (SYN3 left or moved)
    feats = run(iter_features_of(result.model, [test], torch.device("cpu"), cache=cache, stain=stain))[0]
    w, bias = result.model.linear.weight.detach().numpy(), result.model.linear.bias.detach().numpy()
    np.testing.assert_allclose(a.X, feats @ w.T + bias, rtol=1e-4, atol=1e-4)
    s = run(
        predict_whole_slide(loaded, image_path(test), PredictOptions(device="cpu"), step_px=128, detect_tissue=False)
    )
    assert s.n_obs > 4 and s.X.shape[1] == len(bundle.genes) and np.isfinite(s.X).all()

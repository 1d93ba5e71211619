"""The tissue-descriptor predictor: it learns, its weight is chosen held out, bundles keep it, spots and
whole slides blend it alike, and bundles without it predict as before."""

import numpy as np
import pytest

from napari_mclstexp.bundle import load_bundle, save_bundle
from napari_mclstexp.data.descriptors import N_DESCRIPTORS, VERSION, iter_sample_descriptors
from napari_mclstexp.predict.descriptor_model import (
    WEIGHTS,
    blend,
    bundle_descriptor_model,
    choose_weight,
    descriptor_version,
    descriptor_weight,
    fit_descriptor_model,
)
from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.predict.slide import predict_whole_slide
from napari_mclstexp.predict.spots import patch_px_for, predict_at_spots
from napari_mclstexp.progress import run
from napari_mclstexp.sample import microns_per_pixel
from napari_mclstexp.workflows.reliability import iter_finish_bundle


def _mean_r(a, b):
    a, b = a - a.mean(0), b - b.mean(0)
    return float(np.mean((a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))))


def test_trees_learn_expression_from_descriptors():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 12)).astype(np.float32)
    y = np.c_[np.tanh(x[:, :1]) * 2, (x[:, 1:2] > 0) * 1.5, x[:, 2:3] * x[:, 3:4]] @ rng.normal(size=(3, 20))
    y = (y + 0.3 * rng.normal(size=y.shape)).astype(np.float32)
    model = fit_descriptor_model(x[:220], y[:220])
    assert _mean_r(model.predict(x[220:]), y[220:]) > 0.6
    by_sklearn = np.asarray(model.trees.predict(x[220:])) @ model.components + model.mean
    np.testing.assert_allclose(model.predict(x[220:]), by_sklearn, rtol=1e-6, atol=1e-6)  # the fast sum is the same
    shuffled = fit_descriptor_model(x[:220], y[rng.permutation(220)])  # negative control: nothing to learn
    assert _mean_r(shuffled.predict(x[220:]), y[220:]) < 0.3


def test_the_weight_goes_to_the_better_predictor():
    rng = np.random.default_rng(1)
    xy = np.stack(np.meshgrid(np.arange(10), np.arange(12)), -1).reshape(-1, 2).astype(float)
    sections = np.repeat(["a", "b"], 60)
    truth = rng.normal(size=(120, 15))
    good, bad = truth + 0.3 * rng.normal(size=truth.shape), rng.normal(size=truth.shape)
    info, smoothing = choose_weight(bad, good, truth, xy, sections)
    assert info["weight"] == 1.0 and set(info["scores"]) == {str(w) for w in WEIGHTS}
    assert "alpha" in smoothing
    assert choose_weight(good, bad, truth, xy, sections)[0]["weight"] == 0.0
    np.testing.assert_allclose(blend(good, bad, 0.25), 0.75 * good + 0.25 * bad, atol=1e-6)


@pytest.fixture
def finished(make_tiny_bundle, synthetic_samples):
    bundle = make_tiny_bundle()
    assert bundle.config["descriptors"] and bundle.descriptors is None
    run(iter_finish_bundle(bundle, synthetic_samples[:2], device="cpu"))
    return bundle


def test_finished_bundle_stores_descriptors_and_reloads_the_same_trees(finished, synthetic_samples, tmp_path):
    n_image = sum(a.n_obs for a in synthetic_samples[:2])
    assert finished.descriptors.shape == (n_image, N_DESCRIPTORS)
    info = finished.metadata["descriptors"]
    assert info["weight"] in WEIGHTS and len(info["scores"]) == len(WEIGHTS)
    assert "alpha" in finished.metadata["smoothing"] and "r" in finished.metadata["reliability"]
    loaded = load_bundle(save_bundle(finished, tmp_path / "d.mclst"))
    np.testing.assert_array_equal(loaded.descriptors, finished.descriptors)
    assert loaded.metadata["descriptors"]["weight"] == info["weight"]
    probe = finished.descriptors[:7]
    np.testing.assert_allclose(
        bundle_descriptor_model(loaded).predict(probe), bundle_descriptor_model(finished).predict(probe), rtol=1e-6
    )


def test_spots_blend_the_descriptor_predictions_at_the_bundle_weight(finished, synthetic_sample):
    finished.metadata["descriptors"]["weight"] = 0.5
    both = run(predict_at_spots(finished, synthetic_sample, PredictOptions(device="cpu", smooth=False)))
    retrieval = run(
        predict_at_spots(finished, synthetic_sample, PredictOptions(device="cpu", smooth=False, descriptors=False))
    )
    crop = both.uns["mclstexp"]["patch_px"]
    d = run(iter_sample_descriptors(synthetic_sample, crop, finished.config["input_px"]))
    expected = blend(retrieval.X, bundle_descriptor_model(finished).predict(d), 0.5)
    np.testing.assert_allclose(both.X, expected, rtol=1e-5, atol=1e-6)
    assert both.uns["mclstexp"]["descriptor_weight"] == 0.5
    assert retrieval.uns["mclstexp"]["descriptor_weight"] == 0.0
    assert np.abs(both.X - retrieval.X).max() > 1e-4


@pytest.fixture(scope="module")
def slide(he_slide_600):
    return he_slide_600


def _as_version_1(bundle, bank_samples):
    """The bundle as made before descriptor versions: version-1 bank descriptors, no version key."""
    bundle.metadata["descriptors"].pop("version")
    parts = []
    for a in bank_samples:
        crop = patch_px_for(bundle, microns_per_pixel(a))
        parts.append(run(iter_sample_descriptors(a, crop, bundle.config["input_px"], version=1)))
    bundle.descriptors = np.concatenate(parts)
    bundle.__dict__.pop("_descriptor_model", None)
    return bundle


@pytest.mark.parametrize("version", [VERSION, 1])
def test_whole_slide_tiles_blend_like_spots(finished, slide, synthetic_sample, synthetic_samples, version):
    assert descriptor_version(finished) == VERSION
    if version == 1:  # older bundles keep their definition: spots and tiles both described by version 1
        v2 = bundle_descriptor_model(finished).predict(finished.descriptors[:5])
        _as_version_1(finished, synthetic_samples[:2])
        assert descriptor_version(finished) == 1
        assert np.abs(bundle_descriptor_model(finished).predict(finished.descriptors[:5]) - v2).max() > 1e-4
    finished.metadata["descriptors"]["weight"] = 0.5
    whole = run(
        predict_whole_slide(
            finished, slide, PredictOptions(device="cpu", smooth=False), detect_tissue=False, step_px=150
        )
    )
    assert whole.n_obs == 16 and whole.uns["mclstexp"]["descriptor_weight"] == 0.5
    spots = synthetic_sample[: whole.n_obs].copy()
    spots.obsm["spatial"] = whole.obsm["spatial"].copy()
    lib = next(iter(spots.uns["spatial"]))
    spots.uns["spatial"][lib]["metadata"]["source_image_path"] = str(slide)
    spots.uns["spatial"][lib]["metadata"].pop("microns_per_pixel", None)
    at_spots = run(predict_at_spots(finished, spots, PredictOptions(device="cpu", smooth=False)))
    # the slide's blocks are read once and resampled once (descriptors: the widened block; version 1: 3× wider
    # reads): resampling differs at the last digits
    np.testing.assert_allclose(at_spots.obsm["embedding"], whole.obsm["embedding"], atol=1e-4)
    # version 2 describes a tile from its block's one resampled read, spots from their own read: a tile's
    # descriptor cells differ at block borders (measured: 38 of 384 values, at most 1.3e-3 apart; as at bins)
    gap = np.abs(np.asarray(at_spots.X) - np.asarray(whole.X))
    assert gap.max() < 5e-3 and (gap < 1e-4).mean() > 0.85
    off = run(
        predict_whole_slide(
            finished, slide, PredictOptions(device="cpu", descriptors=False), detect_tissue=False, step_px=150
        )
    )
    assert np.abs(off.X - whole.X).max() > 1e-4


def test_bundles_without_descriptors_predict_by_retrieval_alone(tiny_bundle, synthetic_sample):
    assert tiny_bundle.descriptors is None and descriptor_weight(tiny_bundle) == 0.0
    pred = run(predict_at_spots(tiny_bundle, synthetic_sample, PredictOptions(device="cpu")))
    assert pred.uns["mclstexp"]["descriptor_weight"] == 0.0

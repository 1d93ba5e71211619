"""Novelty: typicality against the training reference, calibrated held out, on every kind of prediction."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageFilter

from napari_mclstexp.predict import novelty as nv
from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.progress import run

CPU = PredictOptions(device="cpu")

TRAIN = {"patch_px": 64, "input_px": 32, "batch_size": 64, "embed_dim": 16, "k": 10, "epochs": 3, "seed": 0}


def test_typicality_is_the_mean_of_the_top_k_cosines(rng):
    q, keys = rng.normal(size=(7, 5)), rng.normal(size=(40, 5))
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    sims = unit(q) @ unit(keys).T
    expected = np.sort(sims, axis=1)[:, -4:].mean(1)
    np.testing.assert_allclose(nv.typicality(q, keys, 4, max_elements=80), expected, rtol=1e-5)
    centre = keys.mean(0)
    centred = np.sort(unit(q - centre) @ unit(keys - centre).T, axis=1)[:, -4:].mean(1)
    np.testing.assert_allclose(nv.typicality(q, keys, 4, centre=centre), centred, rtol=1e-5)


def test_novelty_reads_as_a_held_out_percentile(rng):
    held = rng.normal(size=5000)
    cal = nv.calibrate(held, k=10, space="test", groups="sections")
    assert len(cal["quantiles"]) == nv.N_QUANTILES and cal["threshold"] == pytest.approx(np.quantile(held, 0.01))
    fresh = rng.normal(size=4000)  # like the held-out spots: uniform novelty, ~1 % novel
    nov = nv.novelty_from_typicality(fresh, cal)
    assert abs(nov.mean() - 0.5) < 0.03 and abs((nov > cal["level"]).mean() - 0.01) < 0.006
    assert nv.novelty_from_typicality(np.array([-99.0, 99.0]), cal).tolist() == [1.0, 0.0]
    # a less typical spot is more novel
    assert np.all(np.diff(nv.novelty_from_typicality(np.linspace(-3, 3, 50), cal)) <= 0)


def test_descriptor_novelty_is_calibrated_jointly_with_the_image(rng):
    # two sections of like spots: a fresh like spot reads as a held-out percentile of the larger of its two
    # percentiles (about 1 % novel), a spot far in descriptor space is novel whatever its image
    emb, desc = rng.normal(size=(600, 8)), rng.normal(size=(600, 5)) * [1, 2, 3, 4, 5]
    group = np.repeat([0, 1], 300)
    _, cal = nv.calibrate_reference(emb, group, direct=False, groups="sections", descriptors=desc)
    d = cal["descriptors"]
    assert d["n_spots"] == 600 and len(d["combined"]) == nv.N_QUANTILES and d["combined"][-1] <= 1.0
    mean, std, keep = nv.descriptor_space(desc)
    ref = nv.zscore(desc[keep], mean, std)
    fresh = rng.normal(size=(3000, 5)) * [1, 2, 3, 4, 5]
    image = rng.uniform(size=3000)
    from_desc = nv.novelty_from_typicality(nv.distance_typicality(nv.zscore(fresh, mean, std), ref), d)
    joint = nv.combined_novelty(image, from_desc, d)
    assert 0.0 <= joint.min() and joint.max() <= 1.0 and (joint > 0.99).mean() < 0.03
    assert np.all(joint >= nv.combined_novelty(image, np.zeros_like(image), d) - 1e-6)  # monotone in each part
    far = nv.novelty_from_typicality(nv.distance_typicality(nv.zscore(fresh[:50] + 40, mean, std), ref), d)
    assert (nv.combined_novelty(np.zeros(50), far, d) > 0.99).all()


def test_held_out_typicality_never_compares_a_group_with_itself():
    query = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    t = nv.held_out_typicality(query, np.array([0, 0, 1, 1]), query, np.array([0, 0, 1, 1]), 1)
    np.testing.assert_allclose(t, 0.0, atol=1e-6)  # each group is orthogonal to the other


@pytest.fixture(scope="module")
def trained(synthetic_samples, tmp_path_factory):
    """A quick model trained on SYN1 + SYN2, finished as ``train`` finishes bundles, saved and loaded."""
    from napari_mclstexp.bundle import load_bundle, make_bundle, save_bundle
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.train.trainer import train
    from napari_mclstexp.workflows.reliability import iter_finish_bundle

    result = run(train(synthetic_samples[:2], get_preset("quick").replace(**TRAIN), device="cpu"))
    bundle = make_bundle(result, synthetic_samples[:2], "cpu", about={"tissue": "synthetic", "genes": ["MARK0_0"]})
    run(iter_finish_bundle(bundle, synthetic_samples[:2], device="cpu"))
    return load_bundle(save_bundle(bundle, tmp_path_factory.mktemp("nov") / "m.mclst"))


def _regions(sample) -> np.ndarray:
    counts = sample.obs["annotation"].astype(str).str[-1].astype(int).value_counts()
    return counts.reindex(range(4), fill_value=0).to_numpy() / sample.n_obs


@pytest.fixture(scope="module")
def like(synthetic_samples, tmp_path_factory):
    """A new slide (another patient) whose tissue is like the training slides': its regions in about the
    same proportions.  SYN3 is not: 95 % of its spots are region 1 (9 % of the training spots), whose nuclei
    the generator draws denser the larger the region (its tissue descriptors are far from any training spot's)."""
    from napari_mclstexp.synthetic import make_synthetic_sample

    sample = make_synthetic_sample(tmp_path_factory.mktemp("like"), seed=15, section="SYN15", patient="P2")
    train = sum(_regions(s) * s.n_obs for s in synthetic_samples[:2]) / sum(s.n_obs for s in synthetic_samples[:2])
    assert 0.5 * np.abs(_regions(sample) - train).sum() < 0.2  # total variation between the region mixes
    return sample


def _changed(sample, folder, kind: str, strength: float):
    """``sample`` on a copy of its image with its stain rotated, blurred, or its texture replaced by noise."""
    from napari_mclstexp.sample import image_path

    img = np.asarray(Image.open(image_path(sample)).convert("RGB")).astype(np.float64)
    if kind == "stain":
        img = img * (1 - strength) + strength * img[..., [2, 0, 1]]
    elif kind == "blur":
        img = np.asarray(Image.fromarray(img.astype(np.uint8)).filter(ImageFilter.GaussianBlur(6 * strength)), float)
    else:
        img = img * (1 - strength) + strength * np.random.default_rng(0).uniform(0, 255, img.shape)
    path = folder / f"{kind}_{strength}.png"
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
    out = sample.copy()
    lib = next(iter(out.uns["spatial"]))
    out.uns["spatial"][lib]["metadata"]["source_image_path"] = str(path)
    return out


@pytest.mark.slow
@pytest.mark.timeout(1800)  # trains the module's model, then 10 predictions
def test_like_slides_are_typical_and_changes_raise_novelty_monotonically(trained, like, tmp_path):
    from napari_mclstexp.predict.spots import predict_at_spots

    cal = trained.metadata["novelty"]
    assert cal["groups"] == "sections" and cal["n_spots"] == len(trained.bank)
    assert cal["descriptors"]["groups"] == "sections" and len(cal["descriptors"]["combined"]) == nv.N_QUANTILES
    assert trained.novelty_reference.shape == (len(trained.bank), 16)
    sample = like
    like = run(predict_at_spots(trained, sample, CPU))
    assert like.uns["mclstexp"]["novelty"]["scored_on"] == "image embeddings and tissue descriptors"
    assert like.obs["novelty"].between(0, 1).all()
    assert like.uns["mclstexp"]["novel_fraction"] <= 0.1 and like.obs["novelty"].mean() < 0.7
    assert like.uns["mclstexp"]["model_card"]["tissue"] == "synthetic"
    # the changed images as they are: --stain auto would move a changed stain back toward the training stains
    scanned = CPU.replace(stain="none")
    base = float(run(predict_at_spots(trained, sample, scanned)).obs["novelty"].mean())
    for kind in ("stain", "blur", "texture"):
        means = [base] + [
            float(run(predict_at_spots(trained, _changed(sample, tmp_path, kind, s), scanned)).obs["novelty"].mean())
            for s in (0.25, 0.5, 1.0)
        ]
        # rises with the change's strength until it saturates (every spot less typical than all held-out ones)
        assert all(b > a or a >= 0.99 for a, b in zip(means, means[1:], strict=False)), (kind, means)
        assert means[-1] > base + 0.1, (kind, means)


@pytest.mark.slow
def test_whole_slide_tiles_and_spots_agree(trained, like):
    from napari_mclstexp.predict.slide import predict_whole_slide
    from napari_mclstexp.predict.spots import predict_at_spots
    from napari_mclstexp.sample import image_path

    sample = like
    tiles = run(predict_whole_slide(trained, image_path(sample), CPU, detect_tissue=False, step_px=96))
    spots = sample[: tiles.n_obs].copy()
    spots.obsm["spatial"] = tiles.obsm["spatial"].copy()
    at_spots = run(predict_at_spots(trained, spots, CPU))
    # the same patches: embeddings equal to float error, which the steep held-out percentiles (typicality
    # differs in the 4th decimal between training spots) turn into at most a few hundredths of novelty
    np.testing.assert_allclose(at_spots.obsm["embedding"], tiles.obsm["embedding"], atol=1e-4)
    np.testing.assert_allclose(at_spots.obs["novelty"], tiles.obs["novelty"], atol=0.03)
    assert abs(tiles.uns["mclstexp"]["novel_fraction"] - at_spots.uns["mclstexp"]["novel_fraction"]) <= 1 / tiles.n_obs


@pytest.mark.slow
def test_info_text_and_json(trained, capsys, monkeypatch):
    import napari_mclstexp.cli as cli

    monkeypatch.setattr(cli, "COMMANDS", ("info",))
    assert cli.main(["info", str(trained.path)]) == 0
    text = capsys.readouterr().out
    assert "SYN1 (patient P1, " in text and "tissue: synthetic" in text and "asked for: MARK0_0" in text
    assert "novelty: calibrated on" in text and "bundle format 2" in text
    assert cli.main(["info", str(trained.path), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["sections"]["SYN2"] == {
        "patient": "P1",
        "n_spots": trained.metadata["sections"]["SYN2"]["n_spots"],
        "image": True,
    }
    assert card["novelty"]["level"] == nv.DEFAULT_LEVEL and card["reliability"]["n_genes"] == len(trained.genes)


def test_reference_stain_round_trips_opaque(tiny_bundle, tmp_path):
    from napari_mclstexp.bundle import load_bundle, save_bundle

    stain = {"vectors": [[0.65, 0.70, 0.29], [0.07, 0.99, 0.11]], "percentiles": {"99": [1.9, 1.0]}, "x": None}
    before = tiny_bundle.metadata.get("reference_stain")  # the session's bundle: leave it as found
    tiny_bundle.metadata["reference_stain"] = stain
    try:
        loaded = load_bundle(save_bundle(tiny_bundle, tmp_path / "s.mclst"))
    finally:
        tiny_bundle.metadata["reference_stain"] = before
        if before is None:
            del tiny_bundle.metadata["reference_stain"]
    assert loaded.metadata["reference_stain"] == stain and loaded.card["reference_stain"] is True


def test_ridge_reference_is_centred_head_outputs(rng):
    # two sections of outputs around a common offset: centred cosines see their difference
    a = 5 + rng.normal(size=(60, 8)) * 0.1 + np.r_[1.0, 0, 0, 0, 0, 0, 0, 0]
    b = 5 + rng.normal(size=(60, 8)) * 0.1 - np.r_[1.0, 0, 0, 0, 0, 0, 0, 0]
    ref, cal = nv.calibrate_reference(np.r_[a, b], np.r_[np.zeros(60), np.ones(60)], direct=True, groups="sections")
    assert ref.dtype == np.float32 and len(ref) == 120 and cal["space"].startswith("head outputs")
    assert cal["median"] < 0  # each section is held out against the other, which points the other way


def test_descriptors_off_scores_novelty_on_the_image_alone():
    """Switching the descriptors off is asked for speed: novelty must not read them behind the user's back."""
    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.predict.spots import predict_at_spots
    from napari_mclstexp.workflows.demo import load_demo_sample, sample_data_dir, split_demo_sample

    bundle = load_bundle(sample_data_dir() / "demo_quick.mclst")
    assert nv.wants_descriptors(bundle) and not nv.wants_descriptors(bundle, False)
    test = split_demo_sample(load_demo_sample())[-1][:60].copy()
    on = run(predict_at_spots(bundle, test, CPU))
    off = run(predict_at_spots(bundle, test, PredictOptions(device="cpu", descriptors=False)))
    assert on.uns["mclstexp"]["novelty"]["scored_on"] == "image embeddings and tissue descriptors"
    assert off.uns["mclstexp"]["novelty"]["scored_on"] == "image embeddings"
    assert np.isfinite(off.obs["novelty"]).all() and off.n_obs == on.n_obs

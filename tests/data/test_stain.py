"""Stain estimation (Macenko) and the fixed stain mapping, on sections rendered in optical density."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_mclstexp.data.slide_stain import StainNormaliser, reference_stain, slide_pixels, slide_stain
from napari_mclstexp.data.stain import (
    StainEstimate,
    StainEstimationError,
    StainMap,
    estimate_stain,
    tissue_od,
)
from napari_mclstexp.errors import InputError
from napari_mclstexp.synthetic.stain import (
    MACENKO_HE,
    render_stained,
    rotate_vectors,
    tissue_concentrations,
    write_stained_slide,
)

NOISE = 0.01


def _angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.degrees(np.arccos(np.clip((a * b).sum(1), -1, 1)))


@pytest.fixture(scope="module")
def section():
    """Concentrations of one synthetic section and its image under Macenko's reference vectors."""
    conc = tissue_concentrations((384, 384), seed=0)
    return conc, render_stained(conc, MACENKO_HE, NOISE, seed=0)


@pytest.mark.parametrize("seed", [1, 2])
def test_estimate_recovers_the_vectors_the_image_was_rendered_with(seed):
    conc = tissue_concentrations((320, 320), seed=seed)
    for vectors in (MACENKO_HE, rotate_vectors(MACENKO_HE, 6)):
        est = estimate_stain(tissue_od(render_stained(conc, vectors, NOISE, seed=seed)))
        assert (_angles(est.vectors, vectors) < 3.5).all()  # haematoxylin first, each within a few degrees
        assert est.vectors[0, 0] > est.vectors[1, 0]


@pytest.mark.parametrize(
    "kind, scale, degrees",
    [("concentrations", (1.4, 0.7), 0.0), ("hues", (1.0, 1.0), 8.0), ("both", (1.3, 0.8), -6.0)],
)
def test_restained_section_is_mapped_back_close_to_the_original(section, kind, scale, degrees):
    conc, original = section
    reference = estimate_stain(tissue_od(original))
    shifted = render_stained(conc * np.asarray(scale), rotate_vectors(MACENKO_HE, degrees), NOISE, seed=7)
    mapped = StainMap(estimate_stain(tissue_od(shifted)), reference)(shifted)
    # the same tissue rendered again with the original stain differs only by the camera noise
    floor = np.abs(render_stained(conc, MACENKO_HE, NOISE, seed=7).astype(float) - original).mean()
    before = np.abs(shifted.astype(float) - original).mean()
    after = np.abs(mapped.astype(float) - original).mean()
    assert before > floor + 1.5, kind  # the shift is visible
    assert after - floor < 0.4 * (before - floor), (kind, before, after, floor)


def test_a_map_to_its_own_estimate_changes_nothing(section):
    _, image = section
    est = estimate_stain(tissue_od(image))
    same = StainMap(est, est)
    assert same.identity
    np.testing.assert_array_equal(same(image), image)


def test_the_map_is_pixel_by_pixel_so_crops_and_wholes_agree(section):
    conc, original = section
    shifted = render_stained(conc * np.array([1.3, 0.8]), MACENKO_HE, NOISE, seed=3)
    m = StainMap(estimate_stain(tissue_od(shifted)), estimate_stain(tissue_od(original)))
    whole = m(shifted)
    assert whole.dtype == np.uint8 and whole.shape == shifted.shape
    np.testing.assert_array_equal(m(shifted[100:164, 40:104]), whole[100:164, 40:104])
    batch = np.stack([shifted[:64, :64], shifted[64:128, :64]])
    np.testing.assert_array_equal(m(batch), np.stack([whole[:64, :64], whole[64:128, :64]]))


def test_estimate_round_trips_as_json_and_rejects_malformed():
    est = StainEstimate(MACENKO_HE / np.linalg.norm(MACENKO_HE, axis=1, keepdims=True), np.array([1.9, 1.0]), 10)
    back = StainEstimate.from_dict(est.to_dict())
    np.testing.assert_allclose(back.vectors, est.vectors, atol=1e-6)
    np.testing.assert_allclose(back.max_concentrations, est.max_concentrations)
    assert back.swatches().shape == (2, 3) and back.swatches().dtype == np.uint8
    assert back.swatches()[0, 0] < back.swatches()[1, 0]  # haematoxylin absorbs more red than eosin
    with pytest.raises(InputError, match="max_concentrations"):
        StainEstimate.from_dict({"vectors": est.to_dict()["vectors"]})
    with pytest.raises(InputError, match="parallel"):
        StainEstimate.from_dict({"vectors": [[1, 1, 1], [2, 2, 2]], "max_concentrations": [1, 1]})


def test_too_little_tissue_is_a_clear_error():
    blank = np.full((64, 64, 3), 238, np.uint8)
    with pytest.raises(StainEstimationError, match="too little tissue"):
        estimate_stain(tissue_od(blank))


def test_a_slide_normalised_to_its_own_reference_barely_changes(tmp_path, section):
    conc, _ = section
    path = write_stained_slide(tmp_path / "own.tif", np.tile(conc, (2, 2, 1)), MACENKO_HE, noise_sd=NOISE)
    image = render_stained(np.tile(conc, (2, 2, 1)), MACENKO_HE, NOISE)
    # the reference from all the slide's tissue; the slide's own estimate from its sample of tiles
    normaliser = StainNormaliser(estimate_stain(tissue_od(image)), "test")
    mapped = normaliser.apply(path, image)
    assert not normaliser.map_for(path).identity
    assert np.abs(mapped.astype(float) - image).mean() < 1.0
    assert np.abs(mapped.astype(float) - image).max() <= 12
    record = normaliser.record(path, "auto")
    assert record["applied"] and record["slide"]["source"] == "own.tif"


def test_slide_sample_is_cached_and_reference_pools_slides(tmp_path, section):
    conc, _ = section
    a = write_stained_slide(tmp_path / "a.tif", conc, MACENKO_HE, noise_sd=NOISE)
    b = write_stained_slide(tmp_path / "b.tif", conc * np.array([1.4, 0.6]), MACENKO_HE, noise_sd=NOISE)
    first = slide_pixels(a)
    assert first.dtype == np.uint8 and len(first) > 10_000
    assert slide_pixels(a) is first  # once per slide
    ea, eb = slide_stain(a), slide_stain(b)
    pooled = reference_stain([a, b], ["A", "B"])
    assert pooled.info["sections"] == ["A", "B"]
    # pooled percentiles lie between the two slides'
    lo, hi = (
        np.minimum(ea.max_concentrations, eb.max_concentrations),
        np.maximum(ea.max_concentrations, eb.max_concentrations),
    )
    assert ((pooled.max_concentrations >= lo - 0.05) & (pooled.max_concentrations <= hi + 0.05)).all()


def test_a_slide_without_tissue_is_left_as_scanned_with_a_warning(tmp_path):
    from PIL import Image

    path = tmp_path / "glass.png"
    Image.fromarray(np.full((300, 300, 3), 240, np.uint8)).save(path)
    normaliser = StainNormaliser(StainEstimate(MACENKO_HE, np.array([1.9, 1.0])), "test")
    patches = np.full((2, 8, 8, 3), 200, np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = normaliser.apply(path, patches)
    np.testing.assert_array_equal(out, patches)
    assert any("not stain-normalised" in str(w.message) for w in caught)
    record = normaliser.record(path, "auto")
    assert not record["applied"] and "tissue" in record["reason"]


def _pale_eosin_section(seed: int) -> np.ndarray:
    """``(200, 200, 2)`` concentrations whose purest eosin is pale, as in stroma: 40 % eosin alone at 0.15–0.35,
    20 % nuclei (haematoxylin alone, 0.5–1.5), the rest both stains (H 0.2–1.5, E 0.2–0.8)."""
    rng = np.random.default_rng(seed)
    n = 200 * 200
    conc = np.stack([rng.uniform(0.2, 1.5, n), rng.uniform(0.2, 0.8, n)], axis=1)
    kind = rng.random(n)
    eosin, nuclei = kind < 0.4, kind > 0.8
    conc[eosin] = np.stack([np.zeros(eosin.sum()), rng.uniform(0.15, 0.35, eosin.sum())], axis=1)
    conc[nuclei] = np.stack([rng.uniform(0.5, 1.5, nuclei.sum()), np.zeros(nuclei.sum())], axis=1)
    return conc.reshape(200, 200, 2)


def test_a_slide_with_less_eosin_keeps_its_eosin_vector():
    """Pale pixels of eosin alone are the purest eosin: a slide stained with less eosin (× 0.55, haematoxylin
    × 1.6) keeps them above the floor, so it is estimated with the vectors of the same tissue as first stained (what
    mapping one to the other needs); the first floor (3 · BETA) lost them and turned eosin toward haematoxylin."""
    from napari_mclstexp.data.stain import LEGACY_FLOOR

    conc = _pale_eosin_section(3)
    images = [render_stained(conc * np.asarray(s), MACENKO_HE, NOISE, seed=4) for s in ((1.0, 1.0), (1.6, 0.55))]
    for floor, most, least in ((None, 4.0, None), (LEGACY_FLOOR, None, 10.0)):
        kw = {} if floor is None else {"floor": floor}
        first, weaker = (estimate_stain(tissue_od(im, **kw), **kw) for im in images)
        moved = _angles(weaker.vectors, first.vectors)
        if most is not None:
            assert (moved < most).all() and (_angles(first.vectors, MACENKO_HE) < 6.0).all(), moved
        else:
            assert moved[1] > least, moved


def test_grey_glass_below_the_old_floor_is_not_taken_for_stain(section):
    """A slide whose glass reads grey (RGB 215–225: summed OD 0.2–0.33, above the floor) estimates as without it."""
    conc, image = section
    glass = image.copy()
    blank = conc.sum(axis=-1) == 0
    grey = np.random.default_rng(5).integers(215, 226, size=(int(blank.sum()), 1))
    glass[blank] = np.repeat(grey, 3, axis=1).astype(np.uint8)
    clean, dull = estimate_stain(tissue_od(image)), estimate_stain(tissue_od(glass))
    assert (_angles(dull.vectors, clean.vectors) < 0.5).all()
    assert dull.pixels == clean.pixels


def test_estimates_carry_their_floor_and_old_ones_read_as_the_first_floor(tmp_path):
    """The floor round-trips; a reference stored before it was recorded reads as ``LEGACY_FLOOR``, and a slide is
    estimated with its reference's floor (old bundles map slides as before)."""
    from napari_mclstexp.data.stain import FLOOR, LEGACY_FLOOR

    conc = tissue_concentrations((256, 256), seed=8)
    path = write_stained_slide(tmp_path / "s.tif", conc, MACENKO_HE, noise_sd=NOISE)
    est = slide_stain(path)
    assert est.floor == FLOOR and StainEstimate.from_dict(est.to_dict()).floor == FLOOR
    old = {k: v for k, v in est.to_dict().items() if k != "floor"}
    assert StainEstimate.from_dict(old).floor == LEGACY_FLOOR
    with pytest.raises(InputError, match="floor"):
        StainEstimate.from_dict({**est.to_dict(), "floor": "pale"})
    mapping = StainNormaliser(StainEstimate.from_dict(old), "test").map_for(path)
    assert mapping.source.floor == LEGACY_FLOOR
    legacy = slide_stain(path, LEGACY_FLOOR)
    np.testing.assert_allclose(mapping.source.vectors, legacy.vectors)
    assert legacy.pixels < est.pixels

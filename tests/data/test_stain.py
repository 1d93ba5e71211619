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

"""The rule of ``--stain auto`` for models trained as scanned: a slide stained like a training section is left as
scanned, one stained apart is moved back toward the nearest training section's stain; the training stains
round-trip through their JSON form."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_mclstexp.data.slide_stain import slide_pixels
from napari_mclstexp.data.stain import estimate_stain, optical_density, tissue_od
from napari_mclstexp.data.stain_rule import (
    AS_SCANNED,
    NearestStainNormaliser,
    TrainingStains,
    stain_distance,
    toward,
    training_stains,
)
from napari_mclstexp.sample import image_path
from napari_mclstexp.synthetic.stain import MACENKO_HE, rotate_vectors, tissue_concentrations, write_stained_slide

#: Three training labs' stains, close to each other: (H, E concentration scale, degrees both vectors turn).
LABS = [((1.0, 1.0), 0.0), ((1.2, 0.85), 4.0), ((0.85, 1.15), -4.0)]


def _render(path, seed: int, scale, degrees: float):
    conc = tissue_concentrations((384, 384), seed=seed) * np.asarray(scale)
    vectors = rotate_vectors(MACENKO_HE, degrees) if degrees else MACENKO_HE
    return write_stained_slide(path, conc, vectors, noise_sd=0.01)


@pytest.fixture(scope="module")
def labs(synthetic_samples, tmp_path_factory):
    """Three training sections, each another tissue in its lab's stain, as samples pointing at their slides."""
    out = tmp_path_factory.mktemp("rule")
    samples = []
    for i, (scale, degrees) in enumerate(LABS):
        a = synthetic_samples[0].copy()
        lib = next(iter(a.uns["spatial"]))
        path = _render(out / f"lab{i}.tif", 10 + i, scale, degrees)
        a.uns["spatial"][lib]["metadata"]["source_image_path"] = str(path)
        a.obs["section"] = f"LAB{i}"
        samples.append(a)
    return samples, out


def _pixels(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def test_training_stains_are_measured_per_section_and_round_trip(labs):
    samples, _ = labs
    stains = training_stains(samples)
    assert not stains.mapped and list(stains.sections) == ["LAB0", "LAB1", "LAB2"]
    assert 0.05 < stains.spread < 0.3  # the labs differ a little
    data = json.loads(json.dumps(stains.to_dict()))
    assert data["training"] == AS_SCANNED and data["sections"] == ["LAB0", "LAB1", "LAB2"]
    back = TrainingStains.from_dict(data)
    assert not back.mapped and back.spread == pytest.approx(stains.spread, abs=1e-6)
    for name, est in stains.sections.items():
        np.testing.assert_allclose(back.sections[name].vectors, est.vectors, atol=1e-6)
    legacy = {k: v for k, v in data.items() if k not in ("training", "section_stains", "spread")}
    assert TrainingStains.from_dict(legacy).mapped  # stored before: only by --stain-normalize
    assert training_stains(samples, mapped=True).to_dict()["training"] != AS_SCANNED


def test_distance_is_zero_to_its_own_stain_and_grows_toward_another(labs):
    samples, _ = labs
    stains = training_stains(samples)
    own, other = stains.sections["LAB0"], stains.sections["LAB1"]
    od = tissue_od(slide_pixels(image_path(samples[0])))
    steps = [stain_distance(od, own, toward(own, other, f)) for f in (0.0, 0.25, 0.5, 1.0)]
    assert steps[0] < 1e-9 and all(b > a for a, b in zip(steps, steps[1:], strict=False)), steps


def test_auto_leaves_a_training_stain_as_scanned_and_maps_a_shifted_one_back(labs):
    samples, out = labs
    stains = training_stains(samples)
    rule = NearestStainNormaliser(TrainingStains.from_dict(json.loads(json.dumps(stains.to_dict()))))
    scale, degrees = LABS[1]
    same = _render(out / "new_same.tif", 20, scale, degrees)  # new tissue, LAB1's stain
    shifted = _render(out / "new_shifted.tif", 20, (scale[0] * 1.6, scale[1] * 0.6), degrees + 10.0)
    image = _pixels(same)
    assert rule.map_for(same) is None
    np.testing.assert_array_equal(rule.apply(same, image), image)  # bit for bit as scanned
    rec = rule.record(same, "auto")
    assert not rec["applied"] and rec["reason"].startswith("left as scanned: within the training stains")
    assert rec["nearest"] == "LAB1" and rec["distance"] <= rec["spread"] and rec["fraction"] == 0.0
    assert rec["slide"]["source"] == "new_same.tif"

    moved = rule.apply(shifted, _pixels(shifted))
    tissue = optical_density(image).sum(axis=1) >= 0.45
    before = np.abs(_pixels(shifted).astype(float) - image).reshape(-1, 3)[tissue].mean()
    after = np.abs(moved.astype(float) - image).reshape(-1, 3)[tissue].mean()
    rec = rule.record(shifted, "auto")
    assert rec["applied"] and rec["nearest"] == "LAB1" and 0.3 < rec["fraction"] < 1.0
    # mapped back toward how LAB1 stains it, by at least half the share of the way the rule says it went
    assert after < (1.0 - 0.5 * rec["fraction"]) * before, (before, after, rec["fraction"])
    assert rec["distance"] > rec["spread"] and rec["rule"].startswith("left as scanned within the training spread")
    # moved just to the edge of the training spread around LAB1's stain, not all the way
    od = tissue_od(moved)
    now = stain_distance(od, estimate_stain(od), stains.sections["LAB1"])
    assert 0.6 * stains.spread < now < 1.3 * stains.spread, (now, stains.spread)


def test_one_training_section_has_the_spread_of_its_halves(labs):
    samples, _ = labs
    one = training_stains(samples[:1])
    assert list(one.sections) == ["LAB0"] and 0.0 < one.spread < training_stains(samples).spread

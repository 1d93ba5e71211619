"""Prediction with stain normalisation: the model's reference in the bundle, ``--stain auto|none|FILE``, spots and
whole-slide tiles of one slide mapped alike, a model trained as scanned leaving its own stains alone, old bundles
unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_mclstexp.bundle import load_bundle, save_bundle
from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.predict.slide import predict_whole_slide
from napari_mclstexp.predict.spots import predict_at_spots
from napari_mclstexp.progress import run
from napari_mclstexp.synthetic.stain import MACENKO_HE, rotate_vectors, tissue_concentrations, write_stained_slide

CPU = PredictOptions(device="cpu")


@pytest.fixture(scope="module")
def restained_slide(tmp_path_factory):
    """384 × 512 px section rendered in optical density with another lab's stain (stronger H, turned hues)."""
    conc = tissue_concentrations((384, 512), seed=4) * np.array([1.3, 0.8])
    path = tmp_path_factory.mktemp("restained") / "lab2.tif"
    return write_stained_slide(path, conc, rotate_vectors(MACENKO_HE, 7), noise_sd=0.01)


@pytest.fixture(scope="module")
def stain_bundle(make_tiny_bundle):
    """The tiny model trained with stain normalisation (its bundle holds the training sections' reference)."""
    return make_tiny_bundle(stain_normalize=True)


@pytest.fixture(scope="module")
def plain_bundle(tiny_bundle):
    """Trained without stain normalisation (the presets' default): its sections' stains stored, not mapped."""
    return tiny_bundle


@pytest.fixture(scope="module")
def bare_bundle(make_tiny_bundle):
    """A bundle without a reference stain, as those made before every model stored its training stains."""
    bundle = make_tiny_bundle()
    del bundle.metadata["reference_stain"]
    return bundle


def _spots_on(sample, path, xy):
    spots = sample[: len(xy)].copy()
    spots.obsm["spatial"] = np.asarray(xy, np.float64).copy()
    lib = next(iter(spots.uns["spatial"]))
    spots.uns["spatial"][lib]["metadata"]["source_image_path"] = str(path)
    return spots


def test_the_reference_stain_is_measured_at_training_and_round_trips(stain_bundle, plain_bundle, tmp_path):
    ref = stain_bundle.metadata["reference_stain"]
    assert ref["method"] == "macenko" and ref["sections"] == ["SYN1", "SYN2"]
    assert np.asarray(ref["vectors"]).shape == (2, 3) and len(ref["max_concentrations"]) == 2
    back = load_bundle(save_bundle(stain_bundle, tmp_path / "m.mclst"))
    assert back.metadata["reference_stain"] == json.loads(json.dumps(ref))
    assert ref["training"] == "mapped to the reference" and sorted(ref["section_stains"]) == ["SYN1", "SYN2"]
    plain = plain_bundle.metadata["reference_stain"]  # always measured, here not applied to the training patches
    assert plain["training"] == "as scanned" and sorted(plain["section_stains"]) == ["SYN1", "SYN2"]
    assert plain["vectors"] == ref["vectors"] and plain["spread"] > 0


def test_a_model_trained_as_scanned_leaves_its_own_stains_and_moves_others(
    plain_bundle, restained_slide, synthetic_sample
):
    none = PredictOptions(device="cpu", stain="none")
    from napari_mclstexp.sample import image_path

    own = _spots_on(synthetic_sample, image_path(synthetic_sample), [[100.0, 100.0], [200.0, 150.0], [300.0, 250.0]])
    auto = run(predict_at_spots(plain_bundle, own, CPU))
    np.testing.assert_array_equal(auto.X, run(predict_at_spots(plain_bundle, own, none)).X)  # a training slide
    rec = auto.uns["mclstexp"]["stain"]
    assert rec["mode"] == "auto" and not rec["applied"] and rec["nearest"] == "SYN1" and rec["distance"] < 1e-3
    assert rec["reason"].startswith("left as scanned: within the training stains")
    spots = _spots_on(synthetic_sample, restained_slide, [[100.0, 100.0], [200.0, 150.0], [300.0, 250.0]])
    moved = run(predict_at_spots(plain_bundle, spots, CPU))
    rec = moved.uns["mclstexp"]["stain"]
    assert rec["applied"] and rec["distance"] > rec["spread"] and 0 < rec["fraction"] < 1
    assert rec["nearest"] in ("SYN1", "SYN2") and rec["slide"]["source"] == "lab2.tif"
    assert np.abs(moved.obsm["embedding"] - run(predict_at_spots(plain_bundle, spots, none)).obsm["embedding"]).max()


def test_auto_maps_the_slide_and_records_it_none_does_not(stain_bundle, restained_slide, synthetic_sample):
    spots = _spots_on(synthetic_sample, restained_slide, [[100.0, 100.0], [200.0, 150.0], [300.0, 250.0]])
    auto = run(predict_at_spots(stain_bundle, spots, CPU))
    none = run(predict_at_spots(stain_bundle, spots, PredictOptions(device="cpu", stain="none")))
    rec = auto.uns["mclstexp"]["stain"]
    assert rec["mode"] == "auto" and rec["applied"] and rec["reference_from"] == "bundle"
    assert rec["slide"]["source"] == "lab2.tif"
    assert rec["reference"]["vectors"] == stain_bundle.metadata["reference_stain"]["vectors"]
    assert none.uns["mclstexp"]["stain"] == {"mode": "none", "applied": False, "reason": "turned off"}
    assert np.abs(auto.obsm["embedding"] - none.obsm["embedding"]).max() > 1e-3  # the encoder saw other colours


def test_spots_and_whole_slide_tiles_agree_with_normalisation(stain_bundle, restained_slide, synthetic_sample):
    pred = run(predict_whole_slide(stain_bundle, restained_slide, CPU, detect_tissue=False, step_px=96))
    assert pred.uns["mclstexp"]["stain"]["applied"]
    at_spots = run(
        predict_at_spots(stain_bundle, _spots_on(synthetic_sample, restained_slide, pred.obsm["spatial"]), CPU)
    )
    assert at_spots.uns["mclstexp"]["stain"]["slide"] == pred.uns["mclstexp"]["stain"]["slide"]  # one estimate
    np.testing.assert_allclose(at_spots.obsm["embedding"], pred.obsm["embedding"], atol=1e-5)
    np.testing.assert_allclose(at_spots.X, pred.X, atol=1e-5)


def test_bundles_without_a_reference_predict_as_before(bare_bundle, restained_slide, synthetic_sample):
    spots = _spots_on(synthetic_sample, restained_slide, [[120.0, 90.0], [260.0, 200.0]])
    auto = run(predict_at_spots(bare_bundle, spots, CPU))
    none = run(predict_at_spots(bare_bundle, spots, PredictOptions(device="cpu", stain="none")))
    np.testing.assert_array_equal(auto.X, none.X)
    assert auto.uns["mclstexp"]["stain"] == {
        "mode": "auto",
        "applied": False,
        "reason": "the model has no reference stain",
    }


def test_a_reference_file_replaces_the_models_and_writes_to_h5ad(
    stain_bundle, restained_slide, synthetic_sample, tmp_path
):
    from napari_mclstexp.io.h5ad import write_h5ad

    ref_file = tmp_path / "ref.json"
    ref_file.write_text(json.dumps({"reference_stain": stain_bundle.metadata["reference_stain"]}))
    spots = _spots_on(synthetic_sample, restained_slide, [[100.0, 100.0], [200.0, 150.0]])
    by_file = run(predict_at_spots(stain_bundle, spots, PredictOptions(device="cpu", stain=str(ref_file))))
    auto = run(predict_at_spots(stain_bundle, spots, CPU))
    assert by_file.uns["mclstexp"]["stain"]["mode"] == "file"
    assert by_file.uns["mclstexp"]["stain"]["reference_from"] == "ref.json"
    np.testing.assert_allclose(by_file.X, auto.X, atol=1e-6)
    write_h5ad(by_file, tmp_path / "p.h5ad")  # the record is h5ad-writable


def test_cli_stain_option(stain_bundle, synthetic_sample, tmp_path, capsys):
    import anndata as ad

    from napari_mclstexp.cli import main
    from napari_mclstexp.io.h5ad import write_h5ad

    model = save_bundle(stain_bundle, tmp_path / "m.mclst")
    sample = tmp_path / "s.h5ad"
    write_h5ad(synthetic_sample, sample)
    assert main(["predict", str(model), str(sample), "--out", str(tmp_path / "a.h5ad"), "--stain", "none", "-q"]) == 0
    assert ad.read_h5ad(tmp_path / "a.h5ad").uns["mclstexp"]["stain"]["mode"] == "none"
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    code = main(["predict", str(model), str(sample), "--out", str(tmp_path / "b.h5ad"), "--stain", str(bad)])
    assert code != 0
    assert "not a stain reference" in capsys.readouterr().err


@pytest.fixture(scope="module")
def finished_stain_bundle(make_tiny_bundle, synthetic_samples):
    """The stain-normalised tiny model finished as training finishes it: bank descriptors (version 2) of the
    training sections mapped to its reference, descriptor trees and their blend weight."""
    from napari_mclstexp.workflows.reliability import iter_finish_bundle

    bundle = make_tiny_bundle(stain_normalize=True)
    run(iter_finish_bundle(bundle, synthetic_samples[:2], device="cpu"))
    bundle.metadata["descriptors"]["weight"] = 1.0  # the descriptor trees alone: what their reads saw shows
    return bundle


def test_descriptor_reads_of_spots_and_tiles_are_normalised_alike(
    finished_stain_bundle, restained_slide, synthetic_sample
):
    from napari_mclstexp.data.descriptors import VERSION
    from napari_mclstexp.predict.descriptor_model import descriptor_version

    bundle = finished_stain_bundle
    assert descriptor_version(bundle) == VERSION == 2
    quiet = PredictOptions(device="cpu", smooth=False)
    whole = run(predict_whole_slide(bundle, restained_slide, quiet, detect_tissue=False, step_px=128))
    whole_none = run(
        predict_whole_slide(bundle, restained_slide, quiet.replace(stain="none"), detect_tissue=False, step_px=128)
    )
    spots = _spots_on(synthetic_sample, restained_slide, whole.obsm["spatial"])
    at_spots = run(predict_at_spots(bundle, spots, quiet))
    at_spots_none = run(predict_at_spots(bundle, spots, quiet.replace(stain="none")))
    assert whole.uns["mclstexp"]["descriptor_weight"] == 1.0 and whole.uns["mclstexp"]["stain"]["applied"]
    # mapped reads describe other tissue colours than as scanned, at spots and at tiles
    assert np.abs(at_spots.X - at_spots_none.X).max() > 1e-3
    assert np.abs(whole.X - whole_none.X).max() > 1e-3
    # and spots and tiles of the slide agree (a tile's descriptor cells differ at block borders, as without stain)
    for a, b in ((at_spots, whole), (at_spots_none, whole_none)):
        gap = np.abs(np.asarray(a.X) - np.asarray(b.X))
        assert gap.max() < 5e-3 and (gap < 1e-4).mean() > 0.85, gap.max()
    np.testing.assert_allclose(at_spots.obsm["embedding"], whole.obsm["embedding"], atol=1e-4)


def test_format1_bundle_auto_acts_as_none(restained_slide, synthetic_sample):
    from pathlib import Path

    old = load_bundle(Path(__file__).parents[1] / "fixtures" / "demo_quick_format1.mclst")
    assert old.metadata["format_version"] == 1 and "reference_stain" not in old.metadata
    spots = _spots_on(synthetic_sample, restained_slide, [[150.0, 150.0], [300.0, 200.0], [350.0, 250.0]])
    auto = run(predict_at_spots(old, spots, CPU))
    none = run(predict_at_spots(old, spots, PredictOptions(device="cpu", stain="none")))
    np.testing.assert_array_equal(auto.X, none.X)
    np.testing.assert_array_equal(auto.obsm["embedding"], none.obsm["embedding"])
    assert auto.uns["mclstexp"]["stain"]["reason"] == "the model has no reference stain"


def test_stain_option_is_validated(tmp_path, stain_bundle):
    from napari_mclstexp.errors import InputError, MissingInputError

    assert PredictOptions(stain=" AUTO ").stain == "auto" and PredictOptions(stain="None").stain == "none"
    with pytest.raises(MissingInputError, match="stain reference not found"):
        PredictOptions(stain=tmp_path / "nowhere.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"vectors": [[1, 0, 0]]}')
    with pytest.raises(InputError, match="stain reference"):
        PredictOptions(stain=str(bad))
    with pytest.raises(InputError, match="stain must be"):
        PredictOptions(stain=3)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(stain_bundle.metadata["reference_stain"]))
    assert PredictOptions(stain=good).stain == good


def test_model_card_and_info_show_the_reference_stain(stain_bundle, plain_bundle, bare_bundle, tmp_path, capsys):
    from napari_mclstexp.cli import main
    from napari_mclstexp.model_card import card_text

    card = load_bundle(save_bundle(stain_bundle, tmp_path / "m.mclst")).card
    assert card["reference_stain"] is True and card["stain"]["sections"] == ["SYN1", "SYN2"]
    assert len(card["stain"]["haematoxylin"]) == 3
    assert "reference stain of SYN1, SYN2: haematoxylin rgb(" in card_text(card)
    assert "reference stain: none" in card_text(bare_bundle.card)
    assert card["stain"]["training"] == "mapped to the reference" and "maps each slide to it" in card_text(card)
    plain = card_text(load_bundle(save_bundle(plain_bundle, tmp_path / "p.mclst")).card)
    assert "trained as scanned; predict --stain auto leaves slides within the training stains' spread" in plain
    assert main(["info", str(tmp_path / "m.mclst")]) == 0
    assert "reference stain of SYN1, SYN2" in capsys.readouterr().out

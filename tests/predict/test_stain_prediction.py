"""Prediction with stain normalisation: the model's reference in the bundle, ``--stain auto|none|FILE``, spots and
whole-slide tiles of one slide mapped alike, old bundles unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_mclstexp.bundle import load_bundle, save_bundle
from napari_mclstexp.predict.slide import predict_whole_slide
from napari_mclstexp.predict.spots import predict_at_spots
from napari_mclstexp.progress import run
from napari_mclstexp.synthetic.stain import MACENKO_HE, rotate_vectors, tissue_concentrations, write_stained_slide


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
    """Trained without stain normalisation (the presets' default; no reference stain, as older bundles)."""
    return tiny_bundle


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
    assert "reference_stain" not in plain_bundle.metadata


def test_auto_maps_the_slide_and_records_it_none_does_not(stain_bundle, restained_slide, synthetic_sample):
    spots = _spots_on(synthetic_sample, restained_slide, [[100.0, 100.0], [200.0, 150.0], [300.0, 250.0]])
    auto = run(predict_at_spots(stain_bundle, spots, device="cpu"))
    none = run(predict_at_spots(stain_bundle, spots, device="cpu", stain="none"))
    rec = auto.uns["mclstexp"]["stain"]
    assert rec["mode"] == "auto" and rec["applied"] and rec["reference_from"] == "bundle"
    assert rec["slide"]["source"] == "lab2.tif"
    assert rec["reference"]["vectors"] == stain_bundle.metadata["reference_stain"]["vectors"]
    assert none.uns["mclstexp"]["stain"] == {"mode": "none", "applied": False, "reason": "turned off"}
    assert np.abs(auto.obsm["embedding"] - none.obsm["embedding"]).max() > 1e-3  # the encoder saw other colours


def test_spots_and_whole_slide_tiles_agree_with_normalisation(stain_bundle, restained_slide, synthetic_sample):
    pred = run(predict_whole_slide(stain_bundle, restained_slide, device="cpu", detect_tissue=False, step_px=96))
    assert pred.uns["mclstexp"]["stain"]["applied"]
    at_spots = run(predict_at_spots(stain_bundle, _spots_on(synthetic_sample, restained_slide, pred.obsm["spatial"])))
    assert at_spots.uns["mclstexp"]["stain"]["slide"] == pred.uns["mclstexp"]["stain"]["slide"]  # one estimate
    np.testing.assert_allclose(at_spots.obsm["embedding"], pred.obsm["embedding"], atol=1e-5)
    np.testing.assert_allclose(at_spots.X, pred.X, atol=1e-5)


def test_bundles_without_a_reference_predict_as_before(plain_bundle, restained_slide, synthetic_sample):
    spots = _spots_on(synthetic_sample, restained_slide, [[120.0, 90.0], [260.0, 200.0]])
    auto = run(predict_at_spots(plain_bundle, spots, device="cpu"))
    none = run(predict_at_spots(plain_bundle, spots, device="cpu", stain="none"))
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
    by_file = run(predict_at_spots(stain_bundle, spots, device="cpu", stain=str(ref_file)))
    auto = run(predict_at_spots(stain_bundle, spots, device="cpu"))
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

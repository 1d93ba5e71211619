"""Cross-validation: fold plans without leakage, resumable results, one real (tiny) fold."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_mclstexp.errors import InputError, SampleFormatError
from napari_mclstexp.workflows import cv
from napari_mclstexp.workflows.cv import (
    Fold,
    data_hash,
    mean_metrics,
    patients_of,
    plan_folds,
    run_cv,
)

# her2st-like: patient = first letter; B4, C2-C4 have images, the rest expression only
IMAGE = {s: s[0] for s in ["B4", "C2", "C3", "C4", "D1"]}
EXTRA = {s: s[0] for s in ["A1", "A2", "B1", "B2", "C1", "C5", "D2", "E1"]}


def test_slide_scheme_keeps_same_patient_sections():
    plan = plan_folds(IMAGE, "slide", extra=EXTRA)
    assert [f.test for f in plan] == list(IMAGE)
    c2 = plan[1]
    assert c2.test == "C2" and c2.train == ("B4", "C3", "C4", "D1")
    assert set(c2.bank) == set(IMAGE) - {"C2"} | set(EXTRA)
    assert c2.excluded == ()
    for fold in plan:
        assert fold.test not in fold.bank


@pytest.mark.parametrize("tests", [None, ["C3", "B4"]])
def test_patient_scheme_never_trains_or_banks_the_test_patient(tests):
    plan = plan_folds(IMAGE, "patient", extra=EXTRA, test_sections=tests)
    assert [f.test for f in plan] == (tests or list(IMAGE))
    patient = {**IMAGE, **EXTRA}
    for fold in plan:
        p = patient[fold.test]
        assert all(patient[s] != p for s in fold.train), fold
        assert all(patient[s] != p for s in fold.bank), fold
        assert set(fold.excluded) == {s for s in patient if patient[s] == p} - {fold.test}
        # everything of other patients is used
        assert set(fold.bank) == {s for s in patient if patient[s] != p}
    c3 = next(f for f in plan if f.test == "C3")
    assert c3.train == ("B4", "D1") and set(c3.excluded) == {"C2", "C4", "C1", "C5"}


def test_plan_errors():
    with pytest.raises(InputError, match="no section left"):
        plan_folds({"C2": "C", "C3": "C"}, "patient")
    with pytest.raises(InputError, match="Z9"):
        plan_folds(IMAGE, "slide", test_sections=["Z9"])
    with pytest.raises(InputError, match="scheme"):
        plan_folds(IMAGE, "random")


def test_patients_and_hash(synthetic_samples):
    assert patients_of(synthetic_samples, "patient") == {"SYN1": "P1", "SYN2": "P1", "SYN3": "P2"}
    no_patient = synthetic_samples[0].copy()
    del no_patient.obs["patient"]
    with pytest.raises(SampleFormatError, match="patient"):
        patients_of([no_patient], "patient")
    assert patients_of([no_patient], "slide") == {"SYN1": "SYN1"}
    h = data_hash(synthetic_samples)
    assert h == data_hash(synthetic_samples) and len(h) == 16
    changed = [s.copy() for s in synthetic_samples]
    changed[1].X[0, 0] += 1
    assert data_hash(changed) != h


def test_mean_metrics_skips_missing():
    folds = {"a": {"metrics": {"acg": 0.2, "mse": None}}, "b": {"metrics": {"acg": 0.4, "mse": 1.0}}}
    m = mean_metrics(folds)
    assert m["acg"] == pytest.approx(0.3) and m["acg_std"] == pytest.approx(0.1)
    assert m["mse"] == 1.0 and m["n_folds"] == 2


def test_resumes_without_recomputing_finished_folds(synthetic_samples, tmp_path, monkeypatch):
    calls: list[str] = []
    crash_on = {"SYN2"}

    def fake_fold(fold: Fold, samples, config, **kwargs):
        calls.append(fold.test)
        if fold.test in crash_on:
            raise RuntimeError("power cut")
        assert fold.test not in fold.train and set(fold.train) <= set(samples)
        yield from ()
        return {"metrics": {"acg": 0.1 * len(calls), "heg50": 0.5}, "device": "cpu", "timings": {"train_s": 1.0}}

    monkeypatch.setattr(cv, "run_fold", fake_fold)
    out = tmp_path / "cv.json"
    with pytest.raises(RuntimeError, match="power cut"):
        cv_run(run_cv(synthetic_samples, "slide", "quick", out=out))
    saved = json.loads(out.read_text())
    assert list(saved["folds"]) == ["SYN1"] and saved["folds"]["SYN1"]["train"] == ["SYN2", "SYN3"]
    assert not list(tmp_path.glob(".*part"))

    crash_on.clear()
    calls.clear()
    res = cv_run(run_cv(synthetic_samples, "slide", "quick", out=out))
    assert calls == ["SYN2", "SYN3"]  # SYN1 not recomputed
    assert list(res["folds"]) == ["SYN1", "SYN2", "SYN3"]
    assert res["folds"]["SYN1"]["metrics"]["acg"] == pytest.approx(0.1)  # kept from the first run
    assert res["mean"]["acg"] == pytest.approx(np.mean([0.1, 0.1, 0.2]))
    assert res["data_hash"] == data_hash(synthetic_samples) and "torch" in res["versions"]
    assert json.loads(out.read_text())["mean"] == res["mean"]

    calls.clear()
    cv_run(run_cv(synthetic_samples, "slide", "quick", out=out))
    assert calls == []
    with pytest.raises(InputError, match="different run"):
        cv_run(run_cv(synthetic_samples, "patient", "quick", out=out))


def cv_run(gen):
    from napari_mclstexp.progress import run

    return run(gen)


@pytest.mark.slow
def test_one_real_patient_fold(synthetic_samples, tmp_path):
    from napari_mclstexp.data.patches import PatchCache
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.progress import run

    cfg = get_preset("quick").replace(epochs=1, k=20, input_px=32)  # tiny: seconds on a CPU
    res = run(
        run_cv(
            synthetic_samples,
            "patient",
            cfg,
            out=tmp_path / "cv.json",
            folds=["SYN1"],
            device="cpu",
            domain_key="annotation",
            baseline=True,
            predictions_dir=tmp_path / "pred",
            patch_cache=PatchCache(tmp_path / "cache"),
        )
    )
    fold = res["folds"]["SYN1"]
    assert fold["train"] == ["SYN3"] and fold["excluded"] == ["SYN2"]  # SYN2: same patient P1
    assert fold["n_bank_spots"] == synthetic_samples[2].n_obs
    m = fold["metrics"]
    assert m["n_spots"] == synthetic_samples[0].n_obs and m["n_genes"] == 24
    assert -1 <= m["acg"] <= 1 and m["mse"] > 0 and 0 <= m["domain_nmi"] <= 1
    assert -1 <= fold["baseline_metrics"]["acg"] <= 1
    assert fold["epochs"] == 1 and fold["device"] == "cpu" and fold["timings"]["train_s"] > 0
    assert (tmp_path / "pred" / "SYN1.h5ad").is_file()
    assert res["mean"]["acg"] == pytest.approx(m["acg"])


@pytest.mark.slow
def test_baseline_and_model_crop_the_same_test_patches(synthetic_samples, tmp_path, monkeypatch):
    """The test section scanned at another resolution: the model crops its µm extent (patch_px_for), and
    the colour-histogram baseline must see those same patches, not the trained pixel size."""
    from napari_mclstexp.data import patches as patches_mod
    from napari_mclstexp.data.patches import PatchCache
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.progress import run
    from napari_mclstexp.sample import library_id

    samples = [a.copy() for a in synthetic_samples]
    for a, mpp in zip(samples, (1.0, 1.0, 0.5), strict=True):  # SYN3 (the test) at twice the resolution
        a.uns["spatial"][library_id(a)]["metadata"]["microns_per_pixel"] = mpp
    crops: dict[str, set[int]] = {}
    real_sample, real_iter = patches_mod.sample_patches, patches_mod.iter_sample_patches

    def record(adata, size_px, *args, **kwargs):
        crops.setdefault(str(adata.obs["section"].iloc[0]), set()).add(int(size_px))

    def sample_patches(adata, size_px, *args, **kwargs):
        record(adata, size_px)
        return real_sample(adata, size_px, *args, **kwargs)

    def iter_sample_patches(adata, size_px, *args, **kwargs):
        record(adata, size_px)
        return (yield from real_iter(adata, size_px, *args, **kwargs))

    monkeypatch.setattr(patches_mod, "sample_patches", sample_patches)
    monkeypatch.setattr(patches_mod, "iter_sample_patches", iter_sample_patches)
    cfg = get_preset("quick").replace(epochs=1, k=10, input_px=16, patch_px=48)
    run(
        run_cv(
            samples,
            "patient",
            cfg,
            out=tmp_path / "cv.json",
            folds=["SYN3"],
            device="cpu",
            baseline=True,
            patch_cache=PatchCache(tmp_path / "cache"),
        )
    )
    # 48 px at 1 µm/px = 48 µm = 96 px at 0.5 µm/px, for model and baselines; the tissue descriptors read
    # 3× around the same patch plus their texture margin (version 2: READ_PX per CELL_PX of spot patch)
    from napari_mclstexp.data.descriptors import CELL_PX, READ_PX

    assert crops["SYN3"] == {96, round(96 * READ_PX / CELL_PX)}
    assert crops["SYN1"] == crops["SYN2"] == {48, round(48 * READ_PX / CELL_PX)}

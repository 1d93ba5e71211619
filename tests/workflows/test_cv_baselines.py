"""CV comparison: ridge / histogram / mean baselines, HEST metric on training HVGs, within-patient folds."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.workflows.cv import Fold
from napari_mclstexp.workflows.cv_baselines import (
    default_scheme,
    format_table,
    hest_pcc,
    summarize,
    training_hvgs,
    within_patient,
)


def test_default_scheme_is_patient_with_two_patients(synthetic_samples):
    assert default_scheme(synthetic_samples) == "patient"  # P1, P1, P2
    assert default_scheme(synthetic_samples[:2]) == "slide"  # one patient only


def test_within_patient_flags_serial_sections():
    patients = {"B1": "B", "B2": "B", "C1": "C"}
    assert within_patient(Fold("B1", ("B2", "C1")), patients)
    assert not within_patient(Fold("C1", ("B1", "B2")), patients)


def test_hest_genes_come_from_training_expression_only():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(100, 60)) * np.linspace(0.1, 6.0, 60)  # variance grows with the index
    genes = [f"g{i}" for i in range(60)]
    hv = training_hvgs(train, genes)
    assert set(hv) == {f"g{i}" for i in range(10, 60)}
    r = {g: (1.0 if g in hv else -1.0) for g in genes}
    assert hest_pcc(r, hv) == 1.0
    assert hest_pcc({"x": np.nan}, ["x"]) is None


def _rec(acg, base_acg, mse=1.0, within=False):
    b = {"acg": base_acg, "hest_pcc": base_acg, "mse": 2 * mse}
    return {
        "metrics": {"acg": acg, "hest_pcc": acg, "mse": mse},
        "within_patient": within,
        "baselines": {"ridge": b, "histogram": b, "mean": {"acg": None, "mse": 4 * mse}},
    }


def test_summary_ratios_and_table():
    folds = {"A": _rec(0.2, 0.1), "B": _rec(0.4, 0.2, within=True)}
    s = summarize(folds)
    assert s["means"]["model"]["acg"] == pytest.approx(0.3)
    assert s["ratios"]["ridge"]["acg"] == pytest.approx(2.0)
    assert s["ratios"]["mean"]["acg"] is None and s["ratios"]["mean"]["mse"] == pytest.approx(4.0)
    assert s["within_patient_folds"] == ["B"]
    table = format_table({"scheme": "slide", "folds": folds})
    lines = table.splitlines()
    assert "ridge" in lines[1] and "histogram" in lines[1] and "mean" in lines[1]
    assert "within-patient (optimistic)" in lines[3] and "within-patient" not in lines[2]
    assert lines[-2].split()[-3:] == ["2.0000", "2.0000", "-"]


def test_cv_reports_model_and_every_baseline(synthetic_samples, tmp_path, monkeypatch):
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.progress import run
    from napari_mclstexp.workflows.cv import run_cv

    monkeypatch.setenv("MCLSTEXP_CACHE", str(tmp_path / "cache"))
    cfg = get_preset("quick").replace(
        encoder="timm:vit_tiny_patch16_224",
        weights="none",
        input_px=32,
        patch_px=64,
        embed_dim=16,
        freeze=True,
        epochs=1,
        k=8,
    )
    res = run(run_cv(synthetic_samples, "slide", cfg, folds=["SYN1", "SYN3"], device="cpu", baseline=True))
    f1, f3 = res["folds"]["SYN1"], res["folds"]["SYN3"]
    assert f1["within_patient"] is True and f3["within_patient"] is False
    for fold in (f1, f3):
        assert set(fold["baselines"]) >= {"ridge", "histogram", "mean", "hvgs"}
        assert -1 <= fold["baselines"]["ridge"]["acg"] <= 1
        assert fold["baselines"]["mean"]["mse"] > 0
        assert fold["metrics"]["hest_pcc"] is not None
    assert set(res["comparison"]["ratios"]) == {"ridge", "histogram", "mean"}
    assert (tmp_path / "cache" / "features").is_dir()  # frozen features cached and reused by the ridge baseline

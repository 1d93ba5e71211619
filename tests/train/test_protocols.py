"""Paper protocols per dataset (her2st, cscc, visium), their detection, and ``cv --protocol``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_mclstexp.cli import main
from napari_mclstexp.errors import InputError
from napari_mclstexp.model.mclstexp import spot_positions
from napari_mclstexp.model.presets import get_preset
from napari_mclstexp.train.protocols import detect_dataset, paper_config, resolve_protocol
from napari_mclstexp.workflows import cv


def renamed(adata, name: str):
    out = adata.copy()
    out.obs["section"] = name
    out.uns["spatial"] = {name: next(iter(adata.uns["spatial"].values()))}
    return out


def as_visium(adata):
    out = adata.copy()
    out.var["gene_ids"] = [f"ENSG{i:011d}" for i in range(out.n_vars)]  # as read_visium sets
    return out


def test_cscc_protocol_uses_k600_and_l2():
    cfg = paper_config("cscc")
    assert (cfg.k, cfg.distance) == (600, "l2")
    assert cfg.position_source == "array" and cfg.value_normalization == "log10_1e4_per_gene"
    her2 = paper_config("her2st")
    assert (her2.k, her2.distance) == (200, "l1") and her2.extra["protocol"] == "paper:her2st"


def test_visium_protocol_positions_are_full_resolution_pixels(synthetic_sample):
    cfg = paper_config("visium")
    assert (cfg.k, cfg.distance, cfg.image_norm) == (200, "l2", "bgr255")
    assert cfg.color_jitter == (0.0, 0.0, 0.0) and cfg.rotate_deg == 0 and cfg.flips and cfg.rot90
    assert cfg.test_augment and cfg.normalization == cfg.value_normalization == "log10_1e4_per_gene"
    adata = synthetic_sample
    adata.obsm["spatial"] = adata.obsm["spatial"] + 0.75  # fractional pixels: floored, as the reference
    pos = spot_positions(adata, cfg)
    np.testing.assert_array_equal(pos, np.floor(adata.obsm["spatial"]).astype(np.int64))
    assert pos.max() > 100 and cfg.pos_table == "fixed" and cfg.pos_rows == 65536


def test_dataset_detection(synthetic_samples):
    assert detect_dataset(synthetic_samples) == "her2st"
    cscc = [renamed(a, f"P2_ST_rep{i + 1}") for i, a in enumerate(synthetic_samples)]
    assert detect_dataset(cscc) == "cscc"
    assert detect_dataset([as_visium(a) for a in synthetic_samples]) == "visium"
    with pytest.raises(InputError, match="paper:her2st"):
        detect_dataset([cscc[0], synthetic_samples[1]])


def test_resolve_protocol(synthetic_samples):
    cfg, info = resolve_protocol(get_preset("paper").replace(epochs=3), None, synthetic_samples)
    assert info["protocol"] == "paper:her2st" and info["published"]["acg"] == 0.2304
    assert cfg.epochs == 3 and info["scale"] == "log10_1e4_per_gene" and "per gene" in info["scale_description"]
    cfg, info = resolve_protocol(get_preset("paper"), "ours")
    assert cfg.value_normalization is None and info["scale"] == "log10_1e4" and cfg.k == 200
    quick = get_preset("quick")
    cfg, info = resolve_protocol(quick, "paper:visium")
    # another preset keeps its model; only the scale of bank values and truth changes
    assert cfg.replace(value_normalization=None, extra={}) == quick and cfg.value_normalization == "log10_1e4_per_gene"
    assert "published" not in info
    with pytest.raises(InputError, match="unknown protocol"):
        resolve_protocol(quick, "paper:mouse")


def test_cv_command_protocol_and_overrides(synthetic_samples, tmp_path, monkeypatch, capsys):
    paths = []
    for s in synthetic_samples:
        p = tmp_path / f"{s.obs['section'].iloc[0]}.h5ad"
        s.write_h5ad(p)
        paths.append(str(p))
    seen = []

    def fake_fold(fold, samples, config, **kwargs):
        seen.append(config)
        yield from ()
        return {"metrics": {"acg": 0.25, "normalization": "log10_1e4_per_gene"}, "device": "cpu", "timings": {}}

    monkeypatch.setattr(cv, "run_fold", fake_fold)
    out = tmp_path / "cv.json"
    argv = [
        *paths,
        "--scheme",
        "slide",
        "--preset",
        "paper",
        "--protocol",
        "paper:cscc",
        "--k",
        "7",
        "--distance",
        "l1",
        "--folds",
        "SYN1",
        "--weights",
        "none",
        "--out",
        str(out),
    ]
    assert main(["cv", *argv]) == 0
    cfg = seen[0]
    assert (cfg.k, cfg.distance, cfg.value_normalization) == (7, "l1", "log10_1e4_per_gene")
    data = json.loads(out.read_text())
    assert "per gene" in data["scale"] and data["config"]["extra"]["protocol"] == "paper:cscc"
    printed = capsys.readouterr().out
    assert "protocol paper:cscc, k 7, L1" in printed and "scale: per gene" in printed
    seen.clear()
    assert (
        main(
            [
                "cv",
                *paths,
                "--scheme",
                "slide",
                "--preset",
                "quick",
                "--folds",
                "SYN1",
                "--out",
                str(tmp_path / "q.json"),
            ]
        )
        == 0
    )
    assert seen[0].value_normalization is None and "per spot" in json.loads((tmp_path / "q.json").read_text())["scale"]


def test_detects_the_real_readers_output(her2st_dir, visium_tiny_dir):
    from napari_mclstexp.io.her2st import read_her2st_section
    from napari_mclstexp.io.visium import read_visium

    assert detect_dataset([read_visium(visium_tiny_dir / "1.0.0")]) == "visium"
    assert detect_dataset([read_her2st_section(her2st_dir, "B4")]) == "her2st"


@pytest.mark.slow
def test_one_visium_paper_fold_end_to_end(synthetic_samples, tmp_path):
    from napari_mclstexp.data.patches import PatchCache
    from napari_mclstexp.progress import run

    base = get_preset("paper").replace(encoder="smallcnn", weights="none", epochs=1, input_px=32, batch_size=100)
    cfg, info = resolve_protocol(base, "paper:visium")
    res = run(
        cv.run_cv(
            synthetic_samples, "slide", cfg, folds=["SYN1"], device="cpu", patch_cache=PatchCache(tmp_path / "cache")
        )
    )
    fold = res["folds"]["SYN1"]
    assert fold["metrics"]["normalization"] == "log10_1e4_per_gene" == info["scale"]
    assert -1 <= fold["metrics"]["acg"] <= 1 and fold["n_bank_spots"] == sum(a.n_obs for a in synthetic_samples[1:])
    assert "per gene" in res["scale"] and res["config"]["image_norm"] == "bgr255"

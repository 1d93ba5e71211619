"""A format-1 bundle (the demo model shipped before format 2) loads, predicts without novelty, and says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_mclstexp.bundle import FORMAT_VERSION, load_bundle
from napari_mclstexp.model_card import card_text

OLD = Path(__file__).parent / "fixtures" / "demo_quick_format1.mclst"


def test_format1_card_shows_what_it_knows():
    bundle = load_bundle(OLD)
    assert bundle.metadata["format_version"] == 1 < FORMAT_VERSION and bundle.novelty_reference is None
    card = bundle.card
    assert card["complete"] is False and list(card["sections"]) == ["DEMO1-train"] and "novelty" not in card
    text = card_text(card, "old.mclst")
    assert "novelty: not calibrated (bundle made before format 2)" in text and "tissue: not given" in text
    assert "held-out reliability: not recorded" in text and "trained on: DEMO1-train" in text


@pytest.mark.slow
def test_format1_predicts_without_novelty(capsys, tmp_path, monkeypatch):
    import napari_mclstexp.cli as cli
    from napari_mclstexp.workflows.demo import load_demo_sample, sample_data_dir, split_demo_sample

    _, test = split_demo_sample(load_demo_sample(sample_data_dir()))
    test.write_h5ad(tmp_path / "test.h5ad")
    monkeypatch.setattr(cli, "COMMANDS", ("predict", "info"))
    out = tmp_path / "p.h5ad"
    assert cli.main(["predict", str(OLD), str(tmp_path / "test.h5ad"), "--out", str(out), "--device", "cpu"]) == 0
    assert "novelty: not scored (bundle made before format 2" in capsys.readouterr().out
    import anndata as ad

    pred = ad.read_h5ad(out)
    assert "novelty" not in pred.obs and "novel_fraction" not in pred.uns["mclstexp"]
    assert pred.uns["mclstexp"]["model_card"]["sections"]["DEMO1-train"]["image"]
    assert cli.main(["info", str(OLD)]) == 0
    assert "not calibrated" in capsys.readouterr().out

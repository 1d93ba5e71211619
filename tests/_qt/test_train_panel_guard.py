"""The Train widget's engine call refuses an all-genes default panel that would not fit in memory."""

from __future__ import annotations

import pytest

from napari_mclstexp.errors import GenePanelError
from napari_mclstexp.progress import run


def test_default_panel_too_large_is_refused_before_training(synthetic_samples, tmp_path, monkeypatch):
    from napari_mclstexp._qt.train import train_and_save

    monkeypatch.setattr("napari_mclstexp.data.panel.MAX_DEFAULT_GENES", 10)  # synthetic panel: 24 genes
    out = tmp_path / "m.mclst"
    with pytest.raises(GenePanelError, match="choose a gene panel"):
        run(
            train_and_save(
                list(synthetic_samples[:2]), "quick", epochs=1, genes=None, device="cpu", out=str(out), in_process=False
            )
        )
    assert not out.exists()
    # an explicit choice passes the guard (and trains)
    bundle = run(
        train_and_save(
            list(synthetic_samples[:2]),
            "quick",
            epochs=1,
            genes="hvg:8",
            device="cpu",
            out=str(out),
            overrides={"input_px": 16, "patch_px": 48},
            in_process=False,  # the patched limit does not reach a worker process
        )
    ).bundle
    assert len(bundle.genes) == 8 and out.is_file()

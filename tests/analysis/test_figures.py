"""Measured vs predicted figure on the slide thumbnail."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.analysis.figures import plot_measured_vs_predicted, slide_background
from napari_mclstexp.errors import GenePanelError


def _prediction(sample):
    from napari_mclstexp.data.genes import expression_matrix

    pred = sample.copy()
    pred.X = expression_matrix(sample, list(sample.var_names), "log10_1e4")
    pred.uns["mclstexp"] = {"normalization": "log10_1e4"}
    return pred


def test_figure_has_one_row_per_gene_on_the_slide(synthetic_sample, tmp_path):
    from PIL import Image

    thumb, scale = slide_background(synthetic_sample, max_px=256)
    assert thumb is not None and thumb.shape == (256, 256, 3) and scale == pytest.approx(0.5)
    pred = _prediction(synthetic_sample)
    out = plot_measured_vs_predicted(pred, synthetic_sample, ["MARK0_0", "MARK1_0"], tmp_path / "f.png", dpi=50)
    img = np.asarray(Image.open(out).convert("RGB"))
    assert img.shape[0] == pytest.approx(2 * img.shape[1] / 2, rel=0.05)  # 2 rows × 2 columns of squares
    assert img.std() > 20  # not a blank canvas
    assert not list(tmp_path.glob(".*.part"))


def test_figure_rejects_unknown_genes(synthetic_sample, tmp_path):
    with pytest.raises(GenePanelError, match="NOPE"):
        plot_measured_vs_predicted(_prediction(synthetic_sample), synthetic_sample, ["NOPE"], tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists()

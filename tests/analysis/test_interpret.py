"""Gene ranking and the marker-gene report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_mclstexp.analysis.interpret import (
    group_summary,
    marker_genes,
    marker_report,
    rank_genes,
)


@pytest.fixture
def per_gene() -> pd.DataFrame:
    genes = [
        "ACTB",
        "ERBB2",
        "GRB7",
        "KRT19",
        "KRT8",
        "KRTAP1",
        "ESR1",
        "CD74",
        "HLA-DRA",
        "IGKC",
        "IGHG3",
        "IGHGP",
        "PTPRC",
        "MKI67",
    ]
    r = [0.1, 0.6, 0.5, 0.4, np.nan, 0.9, -0.1, 0.3, 0.2, 0.7, 0.35, 0.0, 0.05, 0.15]
    return pd.DataFrame({"r": r, "p_value": np.linspace(0.01, 0.5, len(r))}, index=genes)


def test_rank_genes_best_first_nan_last(per_gene):
    ranked = rank_genes(per_gene)
    assert list(ranked.index[:3]) == ["KRTAP1", "IGKC", "ERBB2"]
    assert ranked.index[-1] == "KRT8" and np.isnan(ranked["rank"].iloc[-1])
    assert ranked.loc["KRTAP1", "rank"] == 1 and ranked.loc["KRTAP1", "percentile"] == 100.0
    assert ranked.loc["ESR1", "rank"] == 13 and ranked.loc["ESR1", "percentile"] == pytest.approx(100 / 13)


def test_marker_families_match_by_pattern(per_gene):
    groups = marker_genes(per_gene.index)
    assert groups["HER2+/breast cancer"] == ["ERBB2", "GRB7", "KRT19", "KRT8", "ESR1"]  # not KRTAP1
    assert groups["immune"] == ["CD74", "HLA-DRA", "IGKC", "IGHG3", "PTPRC"]  # not IGHGP


def test_marker_report_and_group_summary(per_gene):
    report = marker_report(per_gene)
    assert len(report) == 10
    erbb2 = report.set_index("gene").loc["ERBB2"]
    assert erbb2["group"] == "HER2+/breast cancer" and erbb2["r"] == 0.6 and erbb2["rank"] == 3
    summ = group_summary(report, per_gene)
    assert summ.loc["HER2+/breast cancer", "mean_r"] == pytest.approx(np.mean([0.6, 0.5, 0.4, -0.1]))
    assert summ.loc["immune", "n_genes"] == 5
    assert summ.loc["all genes", "mean_r"] == pytest.approx(np.nanmean(per_gene["r"]))

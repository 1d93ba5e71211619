"""Interpretation: which genes are predicted well, and how the known marker genes fare.

Genes are ranked by Pearson r (from :func:`napari_mclstexp.analysis.metrics.evaluate`).  The marker
report looks up the HER2+/breast-cancer genes and the immune genes the paper discusses; families
(KRT, HLA class II, IGHG) are matched by pattern so every member on the panel is reported.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..errors import InputError

#: Marker groups: name → regular expressions matched against the whole gene symbol.
MARKER_GROUPS: dict[str, tuple[str, ...]] = {
    "HER2+/breast cancer": (
        "ERBB2",
        "GRB7",
        "STARD3",
        "PGAP3",
        "MIEN1",
        r"KRT\d+[A-Z]?",
        "ESR1",
        "PGR",
        "FOXA1",
        "GATA3",
        "TFF1",
        "TFF3",
        "XBP1",
        "SCGB2A2",
        "MUC1",
        "CD24",
        "EPCAM",
        "CDH1",
        "MGP",
    ),
    "immune": (
        "CD74",
        r"HLA-D[A-Z0-9]+",
        "IGKC",
        "IGLC\\d*",
        r"IGHG\d*",
        "IGHA\\d*",
        "IGHM",
        "JCHAIN",
        "CD52",
        "PTPRC",
        "CD3[DEG]",
        "CD2",
        "CD8A",
        "CD4",
        "MS4A1",
        "CD79A",
        "LYZ",
        "CXCL13",
        "B2M",
    ),
}


def rank_genes(per_gene: pd.DataFrame) -> pd.DataFrame:
    """Rank genes by Pearson r, best first.

    Parameters
    ----------
    per_gene
        Table indexed by gene with at least an ``r`` column (``evaluate(...)['per_gene']``).

    Returns
    -------
    pandas.DataFrame
        A copy sorted by ``r`` descending (undefined r last) with ``rank`` (1 = best, NaN for
        undefined r) and ``percentile`` (100 = best, of the genes with a defined r).
    """
    if "r" not in per_gene:
        raise InputError("the per-gene table has no 'r' column (use evaluate(...)['per_gene'])")
    table = per_gene.sort_values("r", ascending=False, na_position="last", kind="stable").copy()
    defined = np.isfinite(table["r"].to_numpy(dtype=float))
    n = int(defined.sum())
    rank = np.full(len(table), np.nan)
    rank[defined] = np.arange(1, n + 1)
    table["rank"] = rank
    table["percentile"] = 100.0 * (n - rank + 1) / n if n else np.nan
    return table


def marker_genes(genes, groups: dict[str, tuple[str, ...]] | None = None) -> dict[str, list[str]]:
    """Genes of the panel belonging to each marker group (panel order)."""
    groups = MARKER_GROUPS if groups is None else groups
    out: dict[str, list[str]] = {}
    for name, patterns in groups.items():
        rx = re.compile("|".join(f"(?:{p})" for p in patterns))
        out[name] = [str(g) for g in genes if rx.fullmatch(str(g))]
    return out


def marker_report(per_gene: pd.DataFrame, groups: dict[str, tuple[str, ...]] | None = None) -> pd.DataFrame:
    """How the known marker genes are predicted.

    Parameters
    ----------
    per_gene
        ``evaluate(...)['per_gene']``.
    groups
        Marker groups (default :data:`MARKER_GROUPS`).

    Returns
    -------
    pandas.DataFrame
        One row per marker gene on the panel: ``group``, ``gene``, ``r``, ``p_value`` (when
        known), ``rank`` and ``percentile`` among all genes (100 = best predicted).
    """
    ranked = rank_genes(per_gene)
    rows = []
    for group, genes in marker_genes(ranked.index, groups).items():
        for g in genes:
            row = {"group": group, "gene": g, "r": float(ranked.at[g, "r"])}
            if "p_value" in ranked:
                row["p_value"] = float(ranked.at[g, "p_value"])
            row["rank"] = ranked.at[g, "rank"]
            row["percentile"] = ranked.at[g, "percentile"]
            rows.append(row)
    columns = ["group", "gene", "r", "p_value", "rank", "percentile"]
    return pd.DataFrame(rows, columns=columns if "p_value" in ranked else [c for c in columns if c != "p_value"])


def group_summary(report: pd.DataFrame, per_gene: pd.DataFrame) -> pd.DataFrame:
    """Mean r per marker group next to the panel-wide mean (ACG).

    Returns
    -------
    pandas.DataFrame
        Indexed by group (plus ``"all genes"``): ``n_genes``, ``mean_r``, ``median_percentile``.
    """
    rows = {}
    for group, sub in report.groupby("group", sort=False):
        rows[group] = {
            "n_genes": int(len(sub)),
            "mean_r": float(np.nanmean(sub["r"])) if sub["r"].notna().any() else float("nan"),
            "median_percentile": float(np.nanmedian(sub["percentile"].astype(float)))
            if sub["percentile"].notna().any()
            else float("nan"),
        }
    r = per_gene["r"].to_numpy(dtype=float)
    rows["all genes"] = {
        "n_genes": int(len(r)),
        "mean_r": float(np.nanmean(r)) if np.isfinite(r).any() else float("nan"),
        "median_percentile": 50.0,
    }
    return pd.DataFrame.from_dict(rows, orient="index")

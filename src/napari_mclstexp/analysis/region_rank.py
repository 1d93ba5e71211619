"""How the genes of a region-statistics table are ranked, and how two rankings agree.

**Ranking** (:data:`RANK_BY`, the order of the region-statistics tables): by ``log2_fold_change``,
decreasing (up inside first, down last), fixed before comparing statistics on real data, for three
reasons.  It is the effect the table reports, so its first rows are its largest reported effects; it is a
ratio of expression in counts per 10⁴ whatever log the prediction was stored in, which a pathologist and
``scanpy.tl.rank_genes_groups`` (``logfoldchanges``) read the same way, whereas ``difference`` mixes an
absolute difference (low values, where ``log(1 + x) ≈ x``) with a log ratio (high values); and ``z``
ranks by evidence (it grows with the region's size and the null's spread), not by effect, so two
classes' lists are not comparable.  Its known weakness, a lowly expressed gene's ratio being noisy, is
bounded by the pseudocount.  ``rank_by="difference"`` or ``"z"`` orders by the others.
"""

from __future__ import annotations

import pandas as pd

#: Statistics a table can be ranked by (decreasing; the first is the default, see the module docstring).
RANK_BY = ("log2_fold_change", "difference", "z")


def rank_genes(frame: pd.DataFrame, by: str = RANK_BY[0]) -> pd.DataFrame:
    """Rows by decreasing ``by`` (stable, NaN last; the classes' order kept when ``frame`` holds several)."""
    order = {name: i for i, name in enumerate(pd.unique(frame["class"]))} if "class" in frame else {}
    keys = frame.assign(_c=frame["class"].map(order) if order else 0)
    ranked = keys.sort_values(["_c", by], ascending=[True, False], kind="stable", na_position="last")
    return ranked.drop(columns="_c")


def top_genes(table: pd.DataFrame, name: str, n: int = 20, *, up: bool = True, by: str = RANK_BY[0]) -> list[str]:
    """The ``n`` genes of class ``name`` with the largest (``up``) or smallest ``by`` (default the log2
    fold change of the back-transformed means, see the module docstring)."""
    sub = table[table["class"] == name]
    return sub.sort_values(by, ascending=not up, kind="stable")["gene"].head(n).tolist()


def top_gene_agreement(
    first: pd.DataFrame, second: pd.DataFrame, n: int = 20, *, by: str = RANK_BY[0]
) -> dict[str, int]:
    """Per class present in both tables: how many of its ``n`` top genes up (:func:`top_genes`) agree."""
    classes = [c for c in pd.unique(first["class"]) if c in set(second["class"])]
    return {str(c): len(set(top_genes(first, c, n, by=by)) & set(top_genes(second, c, n, by=by))) for c in classes}

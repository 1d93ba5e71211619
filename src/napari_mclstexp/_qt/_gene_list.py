"""Explore's gene list: per-gene reliability beside each name, sortable, with search that puts the
exact match first (``KRT8`` before ``KRT86``) and Enter choosing the top row.

Rows show ``KRT8   r 0.62`` (held-out Pearson r, :mod:`..analysis.reliability`); genes below the
threshold carry a ``⚠`` marker and a tooltip.  The gene name itself is the item's ``GENE_ROLE``.
"""

from __future__ import annotations

import math

from qtpy.QtCore import QSortFilterProxyModel, Qt
from qtpy.QtGui import QStandardItem, QStandardItemModel

GENE_ROLE = Qt.ItemDataRole.UserRole + 1
R_ROLE = Qt.ItemDataRole.UserRole + 2
SORTS = ("reliability (best first)", "name")
#: Marker of genes predicted below the reliability threshold.
UNRELIABLE = "⚠"


def row_text(gene: str, r: float, threshold: float | None) -> str:
    """``KRT8 · r 0.62`` or ``HPS6 · r 0.05 ⚠`` (no figure when unknown)."""
    if not math.isfinite(r):
        return gene if threshold is None else f"{gene} · r n/a"
    marker = f" {UNRELIABLE}" if threshold is not None and r < threshold else ""
    return f"{gene} · r {r:.2f}{marker}"


class GeneModel(QStandardItemModel):
    """One row per gene with its reliability (``R_ROLE``, NaN unknown)."""

    def set_genes(self, genes: list[str], reliability: dict[str, float], threshold: float | None) -> None:
        self.clear()
        for gene in genes:
            r = float(reliability.get(gene, math.nan))
            item = QStandardItem(row_text(gene, r, threshold if reliability else None))
            item.setEditable(False)
            item.setData(gene, GENE_ROLE)
            item.setData(r, R_ROLE)
            if reliability and threshold is not None and not r >= threshold:
                item.setToolTip(
                    f"{gene}: held-out r {r:.2f} < {threshold:g}: do not trust this map"
                    if math.isfinite(r)
                    else f"{gene}: no held-out reliability"
                )
            self.appendRow(item)

    def genes(self) -> list[str]:
        """The listed genes, in model order."""
        return [self.item(i).data(GENE_ROLE) for i in range(self.rowCount())]

    def stringList(self) -> list[str]:  # noqa: N802 - the QStringListModel call it replaces
        return self.genes()


class GeneFilter(QSortFilterProxyModel):
    """Case-insensitive substring filter on the gene name; rows ordered exact match, prefix match,
    then by the chosen sort (reliability descending, or name)."""

    def __init__(self) -> None:
        super().__init__()
        self.query = ""
        self.by = SORTS[0]
        self.setFilterRole(GENE_ROLE)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

    def set_query(self, text: str) -> None:
        self.query = text.strip().upper()
        self.setFilterFixedString(text.strip())
        self.invalidate()
        self.sort(0)

    def set_sort(self, by: str) -> None:
        self.by = by
        self.invalidate()
        self.sort(0)

    def _key(self, index) -> tuple:
        gene = str(index.data(GENE_ROLE)).upper()
        rank = 0 if gene == self.query else 1 if self.query and gene.startswith(self.query) else 2
        r = index.data(R_ROLE)
        r = r if isinstance(r, float) and math.isfinite(r) else -math.inf
        return (rank, -r, gene) if self.by == SORTS[0] else (rank, gene)

    def lessThan(self, left, right) -> bool:  # noqa: N802 - Qt naming
        return self._key(left) < self._key(right)

    def first_gene(self) -> str | None:
        """The top row's gene (what Enter picks), or ``None``."""
        return self.index(0, 0).data(GENE_ROLE) if self.rowCount() else None

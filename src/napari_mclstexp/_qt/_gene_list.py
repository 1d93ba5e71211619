"""Explore's gene list: per-gene reliability beside each name, sortable, with search that puts the
exact match first (``KRT8`` before ``KRT86``) and Enter choosing the top row.

Rows show ``KRT8   r 0.62`` (held-out Pearson r, :mod:`..analysis.reliability`); genes below the
threshold carry a ``⚠`` marker and a tooltip.  The gene name itself is the item's ``GENE_ROLE``.
"""

from __future__ import annotations

import math

from qtpy.QtCore import QAbstractListModel, Qt

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


def sort_key(gene: str, r: float, by: str) -> tuple:
    """Order of a row before any search: reliability descending (unknown last), then name; or name."""
    r = r if math.isfinite(r) else -math.inf
    return (-r, gene.upper()) if by == SORTS[0] else (gene.upper(),)


class GeneModel(QAbstractListModel):
    """The gene list: one row per gene with its reliability (``R_ROLE``, NaN unknown), filtered by a
    case-insensitive search (exact match, then prefix matches, then the rest) and ordered by
    :data:`SORTS`.

    Filtering and ordering are one Python pass over plain lists and one model reset; the view asks
    only for the rows it shows.  (A ``QStandardItemModel`` behind a sorting proxy compared her2st's
    15,000 genes in Python on every inserted row: the window froze for seconds whenever the Explore
    layer changed.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.by = SORTS[0]
        self.query = ""
        self._genes: list[str] = []
        self._r: list[float] = []
        self._threshold: float | None = None
        self._ordered: list[int] = []  # gene indices in the chosen order
        self._rows: list[int] = []  # what the view shows: matches of the search, best first

    # --- filling, ordering, searching -------------------------------------------------------
    def set_genes(self, genes: list[str], reliability: dict[str, float], threshold: float | None) -> None:
        self._genes = [str(g) for g in genes]
        self._r = [float(reliability.get(g, math.nan)) for g in self._genes]
        self._threshold = threshold if reliability else None
        self._order()

    def set_order(self, by: str) -> None:
        """Order the rows by ``by`` (one of :data:`SORTS`)."""
        self.by = by
        self._order()

    set_sort = set_order

    def set_query(self, text: str) -> None:
        """Show the genes containing ``text`` (any case): the exact match first, then prefix matches."""
        self.query = text.strip().upper()
        self.resort()

    def _order(self) -> None:
        genes, rs = self._genes, self._r
        if self.by == SORTS[0]:
            key = lambda i: (-rs[i] if math.isfinite(rs[i]) else math.inf, genes[i].upper())  # noqa: E731
        else:
            key = lambda i: genes[i].upper()  # noqa: E731
        self._ordered = sorted(range(len(genes)), key=key)
        self.resort()

    def resort(self) -> None:
        """Apply the search to the ordered genes (one model reset)."""
        q, genes = self.query, self._genes
        if not q:
            rows = list(self._ordered)
        else:
            upper = [(i, genes[i].upper()) for i in self._ordered]
            exact = [i for i, g in upper if g == q]
            prefix = [i for i, g in upper if g != q and g.startswith(q)]
            rest = [i for i, g in upper if q in g and not g.startswith(q)]
            rows = exact + prefix + rest
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()

    # --- Qt model -----------------------------------------------------------------------------
    def rowCount(self, parent=None) -> int:  # noqa: N802 - Qt naming
        return 0 if parent is not None and parent.isValid() else len(self._rows)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        i = self._rows[index.row()]
        gene, r, threshold = self._genes[i], self._r[i], self._threshold
        if role == Qt.ItemDataRole.DisplayRole:
            return row_text(gene, r, threshold)
        if role == GENE_ROLE:
            return gene
        if role == R_ROLE:
            return r
        if role == Qt.ItemDataRole.ToolTipRole and threshold is not None and not r >= threshold:
            if math.isfinite(r):
                return f"{gene}: held-out r {r:.2f} < {threshold:g}: do not trust this map"
            return f"{gene}: no held-out reliability"
        return None

    def flags(self, index):
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable if index.isValid() else Qt.ItemFlag.NoItemFlags

    def first_gene(self) -> str | None:
        """The top row's gene (what Enter picks), or ``None``."""
        return self._genes[self._rows[0]] if self._rows else None

    def genes(self) -> list[str]:
        """The listed genes, in model order."""
        return list(self._genes)

    def stringList(self) -> list[str]:  # noqa: N802 - the QStringListModel call it replaces
        return self.genes()

"""Explore's answer to a gene that the model does not predict: say so, and offer the measured gene when
the section's spots have it."""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from ..layer_data import KEY, layer_adata, role


def measured_layer(viewer, layer):
    """The measured spots layer beside ``layer`` (its ``source``), or ``layer`` itself when measured."""
    if layer is None:
        return None
    if role(layer) == "spots":
        return layer
    source = layer.metadata.get(KEY, {}).get("source")
    return viewer.layers[source] if source and source in viewer.layers else None


class MissingGene(QWidget):
    """A line saying that a gene is not in the chosen layer, and a button to show it measured."""

    def __init__(self, viewer, show_measured: Callable[[object, str], None]) -> None:
        super().__init__()
        self.viewer, self._show_measured = viewer, show_measured
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.offer = QPushButton("")
        self.offer.clicked.connect(self._accept)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.text)
        box.addWidget(self.offer)
        self._pending: tuple[object, str] | None = None
        self.hide()

    def explain(self, query: str, layer) -> bool:
        """Say whether ``query`` (a gene name typed in the search) is missing from ``layer``; returns
        ``True`` when something was said (the gene is in neither list: the line stays hidden)."""
        query = query.strip()
        adata = layer_adata(layer) if layer is not None else None
        if not query or adata is None or query in adata.var_names:
            self.clear()
            return False
        genes = {g.upper(): str(g) for g in adata.var_names}
        if query.upper() in genes:  # typed in another case: not missing
            self.clear()
            return False
        what = "the model" if role(layer) != "spots" else layer.name
        said = f"{query} is not among the {adata.n_vars} genes of {what}"
        measured = measured_layer(self.viewer, layer)
        sample = layer_adata(measured) if measured is not None else None
        has = sample is not None and query in sample.var_names and measured is not layer
        self._pending = (measured, query) if has else None
        if has:
            said += f"; it is measured in {measured.name}"
            self.offer.setText(f"Show measured {query} ({measured.name})")
        else:
            said += " (retrain with it in the Genes field, e.g. hvg:200+" + query + ")"
        self.offer.setVisible(has)
        self.text.setText(said)
        self.show()
        return True

    def clear(self) -> None:
        self._pending = None
        self.text.setText("")
        self.hide()

    def _accept(self) -> None:
        if self._pending is not None:
            layer, gene = self._pending
            self.clear()
            self._show_measured(layer, gene)

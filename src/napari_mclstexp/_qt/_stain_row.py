"""The Predict step's stain choice (auto / none / a reference file) and two small swatches: the slide's stain beside
the model's (:mod:`napari_mclstexp.predict.stain_choice`)."""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ._common import PathEdit

CHOICES = ("auto (to the model's stain)", "none (as scanned)", "reference file…")


def _swatch(tooltip: str) -> QLabel:
    label = QLabel()
    label.setFixedSize(14, 14)
    label.setToolTip(tooltip)
    return label


class StainChoice(QWidget):
    """Combo + optional reference file; swatches show haematoxylin and eosin of the model and of the last slide."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.combo = QComboBox()
        self.combo.addItems(CHOICES)
        self.combo.setToolTip(
            "auto: each slide's stain, estimated once from its tissue, is mapped to the stain the model was "
            "trained on before its patches reach the model (models without one: as scanned)"
        )
        self.file = PathEdit("reference.json", filter="stain reference (*.json)")
        self.file.setVisible(False)
        self.combo.currentIndexChanged.connect(lambda i: self.file.setVisible(i == 2))
        self.model_swatches = [_swatch("model: haematoxylin"), _swatch("model: eosin")]
        self.slide_swatches = [_swatch("slide: haematoxylin"), _swatch("slide: eosin")]
        self.status = QLabel("")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        for text, pair in (("model", self.model_swatches), ("slide", self.slide_swatches)):
            row.addWidget(QLabel(text))
            for s in pair:
                row.addWidget(s)
        row.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo)
        layout.addWidget(self.file)
        layout.addLayout(row)

    def value(self) -> str:
        """The ``stain`` option of the prediction functions: ``"auto"``, ``"none"`` or the reference file."""
        index = self.combo.currentIndex()
        return ("auto", "none", self.file.text() or "none")[index]

    @staticmethod
    def _paint(pair: list[QLabel], estimate: dict | None) -> None:
        colours = None
        if estimate:
            from ..data.stain import StainEstimate

            colours = StainEstimate.from_dict(estimate).swatches()
        for i, label in enumerate(pair):
            rgb = None if colours is None else tuple(int(v) for v in colours[i])
            label.setStyleSheet(f"background: rgb{rgb}; border: 1px solid grey;" if rgb else "border: 1px dashed grey;")

    def show_model(self, bundle: Any) -> None:
        """The model's reference stain (dashed boxes: it has none)."""
        self._paint(self.model_swatches, (getattr(bundle, "metadata", None) or {}).get("reference_stain"))

    def show_record(self, record: dict | None) -> None:
        """A prediction's ``uns['mclstexp']['stain']``: the slide's estimate and whether it was mapped."""
        record = record or {}
        self._paint(self.slide_swatches, record.get("slide"))
        self.status.setText("mapped" if record.get("applied") else str(record.get("reason", "")))

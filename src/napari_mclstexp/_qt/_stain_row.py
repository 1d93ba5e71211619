"""The Predict step's stain choice (auto / none / a reference file) and two small swatches: the model's reference
stain beside the last slide's (the ``stain`` of :class:`~napari_mclstexp.predict.options.PredictOptions`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qtpy.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ._common import PathEdit

CHOICES = ("auto (toward the model's stains)", "none (as scanned)", "reference file…")


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
            "auto: each slide's stain, estimated once from its tissue, is compared with the model's training "
            "stains: within their spread the slide is predicted as scanned, further away it is moved toward the "
            "nearest training section's stain (models trained with --stain-normalize: mapped to their reference; "
            "models without stored stains: as scanned)"
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
        self._paint(self.model_swatches, None)
        self._paint(self.slide_swatches, None)

    def value(self) -> str:
        """The ``stain`` option: ``"auto"``, ``"none"`` or the reference file (``"none"`` until one is chosen)."""
        index = self.combo.currentIndex()
        return ("auto", "none", self.file.text() or "none")[index]

    @staticmethod
    def _paint(pair: list[QLabel], colours: Any) -> None:
        """Fill the two boxes with H and E colours (``(2, 3)`` RGB); dashed empty boxes for ``None``."""
        for i, label in enumerate(pair):
            rgb = None if colours is None else tuple(int(v) for v in colours[i])
            label.setStyleSheet(f"background: rgb{rgb}; border: 1px solid grey;" if rgb else "border: 1px dashed grey;")

    def show_bundle_file(self, path: str) -> None:
        """The chosen bundle's reference stain from its model card (no torch; dashed boxes: it has none)."""
        from ..bundle_file import read_card
        from ..errors import MclstexpError

        stain = None
        if path and Path(path).is_file():
            try:
                stain = read_card(path).get("stain")
            except MclstexpError:
                stain = None
        self._paint(self.model_swatches, [stain["haematoxylin"], stain["eosin"]] if stain else None)

    def show_record(self, record: dict | None) -> None:
        """A prediction's ``uns['mclstexp']['stain']``: the slide's estimate and whether it was mapped."""
        from ..data.stain import StainEstimate

        record = dict(record or {})
        slide = record.get("slide")
        self._paint(self.slide_swatches, StainEstimate.from_dict(slide).swatches() if slide else None)
        if record.get("applied") and record.get("nearest"):  # the rule of a model trained as scanned
            text = f"moved {100 * float(record.get('fraction', 1)):.0f} % toward {record['nearest']}'s stain"
        else:
            text = "mapped" if record.get("applied") else str(record.get("reason", ""))
        self.status.setText(text)

    def show_result(self, result: Any) -> None:
        """A finished run: a prediction's record is shown; anything else (a tissue mask, a failure) is not one."""
        uns = getattr(result, "uns", None)
        if uns is not None:
            self.show_record(uns.get("mclstexp", {}).get("stain"))


def stain_row(form: QFormLayout, bundle_path: PathEdit, task: Any) -> StainChoice:
    """The form's Stain row: its model swatches follow the chosen bundle, its slide swatches each finished run."""
    row = StainChoice()
    form.addRow("Stain", row)
    bundle_path.edit.textChanged.connect(row.show_bundle_file)
    task.finished.connect(row.show_result)
    return row

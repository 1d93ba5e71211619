"""A small colorbar and a categorical legend as Qt widgets (napari has no legend; Points colours set
as RGBA have no canvas colorbar)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from qtpy.QtGui import QColor, QImage, QPixmap
from qtpy.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from ._colors import gradient_image


class ColorBar(QWidget):
    """Horizontal gradient with the low/high limits and a title (gene and unit)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("")
        self.title.setWordWrap(True)
        self.gradient = QLabel()
        self.gradient.setMinimumHeight(12)
        # its pixmap follows the dock's width, and must not hold the dock wider than the window
        self.gradient.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.low, self.high = QLabel(""), QLabel("")
        ends = QHBoxLayout()
        ends.addWidget(self.low)
        ends.addStretch(1)
        ends.addWidget(self.high)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.gradient)
        layout.addLayout(ends)
        self._image: np.ndarray | None = None

    def set(self, colormap: str, limits: tuple[float, float], title: str = "") -> None:
        """Show ``colormap`` between ``limits`` with ``title``."""
        self._image = gradient_image(colormap, 256, 12)
        h, w, _ = self._image.shape
        qimage = QImage(self._image.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
        self.gradient.setPixmap(QPixmap.fromImage(qimage.copy()).scaled(max(120, self.width() - 4), 12))
        self.low.setText(f"{limits[0]:.3g}")
        self.high.setText(f"{limits[1]:.3g}")
        self.title.setText(title)


class Legend(QWidget):
    """Colour swatches with category names (and optional counts)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.entries: list[tuple[str, tuple[int, int, int]]] = []

    def set(self, names: Sequence[str], colors: np.ndarray, counts: Sequence[int] | None = None) -> None:
        """Show one row per category: swatch (``colors`` RGB 0–255), name, count."""
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None:
                item.widget().hide()  # out of the size and the picture now; deleted at Qt's next turn
                item.widget().deleteLater()
        self.entries = []
        for i, name in enumerate(names):
            rgb = tuple(int(c) for c in np.asarray(colors[i])[:3])
            swatch = QLabel()
            pixmap = QPixmap(14, 14)
            pixmap.fill(QColor(*rgb))
            swatch.setPixmap(pixmap)
            cells = [swatch, QLabel(str(name))] + ([QLabel(f"({counts[i]})")] if counts is not None else [])
            for j, cell in enumerate(cells):
                self.grid.addWidget(cell, i // 2, 3 * (i % 2) + j)
                # shown now, not at Qt's next turn: a box sized right after this (the canvas legend, set again
                # while shown) otherwise measures only the labels of the last set and shrinks to nothing
                cell.show()
            self.entries.append((str(name), rgb))

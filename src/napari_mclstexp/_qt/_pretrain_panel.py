"""Train widget panel: pretrain the encoder on the ticked slides (+ slides without ST), fill in Weights.

Thin: collects the slides, epochs and output file, runs
:func:`napari_mclstexp.workflows.pretrain.pretrain_and_save` in its own :class:`TaskPanel`, and puts the
written file in the Train widget's Weights field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtWidgets import QFormLayout, QGroupBox, QLabel, QSpinBox, QVBoxLayout, QWidget

from ..progress import CancelToken
from ._common import PathEdit, button
from ._worker import TaskPanel

#: Separator of several extra slide paths in one field.
SEPARATOR = ";"


class PretrainPanel(QGroupBox):
    """ "Pretrain encoder on these slides…": SimCLR on tissue tiles, then Weights = the new file.

    Parameters
    ----------
    sources
        Returns the Train widget's ticked sections (AnnData or ``.h5ad`` paths).
    settings
        Returns ``(preset, encoder or None, device)`` as the Train widget has them.
    weights
        The Train widget's Weights field, set to the written file on success.
    """

    def __init__(
        self,
        sources: Callable[[], list],
        settings: Callable[[], tuple[str, str | None, str]],
        weights: PathEdit,
        parent: QWidget | None = None,
    ) -> None:
        from ..workflows.pretrain import DEFAULT_EPOCHS  # the engine (torch) loads with the widget, not the plugin

        super().__init__("Self-supervised pretraining (experimental)", parent)
        self._sources, self._settings, self._weights = sources, settings, weights
        self.extra = PathEdit(
            "more slides without ST (optional; separate with ;)",
            filter="Images (*.tif *.tiff *.svs *.ndpi *.jpg *.png)",
        )
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(DEFAULT_EPOCHS)
        self.out = PathEdit("encoder.safetensors", mode="save", filter="Weights (*.safetensors)")
        form = QFormLayout()
        form.addRow("Extra slides", self.extra)
        form.addRow("Epochs", self.epochs)
        form.addRow("Save encoder to", self.out)
        self.task = TaskPanel()
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        self.start_button = button("Pretrain encoder on these slides…", self.pretrain)
        self.start_button.setToolTip(
            "SimCLR on tissue tiles of the ticked sections and the extra slides; the result fills "
            "Weights. Experimental: on a held-out HER2+ section it has not beaten random initialisation "
            "of the quick preset (benchmarks/README.md)"
        )
        layout.addWidget(self.start_button)
        layout.addWidget(self.task)
        layout.addWidget(self.result_label)
        #: Extra :func:`pretrain_and_save` keywords (e.g. few tiles in tests); not shown in the UI.
        self.options: dict[str, Any] = {}
        self.result = None

    def slides(self) -> list:
        """The ticked sections and the extra slide paths."""
        extra = [p.strip() for p in self.extra.text().split(SEPARATOR) if p.strip()]
        return list(self._sources()) + extra

    def pretrain(self):
        """Start pretraining; returns the worker or ``None``."""
        from ..workflows.pretrain import pretrain_and_save

        out, epochs, options = self.out.text(), self.epochs.value(), dict(self.options)

        def make(token: CancelToken):  # runs inside TaskPanel.start: a bad field becomes a notification
            slides = self.slides()
            preset, encoder, device = self._settings()
            return pretrain_and_save(
                slides, out, preset=preset, encoder=encoder, epochs=epochs, device=device, cancel=token, **options
            )

        return self.task.start(make, self._done, description="Pretrain encoder")

    def _done(self, saved) -> None:
        self.result = saved
        res = saved.result
        loss = res.history[-1]["loss"] if res.history else float("nan")
        self._weights.setText(str(saved.path))
        self.result_label.setText(
            f"saved {saved.path} · {res.n_tiles} tiles · final loss {loss:.3f} · now in Weights: press Train"
        )

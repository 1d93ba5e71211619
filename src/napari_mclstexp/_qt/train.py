"""Train widget: sections (spots layers or files), gene panel, preset, epochs, device → a bundle file."""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QWidget,
)

from ..errors import InputError, WeightsUnavailableError
from ..process_gate import ProcessGate
from ..progress import CancelToken
from . import _background, _collector
from ._common import PathEdit, button, connect_while_alive, scroll_layout, viewer_models
from ._devices import device_combo
from ._encoder_fields import EncoderFields
from ._layers import layer_adata, layers_with_role
from ._state import section_in_view
from ._toasts import notify
from ._torch_libs import preload_torch_libraries
from ._worker import TaskPanel

PRESETS = ("quick", "default", "paper")


def train_and_save(
    samples: list,
    preset: str,
    *,
    epochs: int | None,
    genes: Any,
    device: str,
    out: str,
    overrides: dict | None = None,
    cancel: CancelToken | None = None,
    in_process: bool = True,
    tissue: str | None = None,
    notes: str | None = None,
    gate: ProcessGate | None = None,
):
    """Generator: the widget's parameters → :func:`~napari_mclstexp.workflows.train.train_and_save`
    (patch cache, checkpoint beside the bundle, resumed after a Cancel when it still matches).

    ``in_process``: train in a worker process (:mod:`~napari_mclstexp.workflows.train_worker`: the
    viewer never waits for the training loop's GIL); ``False`` trains in the calling thread.
    ``tissue`` and ``notes`` go into the model card (as ``train --tissue --notes``; empty: not given).
    ``gate`` holds the worker process while the viewer works (:mod:`._background`).

    Returns the :class:`~napari_mclstexp.workflows.train.SavedModel`.
    """
    preload_torch_libraries()  # this worker's first import of torch then holds the GIL ~70 ms at a time, not ~0.3 s
    from ..model.presets import get_preset
    from ..workflows.train import train_and_save as in_thread
    from ..workflows.train_progress import one_bar
    from ..workflows.train_worker import torch_threads, train_in_process, worker_threads

    if not samples:
        raise InputError("tick at least one section to train on")
    changes = dict(overrides or {})
    if epochs is not None:
        changes["epochs"] = int(epochs)
    config = get_preset(preset).replace(**changes)
    kwargs = dict(genes=genes, device=device, resume="auto", add_suffix=True, cancel=cancel)
    kwargs.update(tissue=(tissue or "").strip() or None, notes=(notes or "").strip() or None)
    try:
        if in_process:  # a training loop in a thread holds the GIL and the viewer stalls
            return (yield from train_in_process(samples, config, out, gate=gate, **kwargs))
        with torch_threads(worker_threads(device)):  # as in the worker: one core left to the GUI
            return (yield from one_bar(in_thread(samples, config, out, **kwargs)))
    except WeightsUnavailableError as err:
        if config.weights != "imagenet":
            raise
        # the engine's message names the CLI's --weights flag; say it in the widget's terms
        cause = err.__cause__ or err
        raise WeightsUnavailableError(
            f"cannot download the ImageNet weights of the {preset!r} preset's {config.encoder} encoder "
            f"({type(cause).__name__}: {cause}; offline?): put a local .pth/.safetensors file in the "
            "Weights field, or 'none' (random initialisation), or choose the quick preset (it needs "
            "no pretrained weights)"
        ) from err


class TrainWidget(QWidget):
    """Train an mclSTExp model in the background; Cancel stops within one step."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        _collector.watch(self, napari_viewer)
        self.viewer = napari_viewer
        self.sections = QListWidget()
        self.sections.setToolTip("spots layers and files to train on (ticked ones are used)")
        self._user_ticked: set[str] = set()  # ticks the user set: kept; the others follow the view
        self.sections.itemChanged.connect(lambda item: self._user_ticked.add(item.text()))
        self.files = PathEdit("add a .h5ad section…", filter="AnnData (*.h5ad)")
        self.genes = QLineEdit()
        self.genes.setPlaceholderText("all common genes | hvg:N | ERBB2, CD74, … | gene list file")
        self.preset = QComboBox()
        self.preset.addItems(PRESETS)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(5)
        self.encoder_fields = EncoderFields()  # encoder, Weights (file picker), frozen/partial, head
        self.weights = self.encoder_fields.weights
        self.device = device_combo()
        self.tissue = QLineEdit()
        self.tissue.setPlaceholderText("e.g. breast, HER2+, H&E (for the model card)")
        self.notes = QLineEdit()
        self.notes.setPlaceholderText("source, protocol, caveats (for the model card)")
        self.stain_normalize = QCheckBox("map every section to one stain")
        self.stain_normalize.setToolTip(
            "off (default): sections are trained as scanned; the model stores their stains and Predict's 'auto' "
            "moves a slide stained outside them toward the nearest one. On: every section (and every new slide) "
            "is mapped to one pooled stain: measured to cost 0.035 ACG on HER2+ C4 as scanned (docs/accuracy.md)"
        )
        self.stain_augment = QDoubleSpinBox()
        self.stain_augment.setRange(0.0, 0.3)
        self.stain_augment.setSingleStep(0.01)
        self.stain_augment.setSpecialValueText("off")
        self.stain_augment.setToolTip(
            "random stain perturbation while training (H, E amounts × 1 ± S, shifted by ± S); 0.05 changed "
            "HER2+ C4 by -0.001 as scanned and added nothing beside Predict's 'auto' (docs/accuracy.md)"
        )
        stain = QHBoxLayout()
        stain.addWidget(self.stain_normalize)
        stain.addWidget(QLabel("augment"))
        stain.addWidget(self.stain_augment)
        self.out = PathEdit("model.mclst", mode="save", filter="mclSTExp bundle (*.mclst)")
        form = QFormLayout()
        form.addRow("Sections", self.sections)
        form.addRow("", self.files)
        form.addRow("", button("Add file", self._add_file))
        form.addRow("Genes", self.genes)
        form.addRow("Preset", self.preset)
        form.addRow("Epochs", self.epochs)
        form.addRow(self.encoder_fields)
        form.addRow("Device", self.device)
        form.addRow("Tissue", self.tissue)
        form.addRow("Notes", self.notes)
        form.addRow("Stain", stain)
        form.addRow("Save to", self.out)
        self.task = TaskPanel()
        self.task.background = True  # the viewer's own work holds it (the other steps' tasks, layer steps)
        self.task.finished.connect(self._forget_gate)
        self._gate: ProcessGate | None = None
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        layout = scroll_layout(self)
        layout.addLayout(form)
        layout.addWidget(button("Train", self.train))
        layout.addWidget(self.task)
        layout.addWidget(self.result_label)
        layout.addStretch(1)
        #: Extra :class:`TrainConfig` fields (e.g. tiny patches in tests); not shown in the UI.
        self.config_overrides: dict = {}
        self.bundle = None
        connect_while_alive(
            self,
            self.refresh_sections,
            napari_viewer.layers.events.inserted,
            napari_viewer.layers.events.removed,
            napari_viewer.layers.selection.events.active,
        )
        self.refresh_sections()

    def refresh_sections(self, *_args) -> None:
        """List the viewer's spots layers (ticked by default) and keep added files."""
        ticked = {
            self.sections.item(i).text(): self.sections.item(i).checkState() for i in range(self.sections.count())
        }
        files = [t for t in ticked if t.startswith("file: ")]
        spots = layers_with_role(self.viewer, "spots")
        in_view = section_in_view(self.viewer, spots) if len(spots) > 1 else None  # to be scored: unticked
        self.sections.blockSignals(True)
        self.sections.clear()
        for name in [layer.name for layer in spots] + files:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            default = Qt.CheckState.Unchecked if name == in_view else Qt.CheckState.Checked
            item.setCheckState(ticked[name] if name in self._user_ticked else default)
            self.sections.addItem(item)
        self.sections.blockSignals(False)

    def _add_file(self) -> None:
        if self.files.text():
            self.sections.addItem(f"file: {self.files.text()}")
            item = self.sections.item(self.sections.count() - 1)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.files.setText("")

    def set_checked(self, names: list[str]) -> None:
        """Tick exactly the sections named ``names``."""
        for i in range(self.sections.count()):
            item = self.sections.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names else Qt.CheckState.Unchecked)

    def selected_samples(self) -> list:
        """The ticked sections: AnnData for layers, paths (``str``) for files (read by the worker)."""
        samples: list = []
        for i in range(self.sections.count()):
            item = self.sections.item(i)
            if item.checkState() != Qt.CheckState.Checked:
                continue
            name = item.text()
            if name.startswith("file: "):
                samples.append(name[len("file: ") :])
            elif name in self.viewer.layers:
                samples.append(layer_adata(self.viewer.layers[name]))
        return samples

    def overrides(self) -> dict:
        """:class:`TrainConfig` changes: :attr:`config_overrides`, the encoder fields (Weights when set) and
        the Stain row when it differs from the presets (normalisation and augmentation off)."""
        stain: dict = {}
        if self.stain_normalize.isChecked():
            stain["stain_normalize"] = True
        if self.stain_augment.value() > 0:
            stain["stain_augment"] = round(float(self.stain_augment.value()), 3)
        return {**self.config_overrides, **self.encoder_fields.changes(), **stain}

    def _genes_spec(self) -> Any:
        """The Genes field as a panel spec: ``None`` (all shared genes), ``hvg:N``, a file path, or
        gene names separated by commas or spaces (a list)."""
        from ..data.genes import parse_gene_spec

        return parse_gene_spec(self.genes.text())

    def train(self):
        """Start training with the widget's parameters; returns the worker or ``None``."""
        out = self.out.text()
        preset, epochs, device = self.preset.currentText(), self.epochs.value(), self.device.currentText()
        overrides, genes = self.overrides(), self._genes_spec()
        about = {"tissue": self.tissue.text(), "notes": self.notes.text()}

        sources = self.selected_samples()

        def make(token: CancelToken):
            return train_and_save(
                sources,
                preset,
                epochs=epochs,
                genes=genes,
                device=device,
                out=out,
                overrides=overrides,
                cancel=token,
                gate=gate,
                **about,
            )

        gate = ProcessGate()
        worker = self.task.start(make, self._done, description="Train")
        if worker is not None:
            self._gate = gate
            _background.register(gate, self.task.show_held)
        return worker

    def _forget_gate(self, *_args) -> None:
        if self._gate is not None:
            _background.unregister(self._gate)
            self._gate = None

    def _done(self, saved) -> None:
        self.bundle = bundle = saved.bundle
        event = self.task.last_event
        loss = event.metrics.get("loss") if event is not None else None
        path = str(saved.path)
        self.result_label.setText(
            f"saved {path} · {len(bundle.genes)} genes"
            + (f" · last loss {loss:.4g}" if loss is not None else "")
            + (f" · resumed after epoch {saved.resumed_from_epoch}" if saved.resumed_from_epoch else "")
        )
        notify("info", f"saved model {saved.path.name} ({len(bundle.genes)} genes) in {saved.path.parent}")
        viewer_models(self.viewer).saved(path)

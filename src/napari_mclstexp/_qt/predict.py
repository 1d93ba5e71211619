"""Predict widget: a bundle → predictions at a sample's spots, or over a whole slide (streamed tiles)."""

from __future__ import annotations

import threading
from pathlib import Path

from napari.utils.notifications import show_error
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QSpinBox, QWidget

from ..device import release_gpu_memory
from ..errors import InputError
from ..layer_data import KEY, layer_adata, predicted_spots_layer, section_of
from ..layer_data.predictions import uncertainty_spots_layer
from ..predict.options import PredictOptions
from ..prediction_meta import gene_values
from ..progress import CancelToken
from ..sample import image_path, microns_per_pixel
from . import _collector
from ._canvas import show_predicted_gene
from ._colors import auto_limits
from ._common import LayerCombo, PathEdit, add_layer_tuples, button, scroll_layout, viewer_models
from ._devices import device_combo
from ._gui_steps import GuiSteps, add_quietly, queue_layers, select_layer
from ._novelty import metadata_view, novelty_layer, show_card, warn_inputs, warn_novelty, warn_other_genes
from ._predict_text import score_text, showing, training_note
from ._stain_row import stain_row
from ._tile_stream import TileBuffer, add_stream_layer, paint_tiles, stream_gene_index, wait_for_gui
from ._tissue_layer import add_tissue_layer, layer_mask, painting_tool_steps, tissue_layer_for, warm_tissue_colormap
from ._torch_libs import preload_torch_libraries
from ._worker import DEFERRED, TaskPanel, error_message, run_guarded

MODES = ("at spots", "whole slide")


class PredictWidget(QWidget):
    """Run a trained bundle at spots or over a slide; adds predicted, uncertainty or dense layers."""

    #: ``(run, TileGrid, threading.Event)``: the engine announced the grid of a whole-slide run (from the
    #: worker thread, which waits until the GUI sets the event: the streaming layer is in).
    grid_ready = Signal(int, object, object)

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        _collector.watch(self, napari_viewer)
        self.viewer = napari_viewer
        self.bundle_path = PathEdit("model.mclst", filter="mclSTExp bundle (*.mclst)")
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.spots = LayerCombo(napari_viewer, ["spots"])
        self.slide = LayerCombo(napari_viewer, ["slide"])
        self.step = QSpinBox()
        self.step.setRange(0, 100000)
        self.step.setSpecialValueText("auto")
        self.step.setSuffix(" px")
        self.device = device_combo()
        self.smooth = QCheckBox("blend each spot with its neighbours")
        self.smooth.setChecked(True)
        self.smooth.setToolTip(
            "Neighbour smoothing at the weight the model chose on held-out training data "
            "(expression is spatially smooth; uses only this slide's own predictions). Untick for each "
            "spot or tile on its own."
        )
        form = QFormLayout()
        form.addRow("Bundle", self.bundle_path)
        form.addRow("Where", self.mode)
        form.addRow("Spots", self.spots)
        form.addRow("Slide", self.slide)
        form.addRow("Tile step", self.step)
        form.addRow("Device", self.device)
        form.addRow("Smooth", self.smooth)
        self.task = TaskPanel()
        self.stain = stain_row(form, self.bundle_path, self.task)  # auto / none / file; model's and slide's stain
        self.task.bar.valueChanged.connect(lambda *_: self._flush_tiles())
        self.task.finished.connect(self._keep_partial)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.card = QLabel("")  # the chosen bundle's model card: one line, the whole card as tooltip
        self.card.setWordWrap(True)
        self.bundle_path.edit.textChanged.connect(lambda text: show_card(self.bundle_path, self.card, text))
        layout = scroll_layout(self)
        layout.addLayout(form)
        layout.addWidget(self.card)
        layout.addWidget(button("Predict", self.predict))
        self.detect_button = button("Detect tissue (check or paint it, then Predict)", self.detect_tissue)
        layout.addWidget(self.detect_button)
        self.release_button = button("Release GPU memory", self.release_memory)
        self.release_button.setVisible(device_combo().count() > 1)  # nothing to release on a CPU-only machine
        layout.addWidget(self.release_button)
        layout.addWidget(self.task)
        layout.addWidget(self.info)
        layout.addStretch(1)
        self._bundle = None
        self._bundle_key: tuple | None = None
        models = viewer_models(napari_viewer)
        models.bundle_saved.connect(self._offer_bundle)
        self._offer_bundle(models.last_bundle)
        self._tiles = TileBuffer()
        self._stream = self._grid = self._stream_slide = None
        self._gene_index = 0
        self._run = 0
        #: Layers and canvas overlays go in one per event-loop turn (each costs napari 0.1–0.3 s).
        self.steps = self.task.steps = GuiSteps(self, on_error=self._step_failed)
        self.grid_ready.connect(self._queue_stream)
        self._tissue_found: list[tuple] = []
        self._dense = None
        self.result = None
        #: Tiles drawn into the streaming layer during the last whole-slide run.
        self.streamed_tiles = 0

    def _offer_bundle(self, path: str) -> None:
        """Fill an empty Bundle field with a bundle Train just saved."""
        if path and not self.bundle_path.text():
            self.bundle_path.setText(path)

    def check_bundle(self) -> dict:
        """The chosen bundle's metadata, its file checked without reading the model (no torch)."""
        from ..bundle_file import check_bundle_file

        if not self.bundle_path.text():
            raise InputError("choose a model bundle (.mclst) first")
        return check_bundle_file(self.bundle_path.text())

    def load_bundle(self):
        """The chosen bundle (cached while the file is unchanged)."""
        from ..bundle import load_bundle

        path = Path(self.bundle_path.text())
        if not self.bundle_path.text():
            raise InputError("choose a model bundle (.mclst) first")
        key = (str(path), path.stat().st_mtime_ns) if path.exists() else (str(path), None)
        if self._bundle is None or self._bundle_key != key:
            self._bundle, self._bundle_key = load_bundle(path), key
        return self._bundle

    def options(self) -> PredictOptions:
        """The :class:`~napari_mclstexp.predict.options.PredictOptions` the controls ask for."""
        device, smooth = self.device.currentText(), self.smooth.isChecked()
        return PredictOptions(device=device, smooth=smooth, stain=self.stain.value())

    def predict(self):
        """Start predicting with the widget's parameters; returns the worker or ``None``."""
        if self.task.running:
            show_error("A prediction is already running: wait for it or press Cancel.")
            return None
        # only its file is checked here; the bundle is read in the worker (torch, its first import
        # included, took seconds of the GUI thread)
        checked = run_guarded(lambda: (self.check_bundle(), self.options()), self.task.status)  # a bad stain file
        if checked is None:
            return None
        bundle, options = metadata_view(checked[0]), checked[1]  # what the guards read, without loading the model
        if self.mode.currentText() == "at spots":
            layer = self.spots.layer()
            if layer is None:
                return self.task.fail("Load spots first (Load widget).")
            adata = layer_adata(layer)
            if image_path(adata) is None:
                return self.task.fail(
                    f"no H&E slide for these spots; open the full-resolution slide in "
                    f"Load → Slide together with the spots, then predict ({layer.name})"
                )
            self._source = layer
            warn_inputs(bundle, microns_per_pixel(adata), adata.var_names)

            def make(token: CancelToken):
                def run():
                    preload_torch_libraries()  # torch's first import then holds the GIL ~70 ms at a time
                    from ..workflows.predict import predict_and_score

                    bundle = self.load_bundle()
                    return (yield from predict_and_score(bundle, adata, options, cancel=token))

                return run()

            return self.task.start(make, self._add_spot_predictions, description="Predict")
        slide_layer = self.slide.layer()
        if slide_layer is None:
            return self.task.fail("Open a slide first (Load widget).")
        meta = slide_layer.metadata[KEY]
        warn_inputs(bundle, meta.get("mpp"))
        self._start_stream(slide_layer)
        run_id, step = self._run, self.step.value() or None
        # auto step: half a patch on an accelerator (4x the tiles, a finer map), a whole patch on CPU
        per_patch = 1 if str(options.device).startswith("cpu") else 2
        checked = tissue_layer_for(self.viewer, slide_layer)
        tissue = layer_mask(checked) if checked is not None else None
        self._tissue_found = []

        def make_slide(token: CancelToken):
            from ..predict.slide import predict_whole_slide
            from ..predict.tissue import iter_slide_tissue_mask

            def run():
                preload_torch_libraries()  # torch's first import then holds the GIL ~70 ms at a time
                bundle = self.load_bundle()
                self._gene_index = stream_gene_index(bundle)
                mask = tissue
                warm_tissue_colormap()  # here in the worker, not when the mask's layer goes in
                if mask is None:  # shown (and editable) from the first tile on, and used as shown
                    mask = yield from iter_slide_tissue_mask(meta["slide_path"], cancel=token)
                    self._tissue_found.append((slide_layer, *mask))
                return (
                    yield from predict_whole_slide(
                        bundle,
                        meta["slide_path"],
                        options,
                        step_px=step,
                        tiles_per_patch=per_patch,
                        cancel=token,
                        on_tile=self._tiles,
                        mpp=meta.get("mpp"),
                        tissue=mask,
                        on_grid=lambda grid: self._hand_over(run_id, grid, token),
                    )
                )

            return run()

        return self.task.start(make_slide, self._add_dense, description="Predict slide")

    def detect_tissue(self):
        """Detect the chosen slide's tissue and show it as an editable Labels layer (no prediction)."""
        slide_layer = self.slide.layer()
        if slide_layer is None:
            return self.task.fail("Open a slide first (Load widget).")
        path = slide_layer.metadata[KEY]["slide_path"]

        def make(token: CancelToken):
            from ..predict.tissue import iter_slide_tissue_mask

            def run():
                warm_tissue_colormap()  # here in the worker, not when the mask's layer goes in
                return (yield from iter_slide_tissue_mask(path, cancel=token))

            return run()

        return self.task.start(make, lambda found: self._then_complete(found, slide_layer), description="Detect tissue")

    def _then_complete(self, found, slide_layer) -> object:
        self.steps.add(lambda: self._show_tissue(slide_layer, *found), lambda: self.task.complete(found))
        return DEFERRED

    def _step_failed(self, err: BaseException) -> None:
        """A layer step failed: while the worker runs, stop it and say why; else end the run with it."""
        if self.task.running:
            self.task.cancel()
            self.task.fail(error_message(err))
        else:
            self.task.complete(None, err)

    def _show_tissue(self, slide_layer, mask, scale) -> None:
        if slide_layer in self.viewer.layers:  # drawn in the next step: a Labels layer is heavy
            layer = add_tissue_layer(self.viewer, slide_layer, mask, scale, visible=False, select=False)
            show = lambda: setattr(layer, "visible", True)  # noqa: E731
            select = lambda: select_layer(self.viewer, layer, self.steps)  # noqa: E731
            self.steps.next(show, *painting_tool_steps(layer), select)
            self.info.setText(
                f"tissue: {mask.mean():.0%} of the slide; paint or erase it in the tissue layer (label 1), then Predict"
            )

    def _add_spot_predictions(self, pred) -> object:
        """The hidden uncertainty layer, the predictions above it (selected), the gene's colour bar,
        its name on the canvas: in :class:`GuiSteps` steps (:func:`queue_layers`), then the run is done."""
        from ..analysis.reliability import best_gene, reliability_map
        from ._canvas import show_colorbar

        self.result, source = pred, self._source
        mpp = source.metadata[KEY].get("mpp")
        gene = best_gene(
            list(map(str, pred.var_names)), reliability_map(pred.uns.get("mclstexp", {}).get("reliability")), pred.X
        )
        tuples = [
            uncertainty_spots_layer(pred, mpp, name=f"{source.name} uncertainty"),
            *filter(None, [novelty_layer(pred, mpp, f"{source.name} novelty")]),
            predicted_spots_layer(pred, mpp, gene=gene, name=f"{source.name} predicted"),
        ]
        for _, kwargs, _ in tuples:
            kwargs["metadata"][KEY]["source"] = source.name
        added: list = []  # the uncertainty, then the predictions above it (selected: the last added)
        queue_layers(self.steps, self.viewer, tuples, added)
        if gene is not None:
            values = gene_values(pred, gene)
            self.steps.add(
                lambda: show_colorbar(added[-1], "viridis", auto_limits(values)),
                lambda: show_predicted_gene(self.viewer, added[-1], gene, values),
            )
        self.steps.add(lambda: self._spots_done(pred, gene, added[-1]))
        return DEFERRED

    def _spots_done(self, pred, gene: str | None, layer) -> None:
        text = f"{pred.n_obs} spots × {pred.n_vars} genes predicted" + showing(gene)
        scores = pred.uns.get("mclstexp", {}).get("vs_measured")
        if scores:
            text += f"; vs measured {self._source.name}: {score_text(scores)}"
        if self._bundle is not None:
            text += training_note(self._bundle.metadata, layer_adata(self._source))
        self.info.setText(text)
        self.task.status.setText(f"Predict: done, {pred.n_obs} spots")
        warn_other_genes(pred, self._source, self._bundle)
        warn_novelty(self.viewer, pred)
        if gene is not None:
            viewer_models(self.viewer).predictions_added.emit(layer.name, gene)
        self.task.complete(pred)

    def _start_stream(self, slide_layer) -> None:
        """Get ready for a whole-slide run's tiles; the layer they fill in comes with the engine's grid."""
        self._tiles.drain()
        self.streamed_tiles = 0
        self._stream, self._grid = None, None
        self._run += 1
        self._stream_slide = slide_layer

    def _hand_over(self, run: int, grid, token: CancelToken) -> None:
        """(Worker) Announce the grid; go on once the GUI has the tissue and streaming layers in."""
        ready = threading.Event()
        self.grid_ready.emit(run, grid, ready)
        wait_for_gui(ready, token)

    def _queue_stream(self, run: int, grid, ready: threading.Event) -> None:
        self._flush_tiles()  # the tissue mask (a step) before the streaming layer
        self.steps.add(lambda: self._add_stream(run, grid), ready.set)

    def _add_stream(self, run: int, grid) -> None:
        """The streaming Image layer (:func:`add_stream_layer`) that fills in as tiles arrive; a step
        queued when the engine announces its grid."""
        if run != self._run or self._stream is not None or self._stream_slide is None:
            return  # a late grid of an earlier run
        self._grid = grid
        self._stream = stream = add_stream_layer(self.viewer, self._stream_slide, grid)  # hidden, unselected
        self.steps.next(lambda: setattr(stream, "visible", True))  # drawn in a step of its own

    def _flush_tiles(self) -> None:
        while self._tissue_found:  # the mask this run uses, shown as soon as it is known (a step)
            found = self._tissue_found.pop()
            self.steps.add(lambda found=found: self._show_tissue(*found))
        if self._stream is None:
            return
        items = self._tiles.drain()
        if items:
            self.streamed_tiles += paint_tiles(self._stream, self._grid, items, self._gene_index)

    def _keep_partial(self, result) -> None:
        """After a failed or cancelled whole-slide run, keep the tiles drawn so far, labelled (``finished``
        comes after the queued steps: the streaming layer is in by then)."""
        if result is None and self._stream is not None:
            self._flush_tiles()
            self._stream.name = self._stream.name.replace("(streaming)", "(partial)")
            self._stream = None

    def _add_dense(self, pred) -> object:
        """The streaming layer becomes the predictions' dense layer (no second layer to build: adding
        one costs the GUI thread 0.2–0.5 s), coloured by the most reliable gene, its colour bar, its name
        on the canvas: one :class:`GuiSteps` step each, then the run is done."""
        from ..analysis.reliability import best_gene, reliability_map
        from ._canvas import show_colorbar

        self.result = pred
        gene = best_gene(
            list(map(str, pred.var_names)), reliability_map(pred.uns.get("mclstexp", {}).get("reliability")), pred.X
        )
        steps = [lambda: self._dense_layer(pred, gene)]
        if gene is not None:
            values = gene_values(pred, gene)
            steps += [
                lambda: show_colorbar(self._dense, "viridis", auto_limits(values)),
                lambda: show_predicted_gene(self.viewer, self._dense, gene, values),
            ]
        self.steps.add(*steps, lambda: self._dense_done(pred, gene))
        return DEFERRED

    def _dense_layer(self, pred, gene: str | None) -> None:
        from ..layer_data.predictions import dense_layer

        self._flush_tiles()
        slide = self.slide.layer()
        mpp = slide.metadata[KEY].get("mpp") if slide is not None else None
        name = f"{section_of(slide.name)} predicted tiles" if slide is not None else None
        image, kwargs, _ = dense_layer(pred, mpp, gene=gene, name=name)
        layer, self._stream = self._stream, None
        if layer is None or layer not in self.viewer.layers or layer.data.shape != image.shape:
            if layer is not None and layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
            (layer,) = add_layer_tuples(self.viewer, [(image, kwargs, "image")])
        else:
            layer.data, layer.metadata = image, kwargs["metadata"]
            layer.contrast_limits, layer.name = kwargs["contrast_limits"], kwargs["name"]
        self._dense = layer
        self.steps.next(lambda: select_layer(self.viewer, layer, self.steps))  # a paint of its own

    def _dense_done(self, pred, gene: str | None) -> None:
        """The hidden novelty layer (a step: added unselected, the tiles stay selected), then the run is done."""
        self.info.setText(f"{pred.n_obs} tiles × {pred.n_vars} genes predicted" + showing(gene))
        slide = self.slide.layer()
        extra = novelty_layer(pred, slide.metadata[KEY].get("mpp") if slide else None, f"{self._dense.name} novelty")
        if extra is not None:
            add_quietly(self.viewer, extra)
        self.steps.next(lambda: self._dense_finish(pred, gene))

    def _dense_finish(self, pred, gene: str | None) -> None:
        warn_novelty(self.viewer, pred)
        if gene is not None:
            viewer_models(self.viewer).predictions_added.emit(self._dense.name, gene)
        self.task.complete(pred)

    def release_memory(self) -> None:
        """Drop the cached bundle/model and free accelerator memory."""
        self._bundle, self._bundle_key = None, None
        self.info.setText(release_gpu_memory())

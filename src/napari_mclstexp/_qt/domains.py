"""Domains widget: cluster spots or whole-slide tiles (predicted expression or image embeddings), colour
them by domain with a legend (tiles: a Labels domain map), and show ARI/NMI against reference labels when
there are any."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from qtpy.QtWidgets import QComboBox, QFormLayout, QLabel, QSpinBox, QWidget

from ..io.export import category_colors
from ..layer_data import KEY, layer_adata, role, spots_layer
from ..progress import CancelToken
from ..sample import library_id
from ..workflows.domains import domains_task
from . import _collector
from ._canvas_follow import follow_selection
from ._colorbar import Legend
from ._common import LayerCombo, button, scroll_layout
from ._gui_steps import GuiSteps, add_quietly, insert_quietly
from ._tissue_layer import warm_tissue_colormap
from ._worker import DEFERRED, TaskPanel

SOURCES = {"predicted expression": "expression", "image embeddings": "embedding"}
NO_TRUTH = "(none)"
#: The k field's lowest value, shown as "auto": the number of domains is chosen by silhouette.
AUTO = 1


def domain_layer_name(predictions: str, library: str, *, dense: bool) -> str:
    """``C4 domains`` for tiles of ``C4 predicted tiles`` (a dense layer Explore renamed after a gene, e.g.
    ``predicted ERBB2``, or one of a slide named after its file, falls back to the sample's ``library``);
    ``<predictions> domains`` for spots."""
    if not dense:
        return f"{predictions} domains"
    for suffix in (" predicted tiles", " predicted"):
        base = predictions[: -len(suffix)] if predictions.endswith(suffix) else ""
        if base and not Path(base).suffix:  # a slide named after its file: the library is its stem
            return f"{base} domains"
    return f"{library} domains"


class DomainsWidget(QWidget):
    """Find k spatial domains; adds a categorical Points layer with a legend."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        _collector.watch(self, napari_viewer)
        self.viewer = napari_viewer
        self.target = LayerCombo(napari_viewer, ["predicted", "dense"])
        self.target.currentIndexChanged.connect(lambda *_: self.refresh_truth())
        self.k = QSpinBox()  # its lowest value reads "auto": k by the best silhouette (choose_k)
        self.k.setRange(AUTO, 50)
        self.k.setSpecialValueText("auto")
        self.k.setValue(AUTO)
        self.k.setToolTip("auto: the k of 2–10 whose domains are most compact and apart (mean silhouette)")
        self.source = QComboBox()
        self.source.addItems(list(SOURCES))
        self.truth = QComboBox()
        form = QFormLayout()
        form.addRow("Predictions", self.target)
        form.addRow("Domains (k)", self.k)
        form.addRow("From", self.source)
        form.addRow("Reference labels", self.truth)
        self.task = TaskPanel()
        #: The layer, its drawing and the legend go in one per event-loop turn (a layer costs 0.1–0.5 s).
        self.steps = self.task.steps = GuiSteps(self, on_error=lambda err: self.task.complete(None, err))
        self.scores = QLabel("")
        self.legend = Legend()
        layout = scroll_layout(self)
        layout.addLayout(form)
        layout.addWidget(button("Find domains", self.run))
        layout.addWidget(self.task)
        layout.addWidget(self.scores)
        layout.addWidget(self.legend)
        layout.addStretch(1)
        self.labels: np.ndarray | None = None
        self.score_values: dict = {}
        self.refresh_truth()

    def _truth_frames(self) -> list[pd.DataFrame]:
        layer = self.target.layer()
        if layer is None:
            return []
        adata = layer_adata(layer)
        frames = [adata.obs]
        source = layer.metadata[KEY].get("source")
        if source and source in self.viewer.layers:
            measured = layer_adata(self.viewer.layers[source])
            if measured is not None and measured.n_obs == adata.n_obs:
                frames.append(measured.obs)
        return frames

    def refresh_truth(self) -> None:
        """List label-like ``obs`` columns of the predictions and their measured sample."""
        self.truth.clear()
        self.truth.addItem(NO_TRUTH)
        seen: list[str] = []
        for obs in self._truth_frames():
            for name in obs.columns:
                col = obs[name]
                if name in seen or name in ("section", "patient", "uncertainty", "domain"):
                    continue
                if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object:
                    seen.append(name)
        self.truth.addItems(seen)
        for preferred in ("annotation", "cluster_ref"):
            if preferred in seen:
                self.truth.setCurrentText(preferred)
                break

    def _truth(self):
        name = self.truth.currentText()
        if not name or name == NO_TRUTH:
            return None
        for obs in self._truth_frames():
            if name in obs:
                return obs[name].to_numpy()
        return None

    def run(self):
        """Start clustering with the widget's parameters; returns the worker or ``None``."""
        layer = self.target.layer()
        adata = layer_adata(layer) if layer is not None else None
        k = None if self.k.value() == AUTO else self.k.value()
        source, truth = SOURCES[self.source.currentText()], self._truth()
        self._layer = layer
        labels_map = layer is not None and (role(layer) == "dense" or "raster" in layer.metadata.get(KEY, {}))

        def make(token: CancelToken):
            from ..errors import InputError

            if adata is None:
                raise InputError("predict first: no predictions to cluster")

            def run():
                if labels_map:  # numba label kernels and dash patterns: here, not in the GUI thread; only for
                    warm_tissue_colormap()  # a Labels map (numba's compile holds the GIL up to 0.6 s at a time)
                return (yield from domains_task(adata, k, source, truth, token))

            return run()

        return self.task.start(make, self._show, description="Domains")

    def _show(self, result) -> object:
        """The domain layer (in hidden, drawn a step later), then legend and selection: in steps."""
        labels, scores = result
        self.labels, self.score_values = np.asarray(labels), scores
        adata = layer_adata(self._layer)
        names = [f"Domain {i}" for i in range(int(labels.max()) + 1)]
        colors = category_colors(len(names))
        # dense tiles and binned rasters (Visium HD) get a Labels map; spots a Points layer
        dense = role(self._layer) == "dense" or "raster" in self._layer.metadata.get(KEY, {})
        name = domain_layer_name(self._layer.name, library_id(adata), dense=dense)
        add = self._add_domain_map if dense else self._add_domain_spots

        def added() -> None:
            layer = add(adata, labels, colors, name)
            self.steps.next(lambda: setattr(layer, "visible", True))

        def legend() -> None:
            counts = np.bincount(labels, minlength=len(names))
            self.legend.set(names, colors, counts.tolist())
            if name in self.viewer.layers:  # the canvas shows this legend while the layer is selected
                self.viewer.layers[name].metadata[KEY]["legend"] = (names, colors, counts.tolist())
                self.viewer.layers.selection.active = self.viewer.layers[name]
                follow_selection(self.viewer).update()
            text = f"{len(names)} domains"
            if "k" in scores:  # chosen automatically: say so in the field and the status
                self.k.setSpecialValueText(f"auto (k={scores['k']})")
                text += f" (k by silhouette {scores['silhouettes'][scores['k']]:.2f})"
            if "ari" in scores:
                text += f" · ARI {scores['ari']:.3f} · NMI {scores['nmi']:.3f} vs {self.truth.currentText()}"
            self.scores.setText(text)

        if name in self.viewer.layers:
            self.steps.add(lambda: self.viewer.layers.remove(name))
        self.steps.add(added, legend, lambda: self.task.complete(result))
        return DEFERRED

    def _add_domain_map(self, pred, labels: np.ndarray, colors: np.ndarray, name: str):
        """Whole-slide predictions: a Labels layer, one pixel per tile (label = domain + 1, 0 = none),
        over the prediction's grid; its AnnData is a copy of the prediction with ``obs['domain']``."""
        from napari.layers import Labels
        from napari.utils.colormaps import DirectLabelColormap

        from ..predict.slide import grid_image

        raster = self._layer.metadata[KEY].get("raster")
        if raster is not None:
            image = raster.labels(np.asarray(labels) + 1)
        else:
            image = grid_image(pred, np.asarray(labels) + 1, fill=0)
        # uint8 (k ≤ 50): the label kernels the worker compiled (warm_tissue_colormap), not int32's
        image = np.asarray(image).astype(np.uint8 if int(np.max(labels, initial=0)) < 255 else np.int32)
        rgba = {i + 1: (*(c / 255.0), 1.0) for i, c in enumerate(colors)}
        with_domains = pred.copy()
        with_domains.obs["domain"] = pd.Categorical(labels)
        dense = self._layer
        meta = {KEY: {"role": "domain_map", "adata": with_domains, "mpp": dense.metadata[KEY].get("mpp")}}
        place = (
            {"affine": dense.affine.affine_matrix}
            if raster is not None
            else {"scale": dense.scale, "translate": dense.translate}
        )
        colormap = DirectLabelColormap(color_dict={None: (0, 0, 0, 0), 0: (0, 0, 0, 0), **rgba})
        layer = Labels(
            image, visible=False, name=name, **place, units=dense.units, opacity=0.6, colormap=colormap, metadata=meta
        )
        return insert_quietly(self.viewer, layer)  # unselected: the legend step selects it

    def _add_domain_spots(self, adata, labels: np.ndarray, colors: np.ndarray, name: str):
        """Spot predictions: a Points layer coloured by domain (``features['domain']``), in hidden."""
        data, kwargs, kind = spots_layer(adata, role="domains", name=name, mpp=self._layer.metadata[KEY].get("mpp"))
        layer = add_quietly(self.viewer, (data, {**kwargs, "visible": False}, kind))  # the legend step selects it
        layer.metadata[KEY]["source"] = self._layer.metadata[KEY].get("source")
        # categorical column and direct colours: never switch this layer to a numeric colour mode
        layer.features = pd.DataFrame({"domain": pd.Categorical(labels)})
        with layer.events.face_color.blocker():
            layer.face_color = np.concatenate([colors[labels] / 255.0, np.ones((len(labels), 1))], axis=1)
        return layer

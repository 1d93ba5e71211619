"""Load widget: a whole-slide image (lazy multiscale) plus optional spots from h5ad/Visium/her2st."""

from __future__ import annotations

from pathlib import Path

from napari.layers import Points
from qtpy.QtWidgets import QFormLayout, QLabel, QWidget

from .. import sample as sample_mod
from ..errors import InputError
from ..io.spots import read_spot_samples
from ..layer_data import data_layer, existing_image, last_sample_visible, slide_layer, slide_name
from ..layer_data.base import warm_layer_imports
from ..progress import CancelToken, Progress
from . import _collector
from ._annotations import AnnotationsRow
from ._canvas import show_scale_bar
from ._common import PathEdit, button, scroll_layout
from ._gui_steps import GuiSteps, queue_layers
from ._worker import DEFERRED, TaskPanel


def attach_slide(adata, slide: str | Path, mpp: float | None) -> None:
    """Make ``slide`` the image of a sample that has none (e.g. a Visium folder: previews only), in
    memory, so that prediction at its spots reads it; the pixel size too when the sample lacks it."""
    image = sample_mod.image_path(adata)
    if image is not None and image.exists():
        return
    sample_mod.set_image_path(adata, slide)
    if mpp and not sample_mod.microns_per_pixel(adata):
        adata.uns["spatial"][sample_mod.library_id(adata)]["metadata"]["microns_per_pixel"] = float(mpp)


def load_layers(slide: str | None, spots: str | None, cancel: CancelToken | None = None):
    """Generator: read spots and open the slide; returns layer data tuples (slide first).

    When no slide is given, each sample's own image (``source_image_path``) is opened if it exists.
    A slide that does not record its pixel size (JPEG, PNG) takes the samples' µm per pixel; a single
    sample without an image of its own gets the slide (:func:`attach_slide`).
    Of several samples (a her2st folder) only the last is visible: their slides share one origin.
    """
    if not slide and not spots:
        raise InputError("choose a slide, spots, or both")
    yield Progress("load", 0, 2, message="reading spots")
    warm_layer_imports()  # here in the worker, not on the first layer in the GUI thread
    samples = read_spot_samples(spots) if spots else []
    if cancel is not None:
        cancel.raise_if_cancelled()
    yield Progress("load", 1, 2, message="opening slide")
    layers: list[tuple] = []
    groups: list[list[tuple]] = []
    mpp = None
    if slide:
        # a JPEG/PNG does not record its pixel size: take the spots' so both share one µm scale
        known = [m for m in map(sample_mod.microns_per_pixel, samples) if m]
        # named after the section when the spots are one section's (its layers are named after it too)
        name = slide_name(samples[0]) if len(samples) == 1 else None
        layers.append(slide_layer(slide, mpp=known[0] if known else None, name=name))
        mpp = layers[-1][1]["metadata"]["mclstexp"]["mpp"]
        if len(samples) == 1:
            attach_slide(samples[0], slide, mpp)
    for adata in samples:
        sample_mpp = sample_mod.microns_per_pixel(adata)
        image = None if slide else existing_image(adata)
        group = [] if image is None else [slide_layer(image, mpp=sample_mpp, name=slide_name(adata))]
        layer_mpp = group[0][1]["metadata"]["mclstexp"]["mpp"] if group else (sample_mpp or mpp)
        groups.append(group + [data_layer(adata, layer_mpp)])
    yield Progress("load", 2, 2)
    return layers + last_sample_visible(groups)


class LoadWidget(QWidget):
    """Open a slide and/or spots; adds a lazy multiscale Image and Points layers."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        _collector.watch(self, napari_viewer)
        self.viewer = napari_viewer
        self.slide_edit = PathEdit(
            "slide (.tif, .svs, .ndpi, .ome.tif, .jpg, .png)",
            filter="Slides (*.tif *.tiff *.svs *.ndpi *.jpg *.jpeg *.png)",
        )
        self.spots_edit = PathEdit("spots (.h5ad file)", filter="AnnData (*.h5ad)")
        self.folder_edit = PathEdit("or a Visium / Visium HD / her2st folder", mode="folder")
        form = QFormLayout()
        form.addRow("Slide", self.slide_edit)
        form.addRow("Spots", self.spots_edit)
        form.addRow("Folder", self.folder_edit)
        self.task = TaskPanel()
        self.info = QLabel("")
        layout = scroll_layout(self)
        layout.addLayout(form)
        layout.addWidget(button("Load", self.load))
        layout.addWidget(self.task)
        layout.addWidget(self.info)
        self.annotations = AnnotationsRow(napari_viewer)  # QuPath regions, one Shapes layer per class
        layout.addWidget(self.annotations)
        layout.addStretch(1)
        self.added: list = []
        self.steps = self.task.steps = GuiSteps(self, on_error=self._failed)

    def load(self, slide: str | None = None, spots: str | None = None):
        """Load ``slide`` and/or ``spots`` (defaults: the fields); returns the worker or ``None``."""
        slide = slide if slide is not None else self.slide_edit.text()
        spots = spots if spots is not None else (self.spots_edit.text() or self.folder_edit.text())
        return self.task.start(
            lambda token: load_layers(slide or None, spots or None, token), self._add, description="Load"
        )

    def _add(self, layers: list[tuple]):
        """Add the layers in steps, one per turn of the event loop (:func:`queue_layers`: a layer costs
        napari 0.1–0.3 s of GUI work), then report; ``added`` is filled when the last is in."""
        self.added = []
        queue_layers(self.steps, self.viewer, layers, self.added)
        self.steps.add(self._report, lambda: self.task.complete(layers))
        return DEFERRED

    def _failed(self, err: BaseException) -> None:
        self.task.complete(None, err)

    def _report(self) -> None:
        n_spots = sum(len(layer.data) for layer in self.added if isinstance(layer, Points))
        hidden = sum(not layer.visible for layer in self.added if isinstance(layer, Points))
        self.info.setText(
            f"{len(self.added)} layers, {n_spots} spots"
            + (f" ({hidden} more sections hidden: eye icons in the layer list)" if hidden else "")
        )
        if self.added:  # the view, then the scale bar (its first showing builds vispy visuals): two steps
            self.steps.add(self.viewer.reset_view, lambda: show_scale_bar(self.viewer))

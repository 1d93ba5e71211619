"""What the panel's steps share: the section in view, the current model and the current prediction.

The section in view is the selected layer's section, else that of the newest visible sample layer;
every step starts there (never on a hidden section), and Train leaves it unticked (it is the one the
user is about to score).
"""

from __future__ import annotations

from qtpy.QtCore import QObject, Signal

from ..layer_data import KEY, layer_adata, role
from ._common import connect_while_alive, viewer_models
from ._predict_text import section_of

#: Roles of layers that belong to one section.
SECTION_ROLES = ("spots", "slide", "predicted", "dense", "uncertainty", "domains", "domain_map")
_SUFFIXES = (" predicted tiles", " spots predicted", " predicted", " spots", " slide", " domains", " uncertainty")


def layer_section(viewer, layer) -> str | None:
    """The section a plugin layer shows (``None`` for foreign layers): its sample's ``section``, the
    section of the measured spots it was predicted at, else its name without the role's suffix."""
    if layer is None or role(layer) not in SECTION_ROLES:
        return None
    source = layer.metadata.get(KEY, {}).get("source")
    if source and source in viewer.layers and viewer.layers[source] is not layer:
        return layer_section(viewer, viewer.layers[source])
    adata = layer_adata(layer)
    if adata is not None and "section" in adata.obs:
        return section_of(adata)
    name = layer.name
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name.split(" ")[0] if name else None


def current_section(viewer) -> str | None:
    """The section in view: the selected layer's, else the newest visible section layer's."""
    section = layer_section(viewer, viewer.layers.selection.active)
    if section is not None:
        return section
    for layer in reversed(viewer.layers):
        if layer.visible and role(layer) in SECTION_ROLES:
            return layer_section(viewer, layer)
    return None


def section_layer(viewer, section: str | None, roles: tuple[str, ...]):
    """The newest layer of ``section`` with one of ``roles`` (the selected one first), or ``None``."""
    if section is None:
        return None
    active = viewer.layers.selection.active
    if active is not None and role(active) in roles and layer_section(viewer, active) == section:
        return active
    for layer in reversed(viewer.layers):
        if role(layer) in roles and layer_section(viewer, layer) == section:
            return layer
    return None


def section_in_view(viewer, spots: list) -> str | None:
    """The name of the spots layer (of ``spots``) of the section in view, or ``None``."""
    section = current_section(viewer)
    for layer in reversed(spots):
        if layer_section(viewer, layer) == section:
            return layer.name
    return None


class PanelState(QObject):
    """The section in view, the current model (bundle path) and the current prediction (layer name),
    recomputed when the selection, the layer list or a layer's visibility changes.

    Signals
    -------
    changed()
        One of the three changed.
    """

    changed = Signal()

    def __init__(self, viewer, owner) -> None:
        super().__init__(owner)
        self.viewer = viewer
        self.section: str | None = None
        self.prediction: str | None = None
        self.model: str = viewer_models(viewer).last_bundle
        viewer_models(viewer).bundle_saved.connect(self._model_saved)
        layers = viewer.layers
        connect_while_alive(
            owner, self.update, layers.selection.events.active, layers.events.inserted, layers.events.removed
        )
        self._owner = owner
        connect_while_alive(owner, self._visibility, layers.events.inserted)
        for layer in layers:
            connect_while_alive(owner, self.update, layer.events.visible)
        self.update()

    def _visibility(self, event) -> None:
        connect_while_alive(self._owner, self.update, event.value.events.visible)

    def _model_saved(self, path: str) -> None:
        self.model = str(path)
        self.changed.emit()

    def update(self, *_args) -> None:
        """Recompute the section in view and its newest prediction; emit ``changed`` when they moved."""
        section = current_section(self.viewer)
        pred = section_layer(self.viewer, section, ("predicted", "dense"))
        now = (section, pred.name if pred is not None else None)
        if now != (self.section, self.prediction):
            self.section, self.prediction = now
            self.changed.emit()

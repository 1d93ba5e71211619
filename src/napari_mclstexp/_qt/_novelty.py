"""The Predict step's model card and novelty: the card when a bundle is chosen, a hidden novelty layer, a warning."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np


def card_for(path: str) -> tuple[str, str]:
    """``(one line, full text)`` of the bundle at ``path``'s model card; ``("", "")`` when it cannot be read."""
    from ..bundle_file import read_card
    from ..errors import MclstexpError
    from ..model_card import card_summary, card_text

    if not path or not Path(path).is_file():
        return "", ""
    try:
        card = read_card(path)
    except MclstexpError as err:
        return f"not a usable model bundle: {err}", ""
    return card_summary(card), card_text(card, Path(path).name)


def show_card(field, label, path: str) -> None:
    """Put the card's line in ``label`` and its full text in both tooltips."""
    line, text = card_for(path)
    label.setText(line)
    label.setToolTip(text)
    field.setToolTip(text)


def novelty_layer(pred, mpp: float | None, name: str) -> tuple | None:
    """A hidden layer of ``obs['novelty']`` (0–1, magma): points at spots, an image on a whole-slide grid."""
    from ..layer_data.base import KEY, spots_layer
    from ..layer_data.colors import values_to_rgba
    from ..layer_data.predictions import dense_layer
    from ..prediction_meta import is_whole_slide

    if "novelty" not in pred.obs:
        return None
    values = pred.obs["novelty"].to_numpy(np.float32)
    if is_whole_slide(pred):
        from ..predict.slide import grid_image

        _, kwargs, _ = dense_layer(pred, mpp, name=name)
        kwargs.update(colormap="magma", contrast_limits=(0.0, 1.0), visible=False)
        kwargs["metadata"][KEY]["role"] = "novelty"
        return (grid_image(pred, values), kwargs, "image")
    data, kwargs, layer_type = spots_layer(pred, role="novelty", name=name, mpp=mpp, values=values)
    kwargs.update(visible=False, face_color=values_to_rgba(values, "magma", (0.0, 1.0)))
    return (data, kwargs, layer_type)


def novelty_warning(pred) -> str | None:
    """The warning to show when the novel fraction is above :data:`~napari_mclstexp.predict.novelty.WARN_FRACTION`."""
    from ..predict.novelty import WARN_FRACTION, novelty_message

    fraction = pred.uns.get("mclstexp", {}).get("novel_fraction")
    if fraction is None or float(fraction) <= WARN_FRACTION:
        return None
    return novelty_message(float(fraction)) + " (novelty layer: hidden beside the predictions)"


def warn_novelty(viewer, pred) -> None:
    """A notification, and the sentence under the gene's name on the canvas, when the novel fraction is high."""
    from napari.utils.notifications import show_warning

    message = novelty_warning(pred)
    if message:
        show_warning(message)
        text = viewer.canvas.overlays.text
        text.text = (f"{text.text}\n" if text.visible and text.text else "") + "⚠ " + message.split(" (")[0]
        text.visible = True


def metadata_view(meta: dict) -> SimpleNamespace:
    """What the guards read of a bundle (genes, patch px and µm, metadata) from its ``metadata.json`` alone, so the
    GUI thread warns before predicting without loading the model (torch is read in the worker)."""
    return SimpleNamespace(
        metadata=meta, genes=meta.get("genes", []), patch_px=meta.get("patch_px"), patch_um=meta.get("patch_um")
    )


def warn_inputs(bundle, mpp: float | None, measured=()) -> None:
    """The guards (:mod:`~napari_mclstexp.predict.guards`) as notifications before predicting (no refusal)."""
    from napari.utils.notifications import show_warning

    from ..predict.guards import input_warnings

    for line in input_warnings(bundle, mpp, measured):
        show_warning(line)


def warn_other_genes(pred, source, bundle) -> None:
    """Say so when the model predicts none of the genes measured at the ``source`` spots layer (wrong model?)."""
    from ..layer_data import layer_adata
    from ._predict_text import other_genes_warning
    from ._toasts import notify

    path = bundle.path if bundle is not None and bundle.path else "the model"
    message = other_genes_warning(pred, layer_adata(source), source.name, str(path))
    if message:
        notify("warning", message)

"""Open napari on the demo's results: the slide, its spots, a predicted gene and the plugin's panel."""

from __future__ import annotations

import logging
from typing import Any

from ..layer_data import predicted_spots_layer

PLUGIN = "napari-mclstexp"
log = logging.getLogger(__name__)


#: The dock the demo opens: the one panel that walks every step (the six step widgets stay in the Plugins menu).
PANEL = "mclSTExp"


def populate_viewer(viewer: Any, result: Any, *, dock_widgets: bool = True) -> dict[str, Any]:
    """Add the demo slide, the true-region spots, the predicted gene and the plugin's dock widgets.

    Parameters
    ----------
    viewer
        A ``napari.Viewer``.
    result
        :class:`~napari_mclstexp.workflows.demo.DemoResult` (with ``sample`` and ``prediction``).
    dock_widgets
        Also dock the plugin's panel, on its Explore step with the overlaid gene.

    Returns
    -------
    dict
        ``layers`` (names added), ``widgets`` (docked display names: the panel or none), ``gene`` (the
        overlaid gene).
    """
    from .._sample_data import _layers_for

    added = []
    for data, kwargs, kind in _layers_for(result.sample, "demo spots (true regions)"):
        layer = getattr(viewer, f"add_{kind}")(data, **kwargs)
        added.append(layer.name)
    pred = result.prediction
    gene = result.genes_shown[0] if result.genes_shown else str(pred.var_names[0])
    data, kwargs, _ = predicted_spots_layer(pred, gene=gene, name=f"predicted {gene}")
    predicted = viewer.add_points(data, **kwargs)
    added.append(predicted.name)
    docked: list[str] = []
    if dock_widgets:
        try:
            dock, panel = viewer.window.add_plugin_dock_widget(PLUGIN, PANEL)
        except Exception as err:  # noqa: BLE001 - a broken panel must not stop the demo
            log.warning("could not open the %s panel: %s", PANEL, err)
        else:
            docked.append(PANEL)
            _show_in_explore(dock, panel, predicted, gene)
            if "annotation" in result.sample.obs:  # the true regions' colours get their legend
                panel.explore.colour_by_labels("annotation", viewer.layers[added[-2]])
    viewer.layers.selection.active = predicted
    viewer.reset_view()
    return {"layers": added, "widgets": docked, "gene": gene}


def _show_in_explore(dock: Any, panel: Any, layer: Any, gene: str) -> None:
    """Bring the panel's Explore step to the front with the predicted layer and gene selected."""
    dock.raise_()
    try:
        panel.show_step("Explore")
        widget = panel.explore
        widget.target.select(layer)
        widget.refresh_genes()
        widget.set_gene(gene)
    except Exception as err:  # noqa: BLE001 - the overlay is already drawn; this is a nicety
        log.warning("could not select %s in the Explore widget: %s", gene, err)


def launch_demo(result: Any, *, block: bool = True) -> Any:
    """Open a napari window on the demo's results (see :func:`populate_viewer`).

    Parameters
    ----------
    result
        :class:`~napari_mclstexp.workflows.demo.DemoResult`.
    block
        Run napari's event loop until the window closes.

    Returns
    -------
    napari.Viewer
    """
    import napari

    viewer = napari.Viewer(title="mclSTExp demo: predicted gene expression")
    info = populate_viewer(viewer, result)
    print(f"napari: showing predicted {info['gene']}; widgets: {', '.join(info['widgets']) or 'none'}")
    if block:
        napari.run()
    return viewer

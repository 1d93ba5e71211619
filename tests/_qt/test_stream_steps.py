"""Whole-slide prediction without long GUI stalls (issue 16): the heavy GUI work of a run — the tissue
and streaming layers — is done before tiles stream, with the worker waiting for it, and what napari
would build in the GUI thread once per process is built in the worker."""

from __future__ import annotations


def test_tiles_stream_once_the_tissue_and_streaming_layers_are_in(qtbot, whole_slide_panels):
    from napari.layers import Labels

    from napari_mclstexp._qt._tile_stream import TileBuffer

    viewer, predict = whole_slide_panels(32)
    log: list[str] = []

    class Logged(TileBuffer):
        def __call__(self, xy, prediction) -> None:
            log.append("tile")  # the worker thread: before the GUI could draw it
            super().__call__(xy, prediction)

    predict._tiles = Logged()
    viewer.layers.events.inserted.connect(lambda event: log.append(event.value.name))
    with qtbot.waitSignal(predict.task.finished, timeout=120_000) as blocker:
        assert predict.predict() is not None
    assert blocker.args[0] is not None and predict.streamed_tiles == blocker.args[0].n_obs
    first_tile = log.index("tile")
    before = log[:first_tile]
    assert [n.split(" ", 1)[1] for n in before] == ["tissue", "predicted (streaming)"], log[: first_tile + 1]
    (tissue,) = [layer for layer in viewer.layers if isinstance(layer, Labels)]
    assert tissue.visible and tissue.contour > 0 and tissue.colormap.color_dict[1] is not None  # drawn a step later


def test_dash_patterns_are_built_in_the_worker():
    """Every Labels layer's polygon overlay builds vispy's dash patterns (0.6 s, cached once per
    process): ``warm_tissue_colormap`` (run in the worker) leaves nothing for the GUI thread."""
    import threading

    from vispy.visuals.line import dash_atlas

    from napari_mclstexp._qt._tissue_layer import warm_tissue_colormap

    dash_atlas._make_pattern.cache_clear()  # as in a fresh process
    worker = threading.Thread(target=warm_tissue_colormap)
    worker.start()
    worker.join()
    misses = dash_atlas._make_pattern.cache_info().misses
    dash_atlas.DashAtlas()  # what the tissue layer's overlay does in the GUI thread
    assert dash_atlas._make_pattern.cache_info().misses == misses

"""The Predict widget streams whole-slide tiles into the grid the engine announces (it decides no grid)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.predict.options import PredictOptions


def _stream_whole_slide(viewer, qtbot, slide_path, bundle_path, step=0):
    """Load ``slide_path``, predict over it; returns (prediction, streaming layer as first added)."""
    dock = viewer.window.add_plugin_dock_widget
    load = dock("napari-mclstexp", "Load")[1]
    with qtbot.waitSignal(load.task.finished, timeout=60_000):
        load.load(slide=str(slide_path), spots="")
    predict = dock("napari-mclstexp", "Predict")[1]
    predict.bundle_path.setText(str(bundle_path))
    predict.mode.setCurrentText("whole slide")
    predict.step.setValue(step)
    streams: list = []

    def seen(event) -> None:
        layer = event.value
        if layer.name.endswith("(streaming)"):
            streams.append((layer.data.shape, np.asarray(layer.scale), np.asarray(layer.translate)))

    viewer.layers.events.inserted.connect(seen)
    with qtbot.waitSignal(predict.task.finished, timeout=120_000) as blocker:
        assert predict.predict() is not None
    pred = blocker.args[0]
    assert pred is not None and pred.n_obs > 0
    assert predict.streamed_tiles == pred.n_obs  # every tile landed in the streaming layer
    assert len(streams) == 1
    return pred, streams[0]


def _assert_layer_is_engine_grid(stream, pred, mpp: float) -> None:
    shape, scale, translate = stream
    grid = pred.uns["mclstexp"]["grid"]
    assert shape == tuple(grid["shape"])
    np.testing.assert_allclose(scale, [grid["step_px"] * mpp] * 2)
    np.testing.assert_allclose(translate, np.asarray(grid["origin_xy"][::-1]) * mpp)


def test_stream_follows_the_engines_grid(make_napari_viewer, qtbot, synthetic_samples, tiny_bundle, monkeypatch):
    """The engine crops 48 px patches (its decision, not the widget's): the streaming layer follows."""
    import napari_mclstexp.predict.slide as engine
    from napari_mclstexp.sample import image_path

    monkeypatch.setattr(engine, "patch_px_for", lambda bundle, mpp: 48)
    viewer = make_napari_viewer()
    pred, stream = _stream_whole_slide(viewer, qtbot, image_path(synthetic_samples[2]), tiny_bundle)
    assert pred.uns["mclstexp"]["grid"]["step_px"] == 48
    _assert_layer_is_engine_grid(stream, pred, 1.0)


def test_stream_on_a_slide_scanned_at_another_resolution(make_napari_viewer, qtbot, tiny_bundle, tmp_path):
    """A TIFF recording 0.5 µm/px, for a bundle trained at 1 µm/px: patches of twice the pixels."""
    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.synthetic import make_synthetic_sample

    make_synthetic_sample(tmp_path, seed=6, section="HIRES", image_format="tif", mpp=0.5)
    viewer = make_napari_viewer()
    pred, stream = _stream_whole_slide(viewer, qtbot, tmp_path / "HIRES.tif", tiny_bundle)
    grid = pred.uns["mclstexp"]["grid"]
    assert grid["patch_px"] == grid["step_px"] == 2 * load_bundle(tiny_bundle).patch_px
    _assert_layer_is_engine_grid(stream, pred, 0.5)


@pytest.mark.parametrize("per_patch", [1, 2])
def test_engine_announces_its_grid_once(synthetic_samples, tiny_bundle, per_patch):
    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.predict.slide import predict_whole_slide
    from napari_mclstexp.progress import run
    from napari_mclstexp.sample import image_path

    bundle = load_bundle(tiny_bundle)
    grids: list = []
    pred = run(
        predict_whole_slide(
            bundle,
            image_path(synthetic_samples[2]),
            PredictOptions(device="cpu"),
            tiles_per_patch=per_patch,
            on_grid=grids.append,
        )
    )
    assert len(grids) == 1 and grids[0].to_dict() == pred.uns["mclstexp"]["grid"]
    assert grids[0].step_px == bundle.patch_px // per_patch

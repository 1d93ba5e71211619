"""Whole-slide prediction: skips blank background, streams tiles, agrees with spot prediction."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from napari_mclstexp.errors import Cancelled
from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.predict.slide import grid_image, predict_whole_slide, tile_grid
from napari_mclstexp.predict.spots import predict_at_spots
from napari_mclstexp.progress import CancelToken, run
from napari_mclstexp.synthetic import region_map, render_he


@pytest.fixture(scope="module")
def half_blank_slide(tmp_path_factory):
    """384 × 512 px H&E-like image whose right half (x ≥ 256) is blank glass."""
    rng = np.random.default_rng(5)
    img = render_he(region_map((384, 512), 4, rng, smooth_px=128), rng)
    img[:, 256:] = 245
    path = tmp_path_factory.mktemp("slide") / "half.png"
    Image.fromarray(img).save(path)
    return path


def test_skips_blank_half_and_streams(tiny_bundle, half_blank_slide):
    calls = []
    events = []
    pred = run(
        predict_whole_slide(
            tiny_bundle,
            half_blank_slide,
            PredictOptions(device="cpu", batch_size=10),
            workers=2,
            on_tile=lambda xy, p: calls.append((xy.copy(), p.copy())),
        ),
        events.append,
    )
    grid = pred.uns["mclstexp"]["grid"]
    assert grid["step_px"] == 64 and grid["shape"] == [6, 8] and grid["origin_xy"] == [32.0, 32.0]
    # 6 rows × 4 tissue columns; no tile centred on the blank half
    assert pred.n_obs == 24
    assert pred.obsm["spatial"][:, 0].max() < 256
    assert sorted(set(pred.obs["array_col"])) == [0, 1, 2, 3]
    # streamed: several batches, together exactly the result
    assert len(calls) >= 3
    xy = np.concatenate([c[0] for c in calls])
    order = np.lexsort(xy.T)
    ref = np.lexsort(pred.obsm["spatial"].T)
    np.testing.assert_array_equal(xy[order], pred.obsm["spatial"][ref])
    np.testing.assert_array_equal(np.concatenate([c[1] for c in calls])[order], pred.X[ref])
    assert events[-1].stage == "predict" and events[-1].step == events[-1].total == 24
    img = grid_image(pred, tiny_bundle.genes[0])
    assert img.shape == (6, 8) and np.isnan(img[:, 4:]).all() and np.isfinite(img[:, :4]).all()
    assert pred.uns["spatial"]["half"]["metadata"]["source_image_path"] == str(half_blank_slide.resolve())


def test_whole_slide_matches_spot_prediction(tiny_bundle, half_blank_slide, synthetic_sample):
    pred = run(
        predict_whole_slide(
            tiny_bundle, half_blank_slide, PredictOptions(device="cpu"), detect_tissue=False, step_px=96
        )
    )
    assert pred.n_obs == 4 * 6  # ceil(384/96) × ceil(512/96)
    grid = tile_grid((384, 512), 96, 64)
    np.testing.assert_array_equal(grid.indices(pred.obsm["spatial"]), pred.obs[["array_col", "array_row"]].to_numpy())
    # the same centres as "spots" of a sample on the same image
    spots = synthetic_sample[: pred.n_obs].copy()
    spots.obsm["spatial"] = pred.obsm["spatial"].copy()
    lib = next(iter(spots.uns["spatial"]))
    spots.uns["spatial"][lib]["metadata"]["source_image_path"] = str(half_blank_slide)
    at_spots = run(predict_at_spots(tiny_bundle, spots, PredictOptions(device="cpu")))
    np.testing.assert_allclose(at_spots.obsm["embedding"], pred.obsm["embedding"], atol=1e-5)
    np.testing.assert_allclose(at_spots.X, pred.X, atol=1e-5)


def test_cancel_stops(tiny_bundle, half_blank_slide):
    token = CancelToken()
    gen = predict_whole_slide(tiny_bundle, half_blank_slide, PredictOptions(device="cpu", batch_size=4), cancel=token)
    next(gen)
    token.cancel()
    with pytest.raises(Cancelled):
        run(gen)


class _FakeDist:
    """Two ranks run one after the other: rank 1 records its part, rank 0 gathers it."""

    def __init__(self, rank: int, store: dict):
        self.rank, self.world_size, self.store = rank, 2, store

    def split(self, indices):
        return np.array_split(np.asarray(indices), 2)[self.rank]

    def gather_objects(self, obj):
        self.store[self.rank] = obj
        return [self.store.get(0, obj), self.store.get(1, obj)]


def test_tiles_split_across_ranks_gather_to_the_single_process_result(tiny_bundle, half_blank_slide):
    single = run(predict_whole_slide(tiny_bundle, half_blank_slide, PredictOptions(device="cpu")))
    store: dict = {}
    seen = []
    run(
        predict_whole_slide(
            tiny_bundle,
            half_blank_slide,
            PredictOptions(device="cpu"),
            dist=_FakeDist(1, store),
            on_tile=lambda xy, p: seen.append(len(xy)),
        )
    )
    assert sum(seen) == single.n_obs // 2  # rank 1 predicted only its half
    merged = run(
        predict_whole_slide(tiny_bundle, half_blank_slide, PredictOptions(device="cpu"), dist=_FakeDist(0, store))
    )
    np.testing.assert_array_equal(merged.obs_names, single.obs_names)
    np.testing.assert_allclose(merged.X, single.X, atol=1e-6)
    np.testing.assert_allclose(merged.obs["uncertainty"], single.obs["uncertainty"], atol=1e-6)

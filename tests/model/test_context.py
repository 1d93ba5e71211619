"""Context views: a wider crop around the same centre, fused with the spot patch before the projection head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_mclstexp.data.patches import extract_patches, view_px
from napari_mclstexp.errors import InputError
from napari_mclstexp.model.mclstexp import build_model
from napari_mclstexp.model.presets import get_preset
from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.predict.slide import predict_whole_slide
from napari_mclstexp.predict.spots import predict_at_spots
from napari_mclstexp.progress import run


@pytest.fixture(scope="module")
def slide(he_slide_600):
    return he_slide_600


def test_view_px_scales_read_and_stored_edges():
    assert view_px(224, 64, 1) == (224, 64)
    assert view_px(224, 64, 3) == (672, 192)
    assert view_px(223, 32, 3) == (669, 96)


@pytest.mark.parametrize("crop", [64, 63])
def test_context_crop_is_centred_on_the_spot_and_at_the_right_scale(slide, crop):
    cfg = get_preset("quick").replace(input_px=32, patch_px=crop, context_scale=3, embed_dim=16)
    model = build_model(cfg, 4, (4, 4)).eval()
    xy = np.array([[300.4, 290.7], [250.0, 330.0]])
    spot = extract_patches(slide, xy, crop, 32)
    wide = extract_patches(slide, xy, *view_px(crop, 32, 3))
    centre, context = model.views(model.to_input(wide))

    def as_input(u8):  # what a spot-only model sees: (N, 3, 32, 32) in [0, 1]
        return torch.from_numpy(np.asarray(u8)).permute(0, 3, 1, 2).float() / 255.0

    inner = (slice(None), slice(None), slice(3, -3), slice(3, -3))  # resampling differs at the borders
    same = (centre - as_input(spot))[inner].abs().mean().item()
    assert same < 0.02
    # the test can fail: a view shifted by 4 px (12 full-res px) differs clearly
    shifted = as_input(extract_patches(slide, xy + 12, crop, 32))
    assert (centre - shifted)[inner].abs().mean().item() > 3 * same
    # the context view covers 3 × the spot's field of view, downsampled to the input size
    direct = as_input(extract_patches(slide, xy, 3 * crop, 32))
    assert (context - direct)[inner].abs().mean().item() < 0.03
    assert context.shape == centre.shape == (2, 3, 32, 32)


def test_context_model_fuses_two_views_before_the_head():
    cfg = get_preset("quick").replace(input_px=32, context_scale=3, embed_dim=16)
    plain = build_model(get_preset("quick").replace(input_px=32, embed_dim=16), 4, (4, 4))
    model = build_model(cfg, 4, (4, 4)).eval()
    assert model.image_head.projection.in_features == 2 * plain.image_head.projection.in_features
    x = torch.randint(0, 255, (3, 96, 96, 3), dtype=torch.uint8)
    emb = model.encode_images(x)
    assert emb.shape == (3, 16)
    # the context matters: changing only pixels outside the spot patch changes the embedding
    y = x.clone()
    y[:, :20] = 0
    assert not torch.allclose(model.encode_images(y), emb)


def test_context_needs_an_end_to_end_encoder():
    with pytest.raises(InputError, match="context"):
        get_preset("quick").replace(context_scale=3, freeze=True)
    with pytest.raises(InputError, match="context_scale"):
        get_preset("quick").replace(context_scale=9)


def test_context_bundle_predicts_at_spots_and_over_the_slide_alike(make_tiny_bundle, slide, synthetic_sample):
    bundle = make_tiny_bundle(context_scale=3)
    whole = run(predict_whole_slide(bundle, slide, PredictOptions(device="cpu"), detect_tissue=False, step_px=150))
    assert whole.n_obs == 16
    spots = synthetic_sample[: whole.n_obs].copy()
    spots.obsm["spatial"] = whole.obsm["spatial"].copy()
    lib = next(iter(spots.uns["spatial"]))
    spots.uns["spatial"][lib]["metadata"]["source_image_path"] = str(slide)
    spots.uns["spatial"][lib]["metadata"].pop("microns_per_pixel", None)
    at_spots = run(predict_at_spots(bundle, spots, PredictOptions(device="cpu")))
    np.testing.assert_allclose(at_spots.obsm["embedding"], whole.obsm["embedding"], atol=1e-5)

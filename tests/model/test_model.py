"""The mclSTExp model: loss values, gradients, positions, attention context, bank encoding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_mclstexp.model.losses import clip_loss
from napari_mclstexp.model.mclstexp import (
    build_model,
    encode_spot_bank,
    pos_shape_for,
    spot_positions,
)
from napari_mclstexp.model.presets import get_preset


def tiny(name: str = "quick", **changes):
    base = {"weights": "none", "input_px": 32, "patch_px": 32}
    if name != "quick":
        base.update(encoder="smallcnn")
    return get_preset(name).replace(**{**base, **changes})


def test_hard_clip_loss_on_constructed_embeddings():
    a = 1.5
    emb = a * torch.eye(3)
    # logits = a² I: each row's CE is log(1 + 2 e^{-a²}); both directions are equal
    expected = math.log(1 + 2 * math.exp(-a * a))
    assert clip_loss(emb, emb, 1.0) == pytest.approx(expected, rel=1e-6)
    # temperature divides the logits
    assert clip_loss(emb, emb, 0.5) == pytest.approx(math.log(1 + 2 * math.exp(-a * a / 0.5)), rel=1e-6)
    # swapped pairs: the correct pair has logit 0, a wrong one a²
    swapped = emb[[1, 0, 2]]
    row = [math.log(1 + math.exp(a * a) + 1) - 0.0] * 2 + [math.log(1 + 2 * math.exp(-a * a))]
    assert clip_loss(swapped, emb, 1.0) == pytest.approx(sum(row) / 3, rel=1e-6)


def test_soft_clip_loss_matches_bleep_formula():
    g = torch.Generator().manual_seed(0)
    img, spot = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    t = 0.7
    logits = spot @ img.T / t
    targets = torch.softmax((img @ img.T + spot @ spot.T) / 2 / t, dim=-1)
    spots_loss = -(targets * torch.log_softmax(logits, -1)).sum(1)
    images_loss = -(targets.T * torch.log_softmax(logits.T, -1)).sum(1)
    expected = ((spots_loss + images_loss) / 2).mean()
    assert clip_loss(img, spot, t, "soft") == pytest.approx(float(expected), rel=1e-6)
    assert clip_loss(img, spot, t, "soft") != pytest.approx(float(clip_loss(img, spot, t, "hard")))


def test_paper_model_loss_uses_raw_embeddings_at_t1():
    model = build_model(tiny("paper"), 6, (65536, 65536))
    emb = 2.0 * torch.eye(4)
    assert float(model.temperature) == 1.0
    assert model.loss(emb, emb) == pytest.approx(math.log(1 + 3 * math.exp(-4.0)), rel=1e-6)


def test_gradients_reach_both_encoders():
    torch.manual_seed(0)
    model = build_model(tiny(), 10, (8, 8))
    patches = torch.randint(0, 256, (6, 32, 32, 3), dtype=torch.uint8)
    expr, pos = torch.rand(6, 10), torch.randint(0, 8, (6, 2))
    img, spot = model(patches, expr, pos)
    model.loss(img, spot).backward()
    first_conv = model.image_encoder.features[0].weight.grad
    assert first_conv is not None and first_conv.abs().sum() > 0
    assert model.spot_encoder.blocks[0].attn.to_qkv.weight.grad.abs().sum() > 0
    assert model.spot_encoder.x_embed.weight.grad[pos[:, 0]].abs().sum() > 0
    assert model.log_temperature.grad is not None  # quick learns its temperature
    assert model.image_head.projection.weight.grad.abs().sum() > 0


def test_encode_images_resizes_and_normalises():
    model = build_model(tiny(), 5, (4, 4)).eval()
    big = torch.randint(0, 256, (3, 48, 48, 3), dtype=torch.uint8)
    with torch.no_grad():
        emb = model.encode_images(big)
    assert emb.shape == (3, model.config.embed_dim)
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    with pytest.raises(ValueError, match="N, H, W, 3"):
        model.encode_images(torch.zeros(3, 3, 32, 32, dtype=torch.uint8))


def test_positions_and_table_sizes(synthetic_samples):
    cfg = tiny()
    pos = spot_positions(synthetic_samples[0], cfg)
    obs = synthetic_samples[0].obs
    assert pos.dtype == np.int64 and pos.shape == (synthetic_samples[0].n_obs, 2)
    np.testing.assert_array_equal(pos[:, 0], obs["array_col"].to_numpy())
    np.testing.assert_array_equal(pos[:, 1], obs["array_row"].to_numpy())
    highs = np.max([spot_positions(a, cfg).max(0) for a in synthetic_samples], axis=0)
    assert pos_shape_for(synthetic_samples, cfg) == (highs[0] + 1, highs[1] + 1)
    pixel = spot_positions(synthetic_samples[0], cfg.replace(position_source="pixel"))
    np.testing.assert_array_equal(pixel, np.floor(synthetic_samples[0].obsm["spatial"]).astype(int))


def test_paper_preset_has_65536_row_tables(synthetic_samples):
    cfg = tiny("paper")
    shape = pos_shape_for(synthetic_samples, cfg)
    assert shape == (65536, 65536)
    model = build_model(cfg, 7, shape)
    assert model.spot_encoder.x_embed.weight.shape == (65536, 7)
    assert model.spot_encoder.y_embed.weight.shape == (65536, 7)


def test_attention_context_batch_vs_spot():
    torch.manual_seed(1)
    expr, pos = torch.rand(8, 12), torch.randint(0, 5, (8, 2))
    for name, mixes in (("paper", True), ("quick", False)):
        model = build_model(tiny(name), 12, (5, 5)).eval()
        with torch.no_grad():
            whole = model.encode_spots(expr, pos)
            half = model.encode_spots(expr[:4], pos[:4])
        # with the batch as one sequence, a spot's embedding depends on its batch-mates
        assert torch.allclose(whole[:4], half, atol=1e-5) is (not mixes)


def test_encode_spot_bank_follows_training_context():
    torch.manual_seed(2)
    expr, pos = torch.rand(70, 6), torch.randint(0, 5, (70, 2))
    paper = build_model(tiny("paper"), 6, (5, 5)).eval()
    bank = encode_spot_bank(paper, expr.numpy(), pos.numpy())
    with torch.no_grad():
        manual = torch.cat([paper.encode_spots(expr[i : i + 32], pos[i : i + 32]) for i in range(0, 70, 32)])
    torch.testing.assert_close(bank, manual)
    quick = build_model(tiny(), 6, (5, 5)).eval()
    with torch.no_grad():
        single = torch.cat([quick.encode_spots(expr[i : i + 1], pos[i : i + 1]) for i in range(70)])
    torch.testing.assert_close(encode_spot_bank(quick, expr, pos, batch_size=16), single, atol=1e-5, rtol=1e-5)


def test_test_time_augmentation_is_orientation_invariant():
    torch.manual_seed(5)
    model = build_model(tiny().replace(tta=True), 4, (3, 3)).eval()
    assert not tiny().tta  # quick leaves it off: 8× the work for ≈ 0.001 ACG
    x = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    turned = x.rot90(1, dims=(1, 2)).flip(2).contiguous()
    with torch.no_grad():
        a, b = model.encode_images(x), model.encode_images(turned)
        plain_a, plain_b = model.encode_images(x, tta=False), model.encode_images(turned, tta=False)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert (plain_a - plain_b).abs().max() > 1e-4  # without TTA the embedding depends on orientation
    assert torch.allclose(a.norm(dim=1), torch.ones(4), atol=1e-5)
    model.train()
    assert not torch.allclose(model.encode_images(x), a, atol=1e-4)  # never in training

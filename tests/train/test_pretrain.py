"""SimCLR pretraining engine: NT-Xent values, views, a loss that falls, cancel, seeding, refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_mclstexp.errors import Cancelled, InputError
from napari_mclstexp.progress import CancelToken, run
from napari_mclstexp.train.pretrain import augment_views, iter_pretrain_tiles, nt_xent, random_resized_crop


def test_nt_xent_matches_closed_form_for_orthogonal_pairs():
    b, tau = 4, 0.5
    z = torch.eye(8)[:b].repeat(2, 1) * 3.0  # views i and i + b identical, tiles orthogonal; scale ignored
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + (2 * b - 2)))
    assert float(nt_xent(z, tau)) == pytest.approx(expected, rel=1e-5)
    # swapping the partners (view i paired with a wrong tile) costs more
    wrong = torch.cat([z[:b], z[b:].roll(1, 0)])
    assert float(nt_xent(wrong, tau)) > expected + 1.0


def test_nt_xent_refuses_odd_batches():
    with pytest.raises(ValueError, match="even"):
        nt_xent(torch.randn(5, 3))


def test_random_resized_crop_shape_and_constant_image():
    x = torch.full((3, 3, 40, 40), 0.25)
    x[1] = 0.75
    out = random_resized_crop(x, 16, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 3, 16, 16)
    assert torch.allclose(out[0], torch.full_like(out[0], 0.25), atol=1e-6)
    assert torch.allclose(out[1], torch.full_like(out[1], 0.75), atol=1e-6)


def test_random_resized_crop_takes_part_of_a_gradient():
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(8, 3, 64, 64).contiguous()
    out = random_resized_crop(ramp, 16, scale=(0.3, 0.3), generator=torch.Generator().manual_seed(1))
    spans = out[:, 0, 0, -1] - out[:, 0, 0, 0]
    assert float(spans.max()) < 0.8  # a 30 % area crop spans well under the whole ramp
    assert len({round(float(v), 3) for v in out[:, 0, 0, 0]}) > 1  # crops start at different places


def test_augment_views_two_views_differ(rng):
    tiles = torch.from_numpy(rng.integers(0, 255, (4, 24, 24, 3), dtype=np.uint8))
    g = torch.Generator().manual_seed(0)
    a, b = augment_views(tiles, 16, generator=g), augment_views(tiles, 16, generator=g)
    assert a.shape == (4, 3, 16, 16) and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert not torch.allclose(a, b)


def _toy_tiles(n: int = 48, px: int = 24) -> np.ndarray:
    """Tiles of 6 kinds (colour × stripe direction) with noise: something for SimCLR to learn."""
    rng = np.random.default_rng(0)
    colours = np.array([[200, 80, 160], [90, 60, 170], [230, 190, 220]])
    stripes = (np.arange(px)[:, None] // 3 % 2) * np.ones((1, px))
    out = np.empty((n, px, px, 3), np.uint8)
    for i in range(n):
        pattern = stripes if i % 2 else stripes.T
        img = colours[i % 3][None, None, :] * (0.6 + 0.4 * pattern[..., None]) + rng.normal(0, 12, (px, px, 3))
        out[i] = np.clip(img, 0, 255)
    return out


def test_loss_falls_over_a_few_epochs():
    before = torch.get_num_threads()
    result = run(
        iter_pretrain_tiles(_toy_tiles(32), input_px=16, epochs=8, batch_size=16, lr=3e-3, device="cpu", threads=1)
    )
    assert torch.get_num_threads() == before  # restored
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 8 and all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < losses[0] - 0.2, losses
    assert result.n_tiles == 32 and result.encoder == "smallcnn"
    assert any(k.startswith("features.") for k in result.state_dict)


def test_seeded_runs_are_identical_and_seeds_differ():
    tiles = _toy_tiles(16)

    def weights(seed):
        res = run(iter_pretrain_tiles(tiles, input_px=16, epochs=1, batch_size=8, seed=seed, device="cpu", threads=1))
        return res.state_dict["features.0.weight"]

    assert torch.equal(weights(3), weights(3))
    assert not torch.equal(weights(3), weights(4))


def test_cancel_stops_between_steps():
    token = CancelToken()
    events = []

    def on_event(ev):
        events.append(ev)
        token.cancel()

    gen = iter_pretrain_tiles(_toy_tiles(16), input_px=16, epochs=5, batch_size=8, device="cpu", cancel=token)
    with pytest.raises(Cancelled):
        run(gen, on_event)
    assert len(events) == 1 and events[0].stage == "pretrain"


@pytest.mark.parametrize(
    ("tiles", "kw", "match"),
    [
        (np.zeros((4, 8, 8), np.uint8), {}, "uint8"),
        (np.zeros((4, 8, 8, 3), np.float32), {}, "uint8"),
        (np.zeros((1, 8, 8, 3), np.uint8), {}, "at least 2"),
        (np.zeros((4, 8, 8, 3), np.uint8), {"image_norm": "zscore"}, "image_norm"),
    ],
)
def test_bad_input_is_one_clear_error(tiles, kw, match):
    with pytest.raises(InputError, match=match):
        run(iter_pretrain_tiles(tiles, input_px=8, device="cpu", **kw))


def test_init_from_a_weights_file_continues_from_it(tmp_path):
    from safetensors.torch import save_file

    from napari_mclstexp.model.encoders import make_image_encoder

    torch.manual_seed(7)
    enc, _ = make_image_encoder("smallcnn", "none", 16)
    path = tmp_path / "start.safetensors"
    save_file({k: v.contiguous() for k, v in enc.state_dict().items()}, str(path))
    tiles = _toy_tiles(8)
    res = run(iter_pretrain_tiles(tiles, init=str(path), input_px=16, epochs=1, batch_size=8, lr=0.0, threads=1))
    assert torch.equal(res.state_dict["features.0.weight"], enc.state_dict()["features.0.weight"])  # lr 0: unchanged
    fresh = run(iter_pretrain_tiles(tiles, input_px=16, epochs=1, batch_size=8, lr=0.0, threads=1))
    assert not torch.equal(fresh.state_dict["features.0.weight"], enc.state_dict()["features.0.weight"])

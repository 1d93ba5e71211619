"""Tensor augmentation: symmetries keep pixels, jitter ranges, reproducibility."""

from __future__ import annotations

import pytest
import torch

from napari_mclstexp.data.augment import augment_batch, color_jitter, flip_rot90, rotate


def batch(n=16, size=8):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def test_flip_rot90_are_square_symmetries():
    x = batch()
    out = flip_rot90(x, generator=torch.Generator().manual_seed(1))
    variants = []
    for img in x:
        group = [img.rot90(k, (1, 2)) for k in range(4)]
        group += [g.flip(-1) for g in group]
        variants.append(group)
    for i in range(len(x)):
        assert any(torch.equal(out[i], v) for v in variants[i])
    assert not torch.equal(out, x)  # 16 images: some changed


def test_jitter_and_reproducibility():
    x = batch()
    assert torch.equal(augment_batch(x, flips=False, rot90=False), x)
    a = augment_batch(x, jitter=(0.5, 0.5, 0.5), rotate_deg=30, generator=torch.Generator().manual_seed(5))
    b = augment_batch(x, jitter=(0.5, 0.5, 0.5), rotate_deg=30, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == x.shape
    assert a.min() >= 0 and a.max() <= 1
    bright = color_jitter(torch.full((200, 3, 2, 2), 0.5), brightness=0.5, generator=torch.Generator().manual_seed(2))
    factors = bright[:, 0, 0, 0] / 0.5
    assert factors.min() >= 0.5 - 1e-6 and factors.max() <= 1.5 + 1e-6 and factors.std() > 0.2
    grey = color_jitter(x, saturation=1.0, generator=torch.Generator().manual_seed(3))
    assert grey.shape == x.shape


def test_rotate_zero_is_identity_and_180_reverses():
    x = batch(size=6)
    torch.testing.assert_close(rotate(x, 0.0), x, atol=1e-5, rtol=0)
    g = torch.Generator().manual_seed(0)
    out = rotate(x[:1], 1e-9, generator=g)
    torch.testing.assert_close(out, x[:1], atol=1e-5, rtol=0)


def _reference_flip_rot90(x, g):
    """The previous implementation (every rotated copy of the whole batch): same draws, same result."""
    n = x.shape[0]
    h = torch.rand(n, generator=g) < 0.5
    v = torch.rand(n, generator=g) < 0.5
    out = torch.where(h.view(-1, 1, 1, 1), x.flip(-1), x)
    out = torch.where(v.view(-1, 1, 1, 1), out.flip(-2), out)
    k = (torch.rand(n, generator=g) * 4).long().clamp_(max=3)
    base = out
    for turns in (1, 2, 3):
        out = torch.where((k == turns).view(-1, 1, 1, 1), base.rot90(turns, dims=(2, 3)), out)
    return out


def test_flip_rot90_rotates_only_the_images_that_drew_a_turn(monkeypatch):
    x = batch(n=64, size=6)
    expected = _reference_flip_rot90(x, torch.Generator().manual_seed(9))
    rotated = []
    original = torch.Tensor.rot90

    def counting_rot90(self, *args, **kwargs):
        rotated.append(self.shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "rot90", counting_rot90)
    out = flip_rot90(x, generator=torch.Generator().manual_seed(9))
    assert torch.equal(out, expected)  # same distribution: identical images for the same draws
    assert 0 < sum(rotated) <= len(x)  # before: 3 rotated copies of the whole batch
    assert torch.equal(x, batch(n=64, size=6))  # input untouched
    counts = torch.zeros(8)  # all 8 symmetries occur, about equally often
    for i in range(len(x)):
        group = [x[i].rot90(k, (1, 2)) for k in range(4)] + [x[i].flip(-1).rot90(k, (1, 2)) for k in range(4)]
        counts[[j for j, v in enumerate(group) if torch.equal(out[i], v)][0]] += 1
    assert (counts > 0).all() and counts.max() <= 20


def test_flips_or_rotations_alone():
    x = batch(n=32, size=6)
    only_flips = flip_rot90(x, rot90=False, generator=torch.Generator().manual_seed(2))
    for a, b in zip(only_flips, x, strict=True):
        assert any(torch.equal(a, v) for v in (b, b.flip(-1), b.flip(-2), b.flip((-2, -1))))
    only_rot = flip_rot90(x, flips=False, generator=torch.Generator().manual_seed(2))
    for a, b in zip(only_rot, x, strict=True):
        assert any(torch.equal(a, b.rot90(k, (1, 2))) for k in range(4))
    assert torch.equal(flip_rot90(x, flips=False, rot90=False), x)


def test_color_jitter_in_place_blends_match_torchvision_formula():
    x = batch(n=40, size=5)  # more than one chunk
    before = x.clone()
    out = color_jitter(x, 0.4, 0.3, 0.5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(x, before)  # input untouched
    g = torch.Generator().manual_seed(4)
    fb, fc, fs = (1.0 + (2.0 * torch.rand(40, generator=g) - 1.0) * v for v in (0.4, 0.3, 0.5))
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    ref = (fb.view(-1, 1, 1, 1) * x).clamp(0, 1)
    mean = (ref * w).sum(1, keepdim=True).mean(dim=(1, 2, 3), keepdim=True)
    ref = (fc.view(-1, 1, 1, 1) * ref + (1 - fc.view(-1, 1, 1, 1)) * mean).clamp(0, 1)
    grey = (ref * w).sum(1, keepdim=True)
    ref = (fs.view(-1, 1, 1, 1) * ref + (1 - fs.view(-1, 1, 1, 1)) * grey).clamp(0, 1)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    assert not torch.allclose(out, x, atol=1e-3)


@pytest.mark.parametrize(
    "flips,rot90,shape", [(True, True, (40, 3, 6, 6)), (True, False, (40, 3, 5, 7)), (False, True, (40, 3, 6, 6))]
)
def test_sync_free_symmetries_equal_the_grouped_ones(flips, rot90, shape):
    """The accelerator path (whole-batch selects, no host sync) gives the CPU path's result exactly."""
    from napari_mclstexp.data import augment

    x = torch.rand(shape, generator=torch.Generator().manual_seed(4))
    sym = torch.randint(0, 8, (shape[0],), generator=torch.Generator().manual_seed(5))
    if not rot90:
        sym = (sym // 4) * 4 + 2 * (sym % 2)  # flips only: 0, 2, 4 or 6 (half turns)
    elif not flips:
        sym = sym % 4
    assert torch.equal(augment._apply_masked(x, sym, rot90), augment._apply_grouped(x, sym))


def test_grey_uses_luma_weights():
    from napari_mclstexp.data import augment

    x = torch.rand(3, 3, 4, 4, generator=torch.Generator().manual_seed(6))
    expected = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    assert torch.allclose(augment._grey(x), expected, atol=1e-6)

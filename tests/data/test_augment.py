"""Tensor augmentation: symmetries keep pixels, jitter ranges, reproducibility."""

from __future__ import annotations

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

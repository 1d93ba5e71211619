"""Augmentation as the reference's torchvision pipeline: nearest rotation, colour jitter in random order."""

from __future__ import annotations

import itertools

import torch
import torchvision.transforms.functional as TF

from napari_mclstexp.data.augment import augment_batch, color_jitter, rotate


def test_nearest_rotation_only_moves_pixels():
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    out = rotate(x, 180.0, torch.Generator().manual_seed(1), mode="nearest")
    values = set(x.flatten().tolist()) | {0.0}
    assert set(out.flatten().tolist()) <= values  # no interpolated values
    bilinear = rotate(x, 180.0, torch.Generator().manual_seed(1))
    assert not set(bilinear.flatten().tolist()) <= values


def _expected(x: torch.Tensor, factors, perm) -> torch.Tensor:
    """torchvision's functional ops, per image, in that image's order."""
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation)
    out = []
    for i in range(len(x)):
        y = x[i]
        for op in perm[i].tolist():
            y = ops[op](y, float(factors[op][i]))
        out.append(y)
    return torch.stack(out)


def test_random_order_jitter_matches_torchvision_per_image():
    n, v = 24, 0.5
    x = torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    out = color_jitter(x, v, v, v, generator=torch.Generator().manual_seed(3), order="random")
    g = torch.Generator().manual_seed(3)  # the same draws: three factor vectors, then the orders
    factors = [1.0 + (2.0 * torch.rand(n, generator=g) - 1.0) * v for _ in range(3)]
    perm = torch.argsort(torch.rand((n, 3), generator=g), dim=1)
    torch.testing.assert_close(out, _expected(x, factors, perm), atol=2e-4, rtol=0)
    assert len({tuple(p) for p in perm.tolist()}) > 1  # several orders occur
    fixed = color_jitter(x, v, v, v, generator=torch.Generator().manual_seed(3))
    identity = torch.arange(3).expand(n, 3)
    torch.testing.assert_close(fixed, _expected(x, factors, identity), atol=2e-4, rtol=0)
    assert not torch.allclose(out, fixed)


def test_augment_batch_passes_the_paper_options():
    x = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    out = augment_batch(
        x,
        flips=False,
        rot90=False,
        rotate_deg=90.0,
        rotate_mode="nearest",
        jitter=(0.0, 0.0, 0.0),
        generator=torch.Generator().manual_seed(5),
    )
    assert set(out.flatten().tolist()) <= set(x.flatten().tolist()) | {0.0}
    for a, b in itertools.pairwise([x, out]):
        assert a.shape == b.shape

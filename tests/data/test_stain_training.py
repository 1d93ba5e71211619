"""Training sees one stain: sections mapped to their pooled reference; stain augmentation perturbs H, E, DAB."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_mclstexp.data.stain_augment import stain_jitter
from napari_mclstexp.synthetic.stain import MACENKO_HE, rotate_vectors, tissue_concentrations, write_stained_slide


@pytest.fixture(scope="module")
def two_labs(synthetic_samples, tmp_path_factory):
    """Two sections on the same tissue, stained by two labs (512 × 512 px, the synthetic samples' spots)."""
    out = tmp_path_factory.mktemp("labs")
    conc = tissue_concentrations((512, 512), seed=2)
    paths = [
        write_stained_slide(out / "lab1.tif", conc, MACENKO_HE, noise_sd=0.01),
        write_stained_slide(
            out / "lab2.tif", conc * np.array([1.4, 0.7]), rotate_vectors(MACENKO_HE, 7), noise_sd=0.01
        ),
    ]
    samples = []
    for i, path in enumerate(paths):
        a = synthetic_samples[0].copy()
        lib = next(iter(a.uns["spatial"]))
        a.uns["spatial"][lib]["metadata"]["source_image_path"] = str(path)
        a.obs["section"] = f"LAB{i + 1}"
        samples.append(a)
    return samples


def test_training_sections_are_mapped_to_one_reference(two_labs):
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.progress import run
    from napari_mclstexp.train.batches import load_training_data

    cfg = get_preset("quick").replace(input_px=32, patch_px=64)
    n = two_labs[0].n_obs
    gaps = {}
    for on in (False, True):
        _, patches, _, _ = run(load_training_data(two_labs, cfg.replace(stain_normalize=on), None, None, None))
        a, b = patches[:n].astype(float), patches[n:].astype(float)
        gaps[on] = np.abs(a - b).mean()  # the same tissue: what differs is the stain
    assert gaps[True] < 0.5 * gaps[False], gaps


def test_stain_jitter_is_seeded_bounded_and_grows_with_strength():
    torch.manual_seed(0)
    x = torch.rand(6, 3, 16, 16) * 0.6 + 0.2
    assert stain_jitter(x, 0.0) is x
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = stain_jitter(x, 0.1, g1), stain_jitter(x, 0.1, g2)
    torch.testing.assert_close(a, b)
    assert a.shape == x.shape and float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    weak = (stain_jitter(x, 0.02, torch.Generator().manual_seed(1)) - x).abs().mean()
    strong = (stain_jitter(x, 0.2, torch.Generator().manual_seed(1)) - x).abs().mean()
    assert 0 < weak < strong
    # each image gets its own draw
    same = x[:1].expand(4, -1, -1, -1).contiguous()
    out = stain_jitter(same, 0.1, torch.Generator().manual_seed(5))
    assert (out[0] - out[1]).abs().max() > 1e-3


def test_augment_batch_applies_stain_jitter_from_the_config():
    from napari_mclstexp.data.augment import augment_batch

    x = torch.rand(4, 3, 8, 8)
    plain = augment_batch(x, flips=False, rot90=False, generator=torch.Generator().manual_seed(0))
    stained = augment_batch(x, flips=False, rot90=False, stain=0.1, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(plain, x)
    assert (stained - x).abs().mean() > 1e-3

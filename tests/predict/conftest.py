"""Fixtures for prediction tests: a tiny untrained bundle built with the real model code."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_bundle(synthetic_samples):
    """A bundle from an untrained, seeded quick-preset model (16-d embeddings, 64 px crops → 32 px)."""
    from napari_mclstexp.bundle import make_bundle
    from napari_mclstexp.model.mclstexp import build_model, pos_shape_for
    from napari_mclstexp.model.presets import get_preset

    torch.manual_seed(0)
    cfg = get_preset("quick").replace(embed_dim=16, input_px=32, patch_px=64, k=8)
    genes = list(synthetic_samples[0].var_names)
    pos_shape = pos_shape_for(synthetic_samples[:2], cfg)
    result = SimpleNamespace(
        model=build_model(cfg, len(genes), pos_shape), config=cfg, genes=genes,
        train_sections=["SYN1", "SYN2"], history=[], pos_shape=pos_shape,
    )
    return make_bundle(result, synthetic_samples[:2], "cpu")

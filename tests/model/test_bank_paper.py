"""The ``paper`` bank: keys from per-spot inputs in chunks of 32 over all sections, values per gene."""

from __future__ import annotations

import numpy as np
import torch

from napari_mclstexp.data.genes import expression_matrix
from napari_mclstexp.model.bank import build_bank
from napari_mclstexp.model.mclstexp import (
    build_model,
    encode_spot_bank,
    pos_shape_for,
    spot_positions,
)
from napari_mclstexp.model.presets import get_preset


def test_paper_bank_chunks_run_across_sections_and_values_are_per_gene(synthetic_samples):
    samples = synthetic_samples[:2]
    cfg = get_preset("paper").replace(encoder="smallcnn", weights="none", pos_table="data", input_px=32)
    genes = list(samples[0].var_names)
    torch.manual_seed(0)
    model = build_model(cfg, len(genes), pos_shape_for(samples, cfg))
    bank = build_bank(model, samples, genes, cfg, "cpu")
    inputs = np.concatenate([expression_matrix(a, genes, "log10_1e4") for a in samples])
    pos = np.concatenate([spot_positions(a, cfg) for a in samples])
    n0 = samples[0].n_obs
    assert n0 % 32 != 0  # so a chunk straddles the two sections
    expected = encode_spot_bank(model, inputs, pos, cfg, "cpu").numpy()
    np.testing.assert_allclose(bank.embeddings, expected, rtol=1e-5, atol=1e-6)
    restarting = encode_spot_bank(model, inputs[n0:], pos[n0:], cfg, "cpu").numpy()
    assert not np.allclose(bank.embeddings[n0:], restarting, atol=1e-4)  # the old per-section chunks
    values = np.concatenate([expression_matrix(a, genes, "log10_1e4_per_gene") for a in samples])
    np.testing.assert_allclose(bank.expression, values)
    assert list(bank.sections[[0, -1]]) == ["SYN1", "SYN2"]


def test_quick_bank_keeps_per_spot_values(synthetic_samples):
    samples = synthetic_samples[:2]
    cfg = get_preset("quick").replace(input_px=32)
    genes = list(samples[0].var_names)
    model = build_model(cfg, len(genes), pos_shape_for(samples, cfg))
    bank = build_bank(model, samples, genes, cfg, "cpu")
    np.testing.assert_allclose(bank.expression, np.concatenate([expression_matrix(a, genes) for a in samples]))
    alone = encode_spot_bank(model, expression_matrix(samples[1], genes), spot_positions(samples[1], cfg), cfg, "cpu")
    np.testing.assert_allclose(bank.embeddings[samples[0].n_obs :], alone.numpy(), rtol=1e-5, atol=1e-6)

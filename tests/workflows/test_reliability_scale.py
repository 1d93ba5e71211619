"""Reliability scores a paper bundle on its bank values' scale (per gene), in its training precision."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from napari_mclstexp.bundle import make_bundle
from napari_mclstexp.model.mclstexp import build_model, pos_shape_for
from napari_mclstexp.model.presets import get_preset
from napari_mclstexp.progress import run
from napari_mclstexp.workflows import reliability


def test_paper_bundle_reliability_uses_the_per_gene_truth(synthetic_samples, monkeypatch):
    samples = synthetic_samples[:2]
    cfg = get_preset("paper").replace(encoder="smallcnn", weights="none", pos_table="data", input_px=32, k=20)
    genes = list(samples[0].var_names)
    torch.manual_seed(0)
    result = SimpleNamespace(
        model=build_model(cfg, len(genes), pos_shape_for(samples, cfg)),
        config=cfg,
        genes=genes,
        train_sections=["SYN1", "SYN2"],
        history=[],
        pos_shape=pos_shape_for(samples, cfg),
    )
    bundle = make_bundle(result, samples, "cpu")
    methods, precisions = [], []
    real_matrix, real_embed = reliability.expression_matrix, reliability.embed_patches

    def matrix(adata, panel, method):
        methods.append(method)
        return real_matrix(adata, panel, method)

    def embed(*args, precision="bf16", **kwargs):
        precisions.append(precision)
        return (yield from real_embed(*args, precision=precision, **kwargs))

    monkeypatch.setattr(reliability, "expression_matrix", matrix)
    monkeypatch.setattr(reliability, "embed_patches", embed)
    out = run(reliability.iter_gene_reliability(bundle, samples, device="cpu"))
    assert set(methods) == {"log10_1e4_per_gene"} and set(precisions) == {"fp32"}
    assert len(out["r"]) == len(genes)

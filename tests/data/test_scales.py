"""Per-gene (reference evaluation) vs per-spot (ours) expression scales."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from napari_mclstexp.data.genes import expression_matrix, normalize_counts
from napari_mclstexp.data.scales import PER_GENE, PER_SPOT, describe_scale, value_normalization
from napari_mclstexp.model.presets import get_preset


def test_per_gene_equals_the_reference_formula_on_a_hand_made_matrix():
    counts = np.array([[1, 0, 3], [3, 0, 1], [0, 0, 4]], dtype=float)  # 3 spots × 3 genes
    out = normalize_counts(counts, PER_GENE)
    # reference: the (genes, spots) matrix, each row ÷ its sum × 1e4, log10(1 + x)
    gene0 = np.log10(1 + 1e4 * np.array([1, 3, 0]) / 4)
    gene2 = np.log10(1 + 1e4 * np.array([3, 1, 4]) / 8)
    np.testing.assert_allclose(out[:, 0], gene0, rtol=1e-6)
    np.testing.assert_allclose(out[:, 2], gene2, rtol=1e-6)
    assert np.all(out[:, 1] == 0)  # a gene without counts stays 0
    # the per-spot scale (ours) differs: spot 0 is divided by its own total 4
    ours = normalize_counts(counts, PER_SPOT)
    assert ours[0, 0] == pytest.approx(np.log10(1 + 1e4 * 1 / 4), rel=1e-6)
    assert ours[0, 2] == pytest.approx(np.log10(1 + 1e4 * 3 / 4), rel=1e-6)
    assert not np.allclose(ours, out)
    # sparse input gives the same values
    np.testing.assert_allclose(normalize_counts(sparse.csr_matrix(counts), PER_GENE), out)


def test_per_gene_normalises_each_section_on_its_own():
    counts = np.array([[1, 2], [3, 2], [5, 1], [5, 3]], dtype=np.float32)
    obs = pd.DataFrame({"section": ["A", "A", "B", "B"]}, index=[f"s{i}" for i in range(4)])
    adata = ad.AnnData(X=counts, obs=obs, var=pd.DataFrame(index=["g1", "g2"]))
    out = expression_matrix(adata, ["g2", "g1"], PER_GENE)
    np.testing.assert_allclose(out[:2], normalize_counts(counts[:2, ::-1], PER_GENE), rtol=1e-6)
    np.testing.assert_allclose(out[2:], normalize_counts(counts[2:, ::-1], PER_GENE), rtol=1e-6)
    # over all four spots at once the numbers would differ
    assert not np.allclose(out, normalize_counts(counts[:, ::-1], PER_GENE))


def test_value_normalization_of_configs_and_their_dicts():
    paper, quick = get_preset("paper"), get_preset("quick")
    assert value_normalization(paper) == PER_GENE and value_normalization(paper.to_dict()) == PER_GENE
    assert value_normalization(quick) == PER_SPOT and value_normalization(quick.to_dict()) == PER_SPOT
    old_bundle_config = {k: v for k, v in quick.to_dict().items() if k != "value_normalization"}
    assert value_normalization(old_bundle_config) == PER_SPOT
    assert "per gene" in describe_scale(PER_GENE) and "ours" in describe_scale(PER_SPOT)

"""Gene panels and normalisation."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from napari_mclstexp.data.genes import (
    expression_matrix,
    load_gene_list,
    normalize_counts,
    select_genes,
)
from napari_mclstexp.errors import CountsError, GenePanelError, InputError, MissingInputError


def test_log10_1e4_matches_reference_formula():
    X = np.array([[1, 3, 0], [0, 0, 0], [5, 5, 10]], dtype=float)
    out = normalize_counts(X, "log10_1e4")
    assert out.dtype == np.float32
    expected = np.log10(1 + X / X.sum(1, keepdims=True).clip(1) * 1e4)
    expected[1] = 0
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out[0, 1] == pytest.approx(np.log10(7501))
    assert not np.isnan(out).any()


def test_ln_cpm_and_sparse_input():
    X = sparse.csr_matrix(np.array([[2, 2], [0, 4]], dtype=np.float32))
    out = normalize_counts(X, "ln_cpm")
    np.testing.assert_allclose(out, [[np.log1p(5e5), np.log1p(5e5)], [0, np.log1p(1e6)]], rtol=1e-6)


def test_normalize_rejects_bad_counts_and_method():
    with pytest.raises(CountsError, match="negative"):
        normalize_counts(np.array([[1.0, -1.0]]), "log10_1e4")
    with pytest.raises(CountsError, match="NaN"):
        normalize_counts(np.array([[1.0, np.nan]]), "log10_1e4")
    with pytest.raises(InputError, match="unknown normalisation"):
        normalize_counts(np.ones((2, 2)), "zscore")


def test_load_gene_list_formats(tmp_path):
    np.save(tmp_path / "g.npy", np.array(["A", "B", "C"]))
    (tmp_path / "g.txt").write_text("# panel\nA\n\nB  # comment\nC\n")
    (tmp_path / "g.csv").write_text("gene,score\nA,1\nB,2\nC,3\n")
    (tmp_path / "h.csv").write_text("A\nB\nC\n")
    for name in ("g.npy", "g.txt", "g.csv", "h.csv"):
        assert load_gene_list(tmp_path / name) == ["A", "B", "C"], name


def test_load_gene_list_errors(tmp_path):
    with pytest.raises(MissingInputError, match="none.txt"):
        load_gene_list(tmp_path / "none.txt")
    (tmp_path / "empty.txt").write_text("\n# nothing\n")
    with pytest.raises(GenePanelError, match="empty"):
        load_gene_list(tmp_path / "empty.txt")
    (tmp_path / "dup.txt").write_text("A\nB\nA\n")
    with pytest.warns(UserWarning, match="1 repeated"):
        assert load_gene_list(tmp_path / "dup.txt") == ["A", "B"]


def _ad(X, genes):
    return ad.AnnData(X=np.asarray(X, dtype=np.float32), var=pd.DataFrame(index=genes))


def test_select_genes_common_and_lists(tmp_path):
    a = _ad(np.ones((3, 3)), ["A", "B", "C"])
    b = _ad(np.ones((3, 3)), ["C", "A", "D"])
    assert select_genes([a, b]) == ["A", "C"]
    assert select_genes({"a": a, "b": b}, ["D", "A"]) == ["D", "A"]
    with pytest.warns(UserWarning, match="1 of 3 genes"):
        assert select_genes([a, b], ["A", "ZZ", "B"]) == ["A", "B"]
    with pytest.raises(GenePanelError, match="none of the 1"):
        select_genes([a], ["ZZ"])
    (tmp_path / "p.txt").write_text("C\nB\n")
    assert select_genes([a], str(tmp_path / "p.txt")) == ["C", "B"]
    with pytest.raises(GenePanelError, match="hvg:N"):
        select_genes([a], "hvg:many")


def test_hvg_ranks_variable_genes_first(rng):
    n = 200
    base = rng.poisson(20, size=(n, 6)).astype(float)
    base[:, 2] = rng.poisson(1 + 60 * (rng.random(n) > 0.5))  # strongly variable
    base[:, 4] = rng.poisson(1 + 30 * (rng.random(n) > 0.5))  # variable
    base[:, 5] = 0  # never expressed
    genes = ["G0", "G1", "V1", "G3", "V2", "Z"]
    a = _ad(base, genes)
    b = _ad(base[::-1][:, [1, 0, 2, 3, 4, 5]], ["G1", "G0", "V1", "G3", "V2", "Z"])
    c = _ad(base[:, :5], genes[:5])
    assert select_genes([a, b, c], "hvg:2") == ["V1", "V2"]
    with pytest.warns(UserWarning, match="only 5 genes"):
        chosen = select_genes([a, b], "hvg:10")
    assert "Z" not in chosen and len(chosen) == 5


def test_expression_matrix_panel_order_and_missing(synthetic_sample):
    genes = [synthetic_sample.var_names[3], "ABSENT", synthetic_sample.var_names[0]]
    with pytest.warns(UserWarning, match="1 of 3 panel genes absent"):
        out = expression_matrix(synthetic_sample, genes, "log10_1e4")
    assert out.shape == (synthetic_sample.n_obs, 3) and out.dtype == np.float32
    assert (out[:, 1] == 0).all()
    counts = synthetic_sample.X.toarray()[:, [3, 0]]
    expected = normalize_counts(counts, "log10_1e4")
    np.testing.assert_allclose(out[:, [0, 2]], expected, rtol=1e-6)


def test_expression_matrix_all_absent(synthetic_sample):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(GenePanelError):
            expression_matrix(synthetic_sample, ["X1", "X2"], "ln_cpm")


def test_parse_gene_spec_reads_names_hvg_and_paths(tmp_path):
    from napari_mclstexp.data.genes import parse_gene_spec

    assert parse_gene_spec("  ") is None and parse_gene_spec(None) is None
    assert parse_gene_spec("ERBB2, CD74 GATA3") == ["ERBB2", "CD74", "GATA3"]
    assert parse_gene_spec("hvg:50") == "hvg:50"
    assert parse_gene_spec("panel.npy") == "panel.npy" and parse_gene_spec("lists/panel") == "lists/panel"
    (tmp_path / "PANEL").write_text("ERBB2\n")  # an existing file without a suffix is a file, not a gene
    assert parse_gene_spec(str(tmp_path / "PANEL")) == str(tmp_path / "PANEL")


def test_hvg_plus_markers(rng):
    n = 200
    base = rng.poisson(20, size=(n, 6)).astype(float)
    base[:, 2] = rng.poisson(1 + 60 * (rng.random(n) > 0.5))  # strongly variable
    genes = ["G0", "G1", "V1", "G3", "ERBB2", "CD74"]
    a, b = _ad(base, genes), _ad(base[::-1], genes)
    assert select_genes([a, b], "hvg:1+ERBB2,CD74") == ["V1", "ERBB2", "CD74"]
    assert select_genes([a, b], "hvg:1+V1, G0") == ["V1", "G0"]  # a marker already chosen is not repeated
    c = _ad(base[:, :5], genes[:5])
    with pytest.raises(GenePanelError, match="CD74") as err:
        select_genes([a, c], "hvg:1+ERBB2,CD74")
    assert "ERBB2" not in str(err.value).split("CD74")[0].split(":")[-1]  # only the missing marker named
    with pytest.raises(GenePanelError, match="hvg:N"):
        select_genes([a], "hvg:x+CD74")


def test_default_panel_refusal_is_short():
    from napari_mclstexp.data.panel import check_default_panel
    from napari_mclstexp.model.presets import get_preset

    many = _ad(np.ones((2, 2500)), [f"G{i}" for i in range(2500)])
    with pytest.raises(GenePanelError) as err:
        check_default_panel([many], None, get_preset("quick"))
    said = str(err.value)
    assert len(said) < 160 and "--" not in said and said.startswith("choose a gene panel"), said

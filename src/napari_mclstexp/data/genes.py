"""Gene panels (files, ``hvg:N``, user lists) and count normalisation.

``hvg:N`` rule: take the genes present in every sample; in each sample normalise the counts of those
genes with ``log10_1e4`` and compute each gene's variance across spots; rank genes by variance within
each sample (rank 1 = most variable); keep the ``N`` genes with the lowest mean rank over samples (ties
broken by the first sample's gene order), returned most variable first.  Genes with no counts at all in
some sample are never selected.  Averaging ranks (not variances) lets every sample count equally
whatever its depth.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import GenePanelError, InputError, MissingInputError
from ..sample import check_counts
from .scales import PER_GENE, per_gene_log10, section_groups

METHODS = ("log10_1e4", "ln_cpm", "none", "log10_1e4_per_gene")
_HEADER_WORDS = {"gene", "genes", "symbol", "gene_symbol", "gene_name", "name", "feature", "gene_id", "id"}


def _dedupe(genes: Iterable[str], path: str | os.PathLike | None) -> list[str]:
    seen: dict[str, None] = {}
    n_dup = 0
    for g in genes:
        if g in seen:
            n_dup += 1
        seen[g] = None
    if n_dup:
        warnings.warn(f"{path}: {n_dup} repeated gene names ignored", UserWarning, stacklevel=3)
    return list(seen)


def load_gene_list(path: str | os.PathLike) -> list[str]:
    """Read a gene panel file.

    Parameters
    ----------
    path
        ``.npy`` (array of str), ``.csv``/``.tsv`` (first column, or a column named ``gene``/``symbol``;
        a header line is detected), or text with one gene per line (``#`` starts a comment).

    Returns
    -------
    list of str
        Gene names in file order, repeats removed (with a warning).

    Raises
    ------
    MissingInputError, GenePanelError
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingInputError("gene list file not found", p)
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
            genes = [str(g) for g in np.asarray(arr).ravel()]
        elif suffix in (".csv", ".tsv"):
            sep = "\t" if suffix == ".tsv" else ","
            table = pd.read_csv(p, sep=sep, header=None, dtype=str, comment="#")
            first = [str(v).strip().lower() for v in table.iloc[0]]
            column = 0
            has_header = False
            for i, word in enumerate(first):
                if word in _HEADER_WORDS:
                    column, has_header = i, True
                    break
            values = table.iloc[1 if has_header else 0 :, column]
            genes = [str(g).strip() for g in values.dropna()]
        else:
            text = p.read_text(encoding="utf-8")
            genes = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise GenePanelError(f"cannot read gene list: {err}", p) from err
    genes = [g for g in genes if g and g.lower() != "nan"]
    if not genes:
        raise GenePanelError("gene list is empty", p)
    return _dedupe(genes, p)


def _as_list(samples: Any) -> list[Any]:
    if isinstance(samples, dict):
        return list(samples.values())
    return list(samples)


def common_genes(samples: Sequence[Any]) -> list[str]:
    """Genes present in every sample, in the first sample's order."""
    samples = _as_list(samples)
    if not samples:
        raise GenePanelError("no samples given to choose genes from")
    shared = set(samples[0].var_names)
    for ad in samples[1:]:
        shared &= set(ad.var_names)
    return [g for g in samples[0].var_names if g in shared]


def normalize_counts(X: Any, method: str = "log10_1e4") -> np.ndarray:
    """Normalise a (spots × genes) count matrix over the given genes.

    Parameters
    ----------
    X
        (N, G) counts, dense or sparse.
    method
        ``"log10_1e4"``: per spot divide by the sum over the G genes, ×1e4, then log10(1 + x) (the
        reference code); ``"ln_cpm"``: ln(1 + counts per million); ``"none"``: counts as float32;
        ``"log10_1e4_per_gene"``: each gene over the N spots (the reference's evaluation scale,
        :mod:`napari_mclstexp.data.scales`; the N spots must be one section).
        Spots (genes, per gene) whose counts sum to zero get zeros.

    Returns
    -------
    numpy.ndarray
        float32 (N, G).
    """
    if method not in METHODS:
        raise InputError(f"unknown normalisation {method!r}; choose one of {', '.join(METHODS)}")
    if X.shape[0] and X.shape[1]:
        check_counts(X)
    dense = np.asarray(X.toarray() if sparse.issparse(X) else X, dtype=np.float64)
    if method == "none":
        return dense.astype(np.float32)
    if method == PER_GENE:
        return per_gene_log10(dense).astype(np.float32)
    totals = dense.sum(axis=1, keepdims=True)
    scale = 1e4 if method == "log10_1e4" else 1e6
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(totals > 0, dense / np.where(totals > 0, totals, 1.0), 0.0) * scale
    out = np.log10(1.0 + rel) if method == "log10_1e4" else np.log1p(rel)
    return out.astype(np.float32)


def _columns(adata: Any, genes: Sequence[str]) -> tuple[Any, list[str]]:
    index = pd.Index(adata.var_names)
    pos = index.get_indexer(list(genes))
    missing = [g for g, i in zip(genes, pos, strict=True) if i < 0]
    X = adata.X
    X = X.tocsc() if sparse.issparse(X) else np.asarray(X)
    if not missing:
        return X[:, pos], missing
    # A 0/1 selection matrix places present genes and leaves zero columns for absent ones.
    present = np.flatnonzero(pos >= 0)
    select = sparse.csr_matrix((np.ones(len(present)), (pos[present], present)), shape=(adata.n_vars, len(genes)))
    out = X @ select
    return (out.tocsr() if sparse.issparse(out) else np.asarray(out)), missing


def expression_matrix(adata: Any, genes: Sequence[str], method: str = "log10_1e4") -> np.ndarray:
    """Normalised expression of a gene panel, in panel order.

    Parameters
    ----------
    adata
        Sample with raw counts in ``X``.
    genes
        The panel.  Genes absent from the sample become zero columns (with a warning).
    method
        See :func:`normalize_counts`; the per-spot sum runs over the panel (as in the reference code);
        ``"log10_1e4_per_gene"`` normalises each section (``obs['section']``) on its own.

    Returns
    -------
    numpy.ndarray
        float32 (N spots, G genes).
    """
    genes = list(genes)
    if not genes:
        raise GenePanelError("the gene panel is empty")
    X, missing = _columns(adata, genes)
    if missing:
        if len(missing) == len(genes):
            raise GenePanelError(f"none of the {len(genes)} panel genes is in the sample")
        lib = adata.obs["section"].iloc[0] if "section" in adata.obs and adata.n_obs else "sample"
        warnings.warn(
            f"{lib}: {len(missing)} of {len(genes)} panel genes absent, set to zero (e.g. {', '.join(missing[:5])})",
            UserWarning,
            stacklevel=2,
        )
    if method != PER_GENE:
        return normalize_counts(X, method)
    out = np.zeros(X.shape, dtype=np.float32)
    for rows in section_groups(adata):
        out[rows] = normalize_counts(X[rows], method)
    return out


def hvg_genes(samples: Sequence[Any], n: int) -> list[str]:
    """The ``n`` most variable genes present in every sample (rule in the module docstring)."""
    samples = _as_list(samples)
    common = common_genes(samples)
    if not common:
        raise GenePanelError("the samples share no genes")
    ranks = np.zeros((len(samples), len(common)))
    expressed = np.ones(len(common), dtype=bool)
    for i, ad in enumerate(samples):
        X, _ = _columns(ad, common)
        totals = np.asarray(X.sum(axis=0)).ravel()
        expressed &= totals > 0
        norm = normalize_counts(X, "log10_1e4")
        var = norm.var(axis=0)
        order = np.argsort(-var, kind="stable")
        ranks[i, order] = np.arange(1, len(common) + 1)
    mean_rank = np.where(expressed, ranks.mean(axis=0), np.inf)
    n_ok = int(expressed.sum())
    if n > n_ok:
        warnings.warn(f"hvg:{n} asked but only {n_ok} genes are expressed in every sample", UserWarning, stacklevel=2)
    best = np.argsort(mean_rank, kind="stable")[: min(n, n_ok)]
    return [common[j] for j in best]


#: Suffixes :func:`load_gene_list` reads.
GENE_LIST_SUFFIXES = (".npy", ".txt", ".csv", ".tsv")


def parse_gene_spec(text: str | None) -> str | list[str] | None:
    """A typed panel spec (e.g. a text field) as :func:`select_genes` takes it.

    Empty → ``None`` (all shared genes); ``hvg:N``, anything that looks like a path (a separator, a
    gene-list suffix, an existing file) → unchanged; otherwise gene names separated by commas or
    spaces → a list (``"ERBB2, CD74"`` → ``["ERBB2", "CD74"]``).
    """
    text = (text or "").strip()
    if not text:
        return None
    looks_like_path = any(sep in text for sep in ("/", "\\")) or text.lower().endswith(GENE_LIST_SUFFIXES)
    if text.lower().startswith("hvg:") or looks_like_path or Path(text).expanduser().is_file():
        return text
    return [name for name in text.replace(",", " ").split() if name]


def _check_markers(samples: Sequence[Any], markers: Sequence[str]) -> None:
    """Markers named after ``hvg:N+`` must be measured in every sample (else no panel is chosen)."""
    for i, ad in enumerate(samples):
        missing = [g for g in markers if g not in ad.var_names]
        if missing:
            section = ad.obs["section"].iloc[0] if "section" in ad.obs and ad.n_obs else f"sample {i + 1}"
            raise GenePanelError(f"marker {', '.join(missing)} is not measured in section {section}")


def select_genes(samples: Sequence[Any], spec: Any = None) -> list[str]:
    """Choose the gene panel.

    Parameters
    ----------
    samples
        AnnData samples (list or dict) the panel must fit.
    spec
        ``None``: all genes present in every sample; ``"hvg:N"``: see module docstring;
        ``"hvg:N+ERBB2,CD74"``: those plus named markers (each measured in every sample); a path to a
        gene-list file; or a list of names.  For files and lists, genes found in no sample are dropped
        with a warning (genes in some samples only are kept: those samples get zeros).

    Returns
    -------
    list of str
        The panel, in order.

    Raises
    ------
    GenePanelError
        Unparsable spec, or no panel gene in the data.
    """
    samples = _as_list(samples)
    if spec is None:
        genes = common_genes(samples)
        if not genes:
            raise GenePanelError("the samples share no genes")
        return genes
    if isinstance(spec, str) and spec.lower().startswith("hvg:"):
        count, _, extra = spec.split(":", 1)[1].partition("+")
        try:
            n = int(count)
        except ValueError as err:
            raise GenePanelError(f"bad gene spec {spec!r}: expected hvg:N with N a whole number") from err
        if n < 1:
            raise GenePanelError(f"bad gene spec {spec!r}: N must be at least 1")
        markers = _dedupe([g for g in extra.replace(",", " ").split() if g], "markers")
        _check_markers(samples, markers)
        chosen = hvg_genes(samples, n)
        return chosen + [g for g in markers if g not in chosen]
    source: str | os.PathLike | None = None
    if isinstance(spec, (str, os.PathLike)):
        source = spec
        wanted = load_gene_list(spec)
    else:
        wanted = _dedupe([str(g) for g in spec], "gene list")
    known: set[str] = set()
    for ad in samples:
        known |= set(ad.var_names)
    kept = [g for g in wanted if g in known]
    if not kept:
        raise GenePanelError(f"none of the {len(wanted)} listed genes is in the data", source)
    if len(kept) < len(wanted):
        missing = [g for g in wanted if g not in known]
        warnings.warn(
            f"{source or 'gene list'}: {len(missing)} of {len(wanted)} genes are in no sample and were dropped "
            f"(e.g. {', '.join(missing[:5])})",
            UserWarning,
            stacklevel=2,
        )
    return kept

"""Retrieval: exact neighbours and weights on constructed data, L1 vs L2, blocking, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_mclstexp.model.bank import ReferenceBank
from napari_mclstexp.predict.retrieval import inverse_square_weights, retrieve


def _bank(keys: np.ndarray, expr: np.ndarray) -> ReferenceBank:
    m = len(keys)
    return ReferenceBank(
        keys, expr, [f"g{i}" for i in range(expr.shape[1])], np.array(["S"] * m), np.array([f"s{i}" for i in range(m)])
    )


def test_exact_neighbours_and_weights_l2():
    # keys along distinct directions; the query points at key 0, then key 1 is closer in angle than key 2
    keys = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    expr = np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0], [9.0, 9.0]], dtype=np.float32)
    query = np.array([[1.0, 0.0]], dtype=np.float32)
    r = retrieve(query, _bank(keys, expr), k=2, distance="l2")
    assert r.indices.tolist() == [[0, 1]]
    # raw L2 distances: |(1,0)-(2,0)| = 1, |(1,0)-(1,1)| = 1 → equal weights
    np.testing.assert_allclose(r.weights, [[0.5, 0.5]], atol=1e-6)
    np.testing.assert_allclose(r.prediction, [[0.5, 0.5]], atol=1e-6)
    # weighted std per gene = 0.5 for both genes → mean 0.5
    np.testing.assert_allclose(r.uncertainty, [0.5], atol=1e-6)


def test_l1_differs_from_l2():
    keys = np.array([[3.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    expr = np.array([[1.0], [0.0]], dtype=np.float32)
    query = np.array([[1.0, 0.0]], dtype=np.float32)
    bank = _bank(keys, expr)
    l2 = retrieve(query, bank, k=2, distance="l2")
    l1 = retrieve(query, bank, k=2, distance="l1")
    assert l2.indices.tolist() == l1.indices.tolist() == [[0, 1]]  # neighbours are by cosine in both
    # d = (2, 1) for both L1 and L2 here? No: key1 diff (0, 1): L1 = 1, L2 = 1; key0 diff (2, 0): both 2.
    np.testing.assert_allclose(l2.weights, [[0.2, 0.8]], atol=1e-6)
    keys2 = np.array([[3.0, 0.0], [2.0, 1.0]], dtype=np.float32)  # key1 diff (1, 1): L1 = 2, L2 = √2
    l2b = retrieve(query, _bank(keys2, expr), k=2, distance="l2")
    l1b = retrieve(query, _bank(keys2, expr), k=2, distance="l1")
    # L2: w ∝ (1/4, 1/2) → (1/3, 2/3); L1: w ∝ (1/4, 1/4) → (1/2, 1/2)
    np.testing.assert_allclose(l2b.weights, [[1 / 3, 2 / 3]], atol=1e-6)
    np.testing.assert_allclose(l1b.weights, [[0.5, 0.5]], atol=1e-6)
    np.testing.assert_allclose(l1b.prediction, [[0.5]], atol=1e-6)
    np.testing.assert_allclose(l2b.prediction, [[1 / 3]], atol=1e-6)


def test_zero_distance_gets_all_the_weight():
    w = inverse_square_weights(torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0], [1.0, 2.0, 2.0]]))
    np.testing.assert_allclose(w.numpy(), [[1, 0, 0], [0.5, 0.5, 0], [2 / 3, 1 / 6, 1 / 6]], atol=1e-6)
    assert np.isfinite(w.numpy()).all()


def test_matches_brute_force_and_blocking(rng):
    keys = rng.normal(size=(300, 8)).astype(np.float32)
    expr = rng.gamma(2.0, size=(300, 5)).astype(np.float32)
    queries = rng.normal(size=(97, 8)).astype(np.float32)
    bank = _bank(keys, expr)
    small = retrieve(queries, bank, k=7, distance="l1", max_elements=500)  # forces blocks of 1 query
    big = retrieve(queries, bank, k=7, distance="l1")
    np.testing.assert_array_equal(small.indices, big.indices)
    np.testing.assert_allclose(small.prediction, big.prediction, rtol=1e-5)
    # brute force
    cos = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ (
        keys / np.linalg.norm(keys, axis=1, keepdims=True)
    ).T
    top = np.argsort(-cos, axis=1)[:, :7]
    np.testing.assert_array_equal(big.indices, top)
    d = np.abs(queries[:, None, :] - keys[top]).sum(-1)
    w = 1 / d**2
    w /= w.sum(1, keepdims=True)
    np.testing.assert_allclose(big.weights, w, rtol=1e-5)
    np.testing.assert_allclose(big.weights.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(big.prediction, np.einsum("nk,nkg->ng", w, expr[top]), rtol=1e-5)
    assert big.uncertainty.shape == (97,) and (big.uncertainty > 0).all()


def test_torch_in_torch_out_and_k_clipped(rng):
    keys = rng.normal(size=(5, 4)).astype(np.float32)
    expr = rng.normal(size=(5, 3)).astype(np.float32)
    q = torch.from_numpy(rng.normal(size=(3, 4)).astype(np.float32)).to(torch.bfloat16)
    r = retrieve(q, _bank(keys, expr), k=50)
    assert torch.is_tensor(r.prediction) and r.prediction.dtype == torch.float32
    assert r.indices.shape == (3, 5)
    assert sorted(r.indices[0].tolist()) == [0, 1, 2, 3, 4]


def test_bad_distance_rejected(rng):
    bank = _bank(np.eye(3, dtype=np.float32), np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="distance"):
        retrieve(np.eye(3, dtype=np.float32), bank, k=1, distance="cos")


def test_blocks_stay_bounded_for_100k_by_100k():
    from napari_mclstexp.predict.retrieval import DEFAULT_MAX_ELEMENTS, block_size

    n_keys, k, dim, genes = 100_000, 200, 256, 785
    b = block_size(n_keys, k, dim, genes, DEFAULT_MAX_ELEMENTS)
    assert 1 <= b < 1000
    assert b * n_keys <= DEFAULT_MAX_ELEMENTS  # similarity block
    assert b * k * genes <= DEFAULT_MAX_ELEMENTS  # gathered neighbour expression
    assert block_size(10**9, k, dim, genes, DEFAULT_MAX_ELEMENTS) == 1  # never zero

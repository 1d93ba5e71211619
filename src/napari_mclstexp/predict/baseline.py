"""Colour-histogram kNN: the non-learned reference that a trained model must beat.

Per patch: RGB mean and standard deviation plus an 8-bin histogram per channel (30 features).  Features
are standardised with the *training* patches' mean and std, the ``k`` nearest training spots are found
by plain Euclidean distance in that space (scikit-learn), and their expression is averaged with
``1/d²`` weights normalised to sum 1 (the same weighting as mclSTExp retrieval, with the same d = 0
guard).  Euclidean rather than cosine neighbours because standardised features are centred, so cosine
would ignore how far a patch is from the average.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

from .retrieval import inverse_square_weights, weighted_mean_std

#: Histogram bins per channel over 0–255.
N_BINS = 8
N_FEATURES = 3 + 3 + 3 * N_BINS


def histogram_features(patches: np.ndarray, *, chunk: int = 256) -> np.ndarray:
    """Colour features of RGB patches.

    Parameters
    ----------
    patches
        ``(N, H, W, 3)`` uint8 patches.
    chunk
        Patches processed at a time (bounds memory).

    Returns
    -------
    np.ndarray
        ``(N, 30)`` float32, not standardised: per channel mean and std of the intensities
        (0–255 scale, divided by 255), then per channel the fraction of pixels in each of 8 equal
        bins over 0–255 (R bins, G bins, B bins).
    """
    patches = np.asarray(patches)
    if patches.ndim != 4 or patches.shape[-1] != 3:
        raise ValueError(f"patches must be (N, H, W, 3), got shape {patches.shape}")
    n = patches.shape[0]
    out = np.empty((n, N_FEATURES), dtype=np.float32)
    for start in range(0, n, chunk):
        block = patches[start : start + chunk].reshape(min(chunk, n - start), -1, 3)
        values = block.astype(np.float32) / 255.0
        out[start : start + len(block), 0:3] = values.mean(axis=1)
        out[start : start + len(block), 3:6] = values.std(axis=1)
        bins = (block.astype(np.int32) * N_BINS) // 256  # 0..7
        # one bincount for the whole block: bin id offset by (patch, channel)
        offsets = (np.arange(len(block))[:, None, None] * 3 + np.arange(3)) * N_BINS
        counts = np.bincount((bins + offsets).ravel(), minlength=len(block) * 3 * N_BINS)
        hist = counts.reshape(len(block), 3 * N_BINS) / bins.shape[1]
        out[start : start + len(block), 6:] = hist
    return out


def histogram_knn_predict(
    train_patches: np.ndarray,
    train_expr: np.ndarray,
    test_patches: np.ndarray,
    k: int,
    *,
    return_uncertainty: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Predict expression of test patches from the colour-histogram neighbours among training spots.

    Parameters
    ----------
    train_patches, test_patches
        ``(M, H, W, 3)`` and ``(N, H, W, 3)`` uint8 patches (any common size).
    train_expr
        ``(M, G)`` normalised expression of the training spots.
    k
        Neighbours (clipped to ``M``).
    return_uncertainty
        Also return the ``(N,)`` weighted std of the neighbours' expression averaged over genes.

    Returns
    -------
    np.ndarray
        ``(N, G)`` float32 predictions (and the uncertainty when asked).
    """
    train_expr = np.asarray(train_expr, dtype=np.float32)
    f_train = histogram_features(train_patches)
    f_test = histogram_features(test_patches)
    if len(f_train) != len(train_expr):
        raise ValueError(f"{len(f_train)} training patches but {len(train_expr)} expression rows")
    mean = f_train.mean(axis=0)
    std = f_train.std(axis=0)
    std[std == 0] = 1.0  # constant feature (e.g. an empty bin): leave it at 0 after centring
    f_train = (f_train - mean) / std
    f_test = (f_test - mean) / std
    k = max(1, min(int(k), len(f_train)))
    dist, idx = NearestNeighbors(n_neighbors=k).fit(f_train).kneighbors(f_test)
    w = inverse_square_weights(torch.from_numpy(dist.astype(np.float32)))
    pred, unc = weighted_mean_std(w, torch.from_numpy(idx), torch.from_numpy(train_expr))
    if return_uncertainty:
        return pred.numpy(), unc.numpy()
    return pred.numpy()

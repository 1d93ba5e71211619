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

from ..data.descriptors import N_BINS, N_FEATURES, histogram_features
from .retrieval import inverse_square_weights, weighted_mean_std

__all__ = ["N_BINS", "N_FEATURES", "histogram_features", "histogram_knn_predict"]


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

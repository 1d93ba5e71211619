"""The HEST recipe as a model: frozen encoder features → standardise → PCA 256 → ridge regression.

HEST-Benchmark (Jaume et al. 2024) scores encoders this way: features standardised, reduced by PCA to
256 components, and a closed-form ridge fit per gene (its ``alpha = 100 / (n_features × n_genes)`` on
the PCA features).  We fit the same pipeline with scikit-learn on the cached features (one fit,
seconds on a CPU) but with an intercept, so predictions are in expression units (HEST fits without
one, which leaves Pearson unchanged but not MSE).  Because every step is linear the whole pipeline
collapses into one ``Linear(F, G)``: :class:`RidgeModel` is the encoder followed by that layer, and
it predicts through the same code paths as the contrastive model (its "embeddings" are the
predicted expression, see :func:`~napari_mclstexp.predict.heads.predict_from_embeddings`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .encoders import make_image_encoder
from .presets import TrainConfig, as_config

#: PCA components of the HEST recipe.
PCA_COMPONENTS = 256


def hest_alpha(n_features: int, n_genes: int) -> float:
    """HEST-Benchmark's ridge penalty for ``n_features`` PCA features and ``n_genes`` targets."""
    return 100.0 / max(1, n_features * n_genes)


def fit_ridge(
    features: np.ndarray,
    expression: np.ndarray,
    n_components: int = PCA_COMPONENTS,
    alpha: float | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit standardise → PCA → ridge and return it collapsed to ``(weight (G, F), bias (G,))`` float32.

    Parameters
    ----------
    features
        (N, F) encoder features of the training spots.
    expression
        (N, G) normalised expression.
    n_components
        PCA components (capped at ``min(N, F)``).
    alpha
        Ridge penalty; default :func:`hest_alpha`.
    seed
        PCA solver seed (randomised SVD on large inputs).
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(expression, dtype=np.float64)
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    k = int(min(n_components, x.shape[0], x.shape[1]))
    pca = PCA(n_components=k, random_state=seed).fit((x - scaler.mean_) / scale)
    z = pca.transform((x - scaler.mean_) / scale)
    reg = Ridge(alpha=hest_alpha(k, y.shape[1]) if alpha is None else float(alpha)).fit(z, y)
    # y = ((x - mu) / s - m) C^T B^T + b  =  x W^T + c
    proj = (pca.components_.T / scale[:, None]) @ reg.coef_.T  # (F, G)
    bias = reg.intercept_ - ((scaler.mean_ / scale + pca.mean_) @ pca.components_.T) @ reg.coef_.T
    return proj.T.astype(np.float32), np.asarray(bias, dtype=np.float32)


class RidgeModel(nn.Module):
    """Image encoder + one linear layer predicting (N, G) expression from uint8 patches.

    Offers the attributes prediction uses on a model (``config``, ``device``, ``channels_last``,
    ``to_input``, ``encode_images``).
    """

    def __init__(
        self, config: TrainConfig | dict[str, Any] | str, n_genes: int, image_weights: str | None = None
    ) -> None:
        super().__init__()
        self.config = as_config(config)
        weights = self.config.weights if image_weights is None else image_weights
        self.image_encoder, feat_dim = make_image_encoder(self.config.encoder, weights, self.config.input_px)
        self.linear = nn.Linear(feat_dim, int(n_genes))
        from .mclstexp import IMAGENET_MEAN, IMAGENET_STD

        self.register_buffer("img_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("img_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.channels_last = False

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return self.img_mean.device

    def to_input(self, patches: torch.Tensor | np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, 3) → float (N, 3, input_px, input_px) in [0, 1] on the model's device."""
        x = torch.as_tensor(patches).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        size = self.config.input_px
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def forward_images(self, x: torch.Tensor) -> torch.Tensor:
        """Float (N, 3, H, W) in [0, 1] → (N, G) predicted normalised expression."""
        from .frozen import encoder_features

        return self.linear(encoder_features(self, x).float())

    def encode_images(self, patches: torch.Tensor | np.ndarray, tta: bool | None = None) -> torch.Tensor:
        """uint8 patches → (N, G) predictions (mean over the 8 flips/rotations with ``tta``)."""
        x = self.to_input(patches)
        if not (self.config.tta if tta is None else tta) or len(x) == 0:
            return self.forward_images(x)
        views = [x.rot90(k, dims=(2, 3)) for k in range(4)]
        views += [v.flip(-1) for v in views]
        return self.forward_images(torch.cat(views)).view(len(views), len(x), -1).mean(0)


def prediction_r2(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean over genes of 1 − SSE/SST (training fit report; NaN-safe for constant genes)."""
    sse = ((pred - truth) ** 2).sum(0)
    sst = ((truth - truth.mean(0)) ** 2).sum(0)
    ok = sst > 0
    return float(np.mean(1 - sse[ok] / sst[ok])) if ok.any() else math.nan

"""Random stain perturbation of training batches (Tellez et al. 2018, "HED" augmentation), on the batch's device.

Each image is unmixed into haematoxylin, eosin and DAB amounts with Ruifrok & Johnston's vectors (as
``skimage.color.rgb2hed`` and the tissue descriptors), each amount scaled by a factor drawn from ``[1 − s, 1 + s]``
and shifted by one drawn from ``[−s, s]`` (in optical-density units), and recomposed: another lab's stronger or
weaker haematoxylin and eosin.  Only scalar constants are used, so it runs inside a captured CUDA graph.
"""

from __future__ import annotations

import numpy as np
import torch

#: Ruifrok & Johnston's H, E, DAB optical-density vectors (rows) and their inverse.
_STAINS = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
_UNMIX = np.linalg.inv(_STAINS)
#: Lowest intensity taken as measurable (optical density −ln of it at most ≈ 5.5).
_FLOOR = 1.0 / 255.0


def stain_jitter(x: torch.Tensor, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-image random H, E, DAB scaling and shift of float RGB ``(N, 3, H, W)`` in [0, 1] (a new tensor).

    Parameters
    ----------
    x
        Images in [0, 1], any device.
    strength
        ``s``: factors in ``[1 − s, 1 + s]``, shifts in ``[−s, s]`` (0 returns ``x``; Tellez et al.: 0.05 light,
        0.2 strong).
    generator
        Optional generator on ``x``'s device.
    """
    s = float(strength)
    if s <= 0 or x.shape[0] == 0:
        return x
    n = x.shape[0]
    draw = torch.rand((2, n, 3), device=x.device, generator=generator, dtype=torch.float32)
    alpha = 1.0 + s * (2.0 * draw[0] - 1.0)  # (N, 3) per stain
    beta = s * (2.0 * draw[1] - 1.0)
    od = torch.clamp(x.float(), min=_FLOOR).log().neg()  # (N, 3, H, W)
    out = torch.zeros_like(od)
    for j in range(3):  # output channel j: Σ_i od_i · M_ij + Σ_k β_k · S_kj, M = U diag(α) S
        acc = None
        for i in range(3):
            m_ij = sum(float(_UNMIX[i, k] * _STAINS[k, j]) * alpha[:, k] for k in range(3))
            term = od[:, i] * m_ij.view(-1, 1, 1)
            acc = term if acc is None else acc + term
        shift = sum(float(_STAINS[k, j]) * beta[:, k] for k in range(3))
        out[:, j] = acc + shift.view(-1, 1, 1)
    return torch.exp(out.neg_()).clamp_(0.0, 1.0).to(x.dtype)

"""H&E images rendered in optical density from stain vectors and concentrations (Beer–Lambert), for stain tests.

The demo slide's renderer (:mod:`.slides`) blends RGB colours, which is not how stains mix; here every pixel is
``I = IO · exp(−(c_H · v_H + c_E · v_E)) − 1`` (:mod:`napari_mclstexp.data.stain`), so the same tissue (the
same concentrations) can be rendered under another lab's stain vectors or strengths and mapped back.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..data.stain import IO, RUIFROK_HE

#: Typical H&E vectors of Macenko et al. 2009 (the reference of their code and of torchstain), rows H, E.
MACENKO_HE = np.array([[0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]])


def tissue_concentrations(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """``(H, W, 2)`` float32 H and E concentrations of a synthetic tissue section, glass at the corners.

    Eosin: smooth stroma/cytoplasm of varying density, absent in places; haematoxylin: nuclei (blobs of
    2–3 px sd) over a faint background; outside an ellipse covering most of the image both are zero (glass).  So
    the tissue holds nearly pure pixels of each stain, as Macenko's estimate assumes.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    eosin = ndimage.gaussian_filter(rng.random((h, w)), max(h, w) / 24)
    eosin = np.clip(1.15 * (eosin - eosin.min()) / max(float(np.ptp(eosin)), 1e-9) - 0.15, 0.0, 1.0)
    dots = np.zeros((h, w))
    n = int(h * w / 180)
    dots[rng.integers(0, h, n), rng.integers(0, w, n)] = 1.0
    nuclei = sum(ndimage.gaussian_filter(dots * (rng.random((h, w)) < 0.5), s) * 2 * np.pi * s * s for s in (2.0, 3.0))
    haem = 0.03 + 1.6 * np.clip(nuclei, 0, 1)
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((yy - h / 2) / (0.46 * h)) ** 2 + ((xx - w / 2) / (0.46 * w)) ** 2 < 1.0
    conc = np.stack([haem * 0.9, eosin * 0.8], axis=-1) * inside[..., None]
    return conc.astype(np.float32)


def render_stained(concentrations: np.ndarray, vectors: np.ndarray, noise_sd: float = 0.0, seed: int = 0) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` of ``(H, W, 2)`` H and E concentrations under ``(2, 3)`` OD vectors (Beer–Lambert).

    ``noise_sd`` adds Gaussian noise to the optical density (camera noise); vectors are used at unit length.
    """
    v = np.asarray(vectors, np.float64)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    od = np.asarray(concentrations, np.float64) @ v
    if noise_sd > 0:
        od = od + np.random.default_rng(seed).normal(0.0, noise_sd, od.shape)
    return np.clip(np.rint(IO * np.exp(-od) - 1.0), 0, 255).astype(np.uint8)


def rotate_vectors(vectors: np.ndarray, degrees: float) -> np.ndarray:
    """Turn both stain vectors by ``degrees`` within their plane, H and E apart (a hue shift of both stains)."""
    v = np.asarray(vectors, np.float64)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    normal = np.cross(v[0], v[1])
    normal /= np.linalg.norm(normal)
    a = np.deg2rad(degrees)
    out = []
    for sign, vec in zip((-1.0, 1.0), v, strict=True):  # H and E turn away from each other
        angle = sign * a
        turned = vec * np.cos(angle) + np.cross(normal, vec) * np.sin(angle)  # Rodrigues; vec ⟂ normal
        out.append(np.abs(turned) / np.linalg.norm(turned))
    return np.stack(out)


def write_stained_slide(
    path: str | os.PathLike, concentrations: np.ndarray, vectors: np.ndarray, *, mpp: float = 1.0, noise_sd: float = 0.0
) -> Path:
    """Render and write a slide as a plain TIFF with resolution tags (lossless); returns the path."""
    import tifffile

    image = render_stained(concentrations, vectors, noise_sd)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, image, photometric="rgb", resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER")
    return path


__all__ = [
    "MACENKO_HE",
    "RUIFROK_HE",
    "render_stained",
    "rotate_vectors",
    "tissue_concentrations",
    "write_stained_slide",
]

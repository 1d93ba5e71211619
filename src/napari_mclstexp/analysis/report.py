"""Writing results: JSON without NaN, provenance (library versions, data hash), h5ad under pandas 3."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse


def json_safe(value: Any) -> Any:
    """A copy with numpy scalars as Python numbers, tuples as lists and NaN/inf as ``None``."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(data: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``data`` as indented JSON, atomically (NaN written as ``null``)."""
    from ..atomic import atomic_write_path

    with atomic_write_path(path) as tmp:
        tmp.write_text(json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")


def versions() -> dict[str, str]:
    """Versions of Python and of the libraries that shape the numbers."""
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    out = {"napari_mclstexp": __version__, "python": platform.python_version()}
    for name in ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "anndata", "pandas"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover
            pass
    return out


def data_hash(samples: Sequence[Any], names: Sequence[str] | None = None) -> str:
    """SHA-256 (hex, first 16 characters) of samples' names, spots, genes, counts and positions."""
    h = hashlib.sha256()
    for i, adata in enumerate(samples):
        if names is not None:
            h.update(str(names[i]).encode())
        h.update("\0".join(map(str, adata.obs_names)).encode())
        h.update("\0".join(map(str, adata.var_names)).encode())
        X = adata.X
        if sparse.issparse(X):
            X = X.tocsr()
            for part in (X.data, X.indices, X.indptr):
                h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(np.ascontiguousarray(X).tobytes())
        h.update(np.ascontiguousarray(adata.obsm["spatial"], dtype=np.float64).tobytes())
    return h.hexdigest()[:16]

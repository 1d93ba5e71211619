"""Writing results: JSON without NaN, provenance (library versions, data hash), h5ad under pandas 3."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse


def json_safe(value: Any, *, drop_none: bool = False) -> Any:
    """A copy that JSON (and, with ``drop_none``, h5ad's ``uns``) can store.

    numpy scalars become Python numbers, tuples lists, NaN/inf ``None``, keys strings, and anything else
    that is not a number, string, bool or ``None`` its ``str`` (paths, dtypes).  ``drop_none`` then leaves
    out ``None`` values and items (h5ad cannot write them).
    """
    if isinstance(value, dict):
        items = ((str(k), json_safe(v, drop_none=drop_none)) for k, v in value.items())
        return {k: v for k, v in items if not (drop_none and v is None)}
    if isinstance(value, list | tuple):
        items = (json_safe(v, drop_none=drop_none) for v in value)
        return [v for v in items if not (drop_none and v is None)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def write_json(data: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``data`` as indented JSON, atomically (NaN written as ``null``); returns the path."""
    from ..atomic import atomic_write_path

    path = Path(path)
    with atomic_write_path(path) as tmp:
        tmp.write_text(json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def versions() -> dict[str, str]:
    """Versions of Python and of the libraries that shape the numbers."""
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    out = {"napari_mclstexp": __version__, "python": platform.python_version()}
    for name in ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "anndata", "pandas", "safetensors", "timm"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
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

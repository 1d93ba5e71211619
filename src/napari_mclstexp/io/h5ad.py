"""AnnData ``.h5ad`` samples: validated reading and atomic writing."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_path
from ..errors import MissingInputError, OutputError, SampleFormatError
from ..sample import image_path, make_var_names_unique, set_image_path, validate_sample


def read_sample(path: str | os.PathLike, *, require_image: bool = False) -> Any:
    """Read an ``.h5ad`` sample and check it against the conventions (see ``docs/ARCHITECTURE.md``).

    Duplicate gene names are made unique with a warning.  A relative ``source_image_path`` is
    resolved against the ``.h5ad`` file's folder when the image is found there.

    Parameters
    ----------
    path
        The ``.h5ad`` file.
    require_image
        Also require the sample's full-resolution image to exist.

    Raises
    ------
    MissingInputError
        The file (or, with ``require_image``, the image) does not exist.
    SampleFormatError, CountsError
        Not an AnnData file, or the sample breaks the conventions.
    """
    import anndata as ad

    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingInputError("sample file not found", p)
    try:
        adata = ad.read_h5ad(p)
    except Exception as err:  # h5py/anndata raise many types for foreign or truncated files
        raise SampleFormatError(f"not a readable AnnData .h5ad file: {err}", p) from err
    make_var_names_unique(adata, p)
    img = image_path(adata)
    if img is not None and not img.is_absolute() and (p.parent / img).exists():
        set_image_path(adata, img, relative_to=p.parent)
    validate_sample(adata, p, require_image=require_image)
    return adata


def write_h5ad(adata: Any, path: str | os.PathLike) -> Path:
    """Write a sample to ``path`` atomically (gzip-free, fast); refuses to overwrite its own image.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    dest = Path(path).expanduser()
    img = image_path(adata)
    if img is not None and dest.resolve() == img.resolve():
        raise OutputError("refusing to overwrite the sample's own image", dest)
    if dest.is_dir():
        raise OutputError("output path is a folder; give a .h5ad file name", dest)
    with atomic_write_path(dest) as tmp, _nullable_strings_allowed():
        adata.write_h5ad(tmp)
    return dest


@contextlib.contextmanager
def _nullable_strings_allowed() -> Iterator[None]:
    """Let anndata write pandas ≥ 3 string columns (the default ``str`` dtype there)."""
    import anndata as ad

    if hasattr(ad.settings, "allow_write_nullable_strings"):
        with ad.settings.override(allow_write_nullable_strings=True):
            yield
    else:  # pragma: no cover - older anndata
        yield

"""A model bundle's file format, read without torch: the zip's members, its metadata and format version.

The napari panel checks a chosen bundle with :func:`check_bundle_file` in the GUI thread (torch, and so
:mod:`napari_mclstexp.bundle`, is imported in a worker); :func:`napari_mclstexp.bundle.load_bundle` reads
the members through :func:`read_members`.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

from .errors import BundleError, MissingInputError

FORMAT_NAME = "napari-mclstexp-bundle"
FORMAT_VERSION = 2  # 2: the optional model-card keys (napari_mclstexp/model_card.py)
_MEMBERS = ("metadata.json", "weights.safetensors", "bank.safetensors", "bank_spots.json")


def check_bundle_file(path: str | os.PathLike) -> dict:
    """The metadata of the bundle at ``path`` after the checks :func:`~napari_mclstexp.bundle.load_bundle`
    makes first (exists, a zip with every member, a known format version); raises what it raises."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError("model bundle not found", path)
    return read_members(path, metadata_only=True)["metadata"]


def read_members(path: Path, *, metadata_only: bool = False) -> dict[str, Any]:
    """The bundle's members (``metadata`` parsed), checked: a zip, with every member, of a known format
    version; ``metadata_only``: those checks without reading the weights and the bank."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            missing = [m for m in _MEMBERS if m not in names]
            if "metadata.json" in missing:
                raise BundleError("not a model bundle (no metadata.json inside)", path)
            meta = json.loads(zf.read("metadata.json"))
            check_format(meta, path)
            if missing:
                raise BundleError(f"bundle is incomplete: missing {', '.join(missing)}", path)
            if metadata_only:
                return {"metadata": meta}
            return {"metadata": meta, **{m: zf.read(m) for m in _MEMBERS[1:]}}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, UnicodeDecodeError, ValueError) as err:
        if isinstance(err, BundleError):
            raise
        raise BundleError(f"not a readable model bundle (corrupt or truncated?): {err}", path) from err


def check_format(meta: Any, path: Path) -> None:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise BundleError(f"not a model bundle (format is not {FORMAT_NAME!r})", path)
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise BundleError(f"bundle has an invalid format_version {version!r}", path)
    if version > FORMAT_VERSION:
        raise BundleError(
            f"bundle format version {version} is newer than this napari-mclstexp supports "
            f"({FORMAT_VERSION}); upgrade napari-mclstexp",
            path,
        )
    if version < 1:
        raise BundleError(f"unknown bundle format version {version}", path)


def read_card(path: str | os.PathLike) -> dict[str, Any]:
    """A bundle's model card from its ``metadata.json`` alone (no weights, no bank, no torch): the stored card,
    or what a format-1 bundle's metadata tells."""
    from .model_card import build_card

    meta = check_bundle_file(path)
    card = meta.get("model_card")
    return dict(card) if isinstance(card, dict) else build_card(meta, (meta.get("bank") or {}).get("n_spots"))

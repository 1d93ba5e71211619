"""Which kind of spot data a path holds, and its samples: the one reader behind napari's file readers
and the Load widget (``.h5ad`` files, her2st, Visium and Visium HD folders)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError, MissingInputError

SpotKind = Literal["h5ad", "her2st", "visium_hd", "visium"]


def is_visium_folder(path: Path) -> bool:
    """A Space Ranger output folder (``spatial/`` plus a feature matrix), possibly one level down."""
    if not path.is_dir():
        return False
    for root in [path, *sorted(p for p in path.iterdir() if p.is_dir())]:
        if (root / "spatial").is_dir() and any(root.glob("*feature_bc_matrix*")):
            return True
    return False


def is_her2st_folder(path: Path) -> bool:
    """The her2st repository layout (``ST-cnts/`` with per-section count tables)."""
    return path.is_dir() and (path / "ST-cnts").is_dir()


def spot_kind(path: str | os.PathLike) -> SpotKind | None:
    """The kind of spot data at ``path``, or ``None`` (not spot data: a slide, another file)."""
    from .visium_hd import is_visium_hd_folder

    p = Path(path)
    if p.name.lower().endswith(".h5ad"):
        return "h5ad"
    if is_her2st_folder(p):
        return "her2st"
    if p.is_dir() and is_visium_hd_folder(p):
        return "visium_hd"
    if is_visium_folder(p):
        return "visium"
    return None


def her2st_sections_with_images(root: str | os.PathLike) -> list[str]:
    """her2st sections whose H&E image is present (``ST-imgs/<patient>/<section>/``), else the first."""
    from .her2st import list_her2st_sections

    root = Path(root)
    sections = list_her2st_sections(root)
    with_images = [s for s in sections if any((root / "ST-imgs" / s[0] / s).glob("*"))]
    return with_images or sections[:1]


def read_visium_hd_sample(path: str | os.PathLike) -> Any:
    """The sample of a Visium HD folder: its 8 µm bins (else the smallest size written)."""
    from .visium_hd import available_bin_sizes, find_binned_outputs, read_visium_hd

    sizes = available_bin_sizes(find_binned_outputs(path))
    return read_visium_hd(path, 8 if (8 in sizes or 2 in sizes) else sizes[0])


def read_spot_samples(path: str | os.PathLike) -> list[Any]:
    """The samples (AnnData) at ``path``: a ``.h5ad`` file, a her2st folder (its sections with images),
    a Visium or a Visium HD folder.

    Raises
    ------
    MissingInputError
        Nothing at ``path``.
    InputError
        ``path`` holds none of these.
    """
    p = Path(path)
    if not p.exists():
        raise MissingInputError("does not exist", p)
    if p.is_dir() and not any(p.iterdir()):
        raise InputError(f"folder {p} is empty")
    kind = spot_kind(p)
    if kind == "h5ad":
        from .h5ad import read_sample

        return [read_sample(p)]
    if kind == "her2st":
        from .her2st import read_her2st

        return list(read_her2st(p, sections=her2st_sections_with_images(p)).values())
    if kind == "visium_hd":
        return [read_visium_hd_sample(p)]
    if kind == "visium":
        from .visium import read_visium

        return [read_visium(p)]
    raise InputError("not a .h5ad file, a Visium folder or a her2st folder", p)

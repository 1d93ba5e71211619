"""npe2 readers: ``.h5ad`` samples, Visium, Visium HD and her2st folders, whole-slide images.

Each reader returns layer data tuples: the slide as a lazy multiscale Image (when the sample names an
existing image) and the spots as a Points layer.  Readers never modify what they read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

#: Whole-slide / flat image suffixes (lower case; ``.ome.tif`` ends in ``.tif``).
WSI_SUFFIXES = (".tif", ".tiff", ".svs", ".ndpi", ".jpg", ".jpeg", ".png")

ReaderFunction = Callable[[str | list[str]], list[tuple]]


def _single(path: str | list[str]) -> str | None:
    if isinstance(path, list | tuple):
        return str(path[0]) if len(path) == 1 else None
    return str(path)


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


def get_reader(path: str | list[str]) -> ReaderFunction | None:
    """Return the reader for ``path`` (a ``.h5ad``, a Visium/her2st folder, a slide), else ``None``."""
    single = _single(path)
    if single is None:
        return None
    p = Path(single)
    name = p.name.lower()
    if name.endswith(".h5ad"):
        return read_h5ad_layers
    if is_her2st_folder(p):
        return read_her2st_layers
    if p.is_dir() and is_visium_hd_folder(p):
        return read_visium_hd_layers
    if is_visium_folder(p):
        return read_visium_layers
    if name.endswith(WSI_SUFFIXES):
        return read_slide_layers
    return None


def read_h5ad_layers(path: str | list[str]) -> list[tuple]:
    """Layers of one ``.h5ad`` sample (slide if its image exists, spots)."""
    from ._qt._layers import sample_layers
    from .io.h5ad import read_sample

    return sample_layers(read_sample(_single(path)))


def read_visium_layers(path: str | list[str]) -> list[tuple]:
    """Layers of a Visium (Space Ranger) folder."""
    from ._qt._layers import sample_layers
    from .io.visium import read_visium

    return sample_layers(read_visium(_single(path)))


def is_visium_hd_folder(path: Path) -> bool:
    """A Space Ranger HD run (``binned_outputs/square_XXXum/``) given as the sample, ``outs`` or itself."""
    from .io.visium_hd import is_visium_hd_folder as _is_hd

    return _is_hd(path)


def read_visium_hd_sample(path: str | os.PathLike):
    """The sample of a Visium HD folder: its 8 µm bins (else the smallest size written)."""
    from .io.visium_hd import available_bin_sizes, find_binned_outputs, read_visium_hd

    sizes = available_bin_sizes(find_binned_outputs(path))
    return read_visium_hd(path, 8 if (8 in sizes or 2 in sizes) else sizes[0])


def read_visium_hd_layers(path: str | list[str]) -> list[tuple]:
    """Layers of a Visium HD folder (:func:`read_visium_hd_sample`)."""
    from ._qt._layers import sample_layers

    return sample_layers(read_visium_hd_sample(_single(path)))


def her2st_sections_with_images(root: str | os.PathLike) -> list[str]:
    """her2st sections whose H&E image is present (``ST-imgs/<patient>/<section>/``)."""
    from .io.her2st import list_her2st_sections

    root = Path(root)
    sections = list_her2st_sections(root)
    with_images = [s for s in sections if any((root / "ST-imgs" / s[0] / s).glob("*"))]
    return with_images or sections[:1]


def read_her2st_layers(path: str | list[str]) -> list[tuple]:
    """Layers of a her2st folder: the sections that have images (else the first section); only the
    last section is visible (their slides share one origin and the top one covers the others)."""
    from ._qt._layers import last_sample_visible, sample_layers
    from .io.her2st import read_her2st

    root = _single(path)
    samples = read_her2st(root, sections=her2st_sections_with_images(root))
    return last_sample_visible([sample_layers(adata) for adata in samples.values()])


def read_slide_layers(path: str | list[str]) -> list[tuple]:
    """A whole-slide image as one lazy multiscale Image layer (µm scale when known)."""
    from ._qt._layers import slide_layer

    return [slide_layer(_single(path))]


def get_folder_reader(path: str | list[str]) -> ReaderFunction | None:
    """Reader for a folder (Visium or her2st layout), else ``None``."""
    single = _single(path)
    if single is None or not Path(single).is_dir():
        return None
    return get_reader(single)

"""npe2 readers: ``.h5ad`` samples, Visium, Visium HD and her2st folders, whole-slide images, QuPath GeoJSON
annotations.

Each reader returns layer data tuples: the slide as a lazy multiscale Image (when the sample names an
existing image) and the spots as a Points layer; a GeoJSON file one Shapes layer per annotation class.
Readers never modify what they read.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from .io.spots import read_spot_samples, spot_kind

#: Whole-slide / flat image suffixes (lower case; ``.ome.tif`` ends in ``.tif``).
WSI_SUFFIXES = (".tif", ".tiff", ".svs", ".ndpi", ".jpg", ".jpeg", ".png")

ReaderFunction = Callable[[str | list[str]], list[tuple]]


def _single(path: str | list[str]) -> str | None:
    if isinstance(path, list | tuple):
        return str(path[0]) if len(path) == 1 else None
    return str(path)


def get_reader(path: str | list[str]) -> ReaderFunction | None:
    """Return the reader for ``path`` (a ``.h5ad``, a Visium/her2st folder, a slide), else ``None``."""
    single = _single(path)
    if single is None:
        return None
    readers = {
        "h5ad": read_h5ad_layers,
        "her2st": read_her2st_layers,
        "visium_hd": read_visium_hd_layers,
        "visium": read_visium_layers,
    }
    kind = spot_kind(single)
    if kind is not None:
        return readers[kind]
    return read_slide_layers if Path(single).name.lower().endswith(WSI_SUFFIXES) else None


def _spot_layers(path: str | list[str]) -> list[tuple]:
    """Layers of every sample at ``path`` (slide if its image exists, spots); of several sections only the
    last is visible (their slides share one origin and the top one covers the others)."""
    from .layer_data import last_sample_visible, sample_layers

    return last_sample_visible([sample_layers(adata) for adata in read_spot_samples(_single(path))])


def read_h5ad_layers(path: str | list[str]) -> list[tuple]:
    """Layers of one ``.h5ad`` sample."""
    return _spot_layers(path)


def read_visium_layers(path: str | list[str]) -> list[tuple]:
    """Layers of a Visium (Space Ranger) folder."""
    return _spot_layers(path)


def read_visium_hd_layers(path: str | list[str]) -> list[tuple]:
    """Layers of a Visium HD folder (its 8 µm bins, drawn as a raster)."""
    return _spot_layers(path)


def read_her2st_layers(path: str | list[str]) -> list[tuple]:
    """Layers of a her2st folder: the sections that have images (else the first section)."""
    return _spot_layers(path)


def read_slide_layers(path: str | list[str]) -> list[tuple]:
    """A whole-slide image as one lazy multiscale Image layer (µm scale when known)."""
    from .layer_data import slide_layer

    return [slide_layer(_single(path))]


def get_folder_reader(path: str | list[str]) -> ReaderFunction | None:
    """Reader for a folder (Visium or her2st layout), else ``None``."""
    single = _single(path)
    if single is None or not Path(single).is_dir():
        return None
    return get_reader(single)


#: Suffix of QuPath GeoJSON exports (plain ``.json`` is too common to claim).
GEOJSON_SUFFIX = ".geojson"


def get_annotations_reader(path: str | list[str]) -> ReaderFunction | None:
    """Reader for a QuPath GeoJSON file of annotations, else ``None``."""
    single = _single(path)
    if single is None or not single.lower().endswith(GEOJSON_SUFFIX) or Path(single).is_dir():
        return None
    return read_annotation_layers


def read_annotation_layers(path: str | list[str]) -> list[tuple]:
    """One Shapes layer per annotation class of a QuPath GeoJSON file (detections are skipped).

    Vertices are the file's full-resolution px.  The layers take the µm scale of the slide or spots
    already open in the current napari viewer (as the Data step's Add annotations does); a reader is not
    told which viewer opens it, so with no such layer (or no viewer) they open in px, scale 1, and the
    Data step's Add annotations, after loading the slide, lands them on its µm scale.

    Raises
    ------
    napari_mclstexp.errors.InputError
        Naming the file: not GeoJSON, malformed, or no annotation polygon (e.g. detections or cells
        only: those are not turned into one shape each).
    """
    from .io.annotations import read_annotations
    from .layer_data import KEY
    from .layer_data.annotations import annotation_layers

    annotations = read_annotations(_single(path))
    layers = annotation_layers(annotations, _open_viewer_mpp())
    for _, kwargs, _ in layers:
        kwargs["metadata"][KEY]["summary"] = annotations.summary()
    return layers


def _open_viewer_mpp() -> float | None:
    """µm per px of our slide/spots layers in the current napari viewer; ``None`` without a running
    viewer (napari's Qt window is never imported here just to ask)."""
    if "napari._qt.qt_main_window" not in sys.modules:
        return None
    import napari

    from .layer_data.annotations import layers_mpp

    viewer = napari.current_viewer()
    return layers_mpp(viewer.layers) if viewer is not None else None

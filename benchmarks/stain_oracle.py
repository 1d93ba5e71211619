"""Where a stain-shifted copy's loss comes from: the estimate of its stain, or information the shift destroyed.

Part of ``python -m benchmarks stain --diagnose``.  Each copy of C4 (:func:`.stain.shifted_copies`) was rendered
from C4's own estimate with a known target stain, so two things can be measured that the normalisation benchmark
cannot tell apart: how far the slide's own estimate (:func:`~napari_mclstexp.data.slide_stain.slide_stain`) of
the copy lies from the stain it was really rendered with (angle of each stain vector, ratio of the kept
concentrations), and the **oracle**: the copy mapped back with the true inverse mapping (``StainMap(target,
own)``), scored without normalisation — the most any normaliser of this form could win back (it is short of
C4 as scanned only by what clipping and JPEG lost).

The true stains are derived from C4's estimate by the running code, so the copies in ``--work`` must have been
rendered by the same estimator: after a change to it, diagnose in a fresh ``--work`` folder (the copies of an older
folder were rendered from another estimate of C4).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def vector_angles(estimated: np.ndarray, true: np.ndarray) -> list[float]:
    """Degrees between each estimated stain vector and the true one (rows H, E; the sign ignored)."""
    cos = np.abs(np.sum(np.asarray(estimated) * np.asarray(true), axis=1))
    return [float(v) for v in np.degrees(np.arccos(np.clip(cos, 0.0, 1.0)))]


def write_mapped(image: np.ndarray, mapping, out: Path) -> Path:
    """``image`` mapped by ``mapping`` (a :class:`~napari_mclstexp.data.stain.StainMap`) 1,024 rows at a time,
    written atomically as JPEG q95 at ``out`` (the shifted copies and their oracle inverses)."""
    from PIL import Image

    mapped = np.concatenate([mapping(image[y : y + 1024]) for y in range(0, len(image), 1024)])
    tmp = out.with_suffix(".part.jpg")
    Image.fromarray(mapped).save(tmp, quality=95)
    tmp.replace(out)
    return out


def pointing_at(adata, image: Path):
    """A copy of the sample ``adata`` whose H&E image is ``image``."""
    from napari_mclstexp.sample import library_id

    copy = adata.copy()
    copy.uns["spatial"][library_id(copy)]["metadata"]["source_image_path"] = str(Path(image).resolve())
    return copy


def oracle_copy(copy_path: Path, target, own, out: Path) -> Path:
    """``copy_path`` mapped back with the true inverse of its shift (JPEG q95 at ``out``; reused when there)."""
    from napari_mclstexp.data.stain import StainMap
    from napari_mclstexp.io.wsi import open_slide

    if not out.is_file():
        with open_slide(copy_path) as slide:
            h, w = slide.shape
            write_mapped(slide.read_region(0, 0, w, h, 0), StainMap(target, own), out)
    return out


def diagnose(
    samples: dict, copies: dict, bundle, truth: np.ndarray, work: Path, cache, *, score, shifted_target
) -> dict:
    """Per copy: the estimate's error, and ACG/HEG@50 as is (``none``), with ``auto`` and from the oracle.

    ``score(bundle, adata, truth, stain, cache)`` and ``shifted_target(kind, own, b4)`` are
    :mod:`.stain`'s (passed in: a part does not import the part that runs it)."""
    from napari_mclstexp.data.slide_stain import slide_stain
    from napari_mclstexp.sample import image_path

    own, b4 = slide_stain(image_path(samples["C4"])), slide_stain(image_path(samples["B4"]))
    out: dict = {}
    for kind, adata in copies.items():
        target = shifted_target(kind, own, b4)
        copy_path = Path(image_path(adata))
        estimate = slide_stain(copy_path)
        row: dict = {
            "angle_deg": dict(zip(("H", "E"), vector_angles(estimate.vectors, target.vectors), strict=True)),
            "max_concentration_ratio": dict(
                zip(("H", "E"), (estimate.max_concentrations / target.max_concentrations).tolist(), strict=True)
            ),
        }
        oracle = pointing_at(adata, oracle_copy(copy_path, target, own, work / f"C4_{kind}_oracle.jpg"))
        row["none"] = score(bundle, adata, truth, "none", cache)
        row["auto"] = score(bundle, adata, truth, "auto", cache)
        row["oracle"] = score(bundle, oracle, truth, "none", cache)
        out[kind] = row
        print(kind, row, flush=True)
    return out

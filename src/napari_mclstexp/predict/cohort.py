"""Cohort prediction: one model over many H&E-only slides, resumable, failure-tolerant, spread over ranks.

Each slide is predicted on its tile grid (:func:`~napari_mclstexp.predict.slide.predict_whole_slide`) and
written atomically to ``OUT_DIR/<name>.h5ad``, so an output that exists is complete: a rerun after a
crash or a kill skips it.  A slide that fails is recorded with its error and the others go on.  Under
``torchrun`` the slides still to do are dealt round-robin to the ranks of all nodes (each rank predicts
whole slides on its own device); rank 0 writes ``OUT_DIR/cohort_summary.csv`` (one row per slide:
status, tiles, novel fraction, seconds, error, rank).
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..atomic import atomic_write_path
from ..errors import Cancelled, InputError, MissingInputError
from ..progress import CancelToken, Progress, ProgressGen
from .options import DEFAULT, PredictOptions

if TYPE_CHECKING:
    from ..bundle import Bundle

#: Name of the per-slide summary table written into the output folder.
SUMMARY_NAME = "cohort_summary.csv"
SUMMARY_COLUMNS = ["name", "image", "output", "status", "tiles", "novel_fraction", "seconds", "error", "rank"]


@dataclass(frozen=True)
class CohortSlide:
    """One slide of a cohort: its output name, image file and (optional) µm per pixel."""

    name: str
    image: Path
    mpp: float | None = None


@dataclass
class CohortResult:
    """What :func:`predict_cohort` did: one row per slide (columns :data:`SUMMARY_COLUMNS`)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    summary_path: Path | None = None

    @property
    def table(self) -> pd.DataFrame:
        """The rows as a DataFrame."""
        return pd.DataFrame(self.rows, columns=SUMMARY_COLUMNS)

    def count(self, status: str) -> int:
        """Number of slides with ``status`` (``done``, ``skipped`` or ``failed``)."""
        return sum(r["status"] == status for r in self.rows)

    @property
    def failed(self) -> int:
        """Number of slides that failed."""
        return self.count("failed")


def slide_name(path: str | os.PathLike) -> str:
    """Output name of a slide file: its name without image suffixes (``a.ome.tif`` → ``a``)."""
    name = Path(path).name
    for suffix in (".ome.tiff", ".ome.tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _unique(slides: list[CohortSlide], where: Path | None) -> list[CohortSlide]:
    names = pd.Series([s.name for s in slides])
    dup = sorted(set(names[names.duplicated()]))
    if dup:
        raise InputError(f"slide names must be unique (they name the outputs); repeated: {', '.join(dup[:5])}", where)
    if not slides:
        raise InputError("no slides given", where)
    return slides


def slides_from_paths(paths: Sequence[str | os.PathLike]) -> list[CohortSlide]:
    """Slides named after their files (:func:`slide_name`); repeated names are an :class:`InputError`."""
    return _unique([CohortSlide(slide_name(p), Path(p).expanduser()) for p in paths], None)


def read_manifest(path: str | os.PathLike) -> list[CohortSlide]:
    """Slides listed in a CSV: column ``image`` (required; relative to the CSV's folder), optional
    ``name`` (default: from the file name) and ``mpp`` (µm/px for files that do not record it).

    Raises
    ------
    MissingInputError, InputError
        Missing file, no ``image`` column, empty or repeated names.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingInputError("manifest not found", path)
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read the manifest CSV: {err}", path) from err
    table.columns = [str(c).strip().lower() for c in table.columns]
    if "image" not in table.columns:
        raise InputError(f"the manifest needs an 'image' column (found: {', '.join(table.columns)})", path)
    slides = []
    for row in table.itertuples(index=False):
        image = Path(str(row.image).strip()).expanduser()
        image = image if image.is_absolute() else path.parent / image
        name = str(getattr(row, "name", "") or "").strip()
        name = slide_name(image) if name in ("", "nan") else name
        mpp = getattr(row, "mpp", None)
        mpp = float(mpp) if mpp is not None and np.isfinite(float(mpp)) and float(mpp) > 0 else None
        slides.append(CohortSlide(name, image, mpp))
    return _unique(slides, path)


def output_path(out_dir: Path, slide: CohortSlide) -> Path:
    """Where a slide's prediction is written: ``OUT_DIR/<name>.h5ad``."""
    return Path(out_dir) / f"{slide.name}.h5ad"


def _remove_stale_parts(out: Path) -> None:
    """Temporary files a killed run left beside ``out`` (atomic writes that never finished)."""
    for part in out.parent.glob(f".{out.name}.*.part"):
        with contextlib.suppress(OSError):
            part.unlink()


def _tiles_in(path: Path) -> int | None:
    """Number of tiles of an existing output (for the summary of skipped slides)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            obs = f["obs"]
            return int(obs[obs.attrs.get("_index", "_index")].shape[0])
    except (OSError, KeyError):
        return None


def _novel_fraction_in(path: Path) -> float | None:
    """``uns['mclstexp']['novel_fraction']`` of an existing output (``None``: not scored or unreadable)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return float(f["uns/mclstexp/novel_fraction"][()])
    except (OSError, KeyError, TypeError, ValueError):
        return None


def predict_cohort(
    bundle: Bundle,
    slides: Sequence[CohortSlide],
    out_dir: str | os.PathLike,
    options: PredictOptions = DEFAULT,
    *,
    step_px: int | None = None,
    min_tissue: float = 0.25,
    dist: Any = None,
    cancel: CancelToken | None = None,
) -> ProgressGen[CohortResult]:
    """Predict every slide of a cohort into ``out_dir`` (resumable; failures recorded, not fatal).

    Parameters
    ----------
    bundle
        A loaded :class:`~napari_mclstexp.bundle.Bundle`.
    slides
        The slides (:func:`slides_from_paths`, :func:`read_manifest`).
    out_dir
        Output folder (created): one ``<name>.h5ad`` per slide and ``cohort_summary.csv``.
    options
        :class:`~napari_mclstexp.predict.options.PredictOptions` of every slide; ``device`` is that of a single
        process: under ``dist`` each rank uses ``dist.device``.
    step_px, min_tissue
        Passed to :func:`~napari_mclstexp.predict.slide.predict_whole_slide`.
    dist
        A :class:`~napari_mclstexp.train.distributed.DistContext`: slides still to do are dealt
        round-robin to the ranks; every rank returns the whole summary; rank 0 writes it.
    cancel
        Checked between batches of tiles and between slides.

    Yields
    ------
    Progress
        Stage ``"cohort"``: slides finished / total on this rank (metrics ``eta_s``, ``failed``).

    Returns
    -------
    CohortResult
        One row per slide in the given order: ``status`` ``done`` (predicted now), ``skipped`` (its
        output existed) or ``failed`` (``error`` says why).
    """
    from ..io.h5ad import write_h5ad
    from .slide import predict_whole_slide

    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    slides = list(slides)
    rank = int(getattr(dist, "rank", 0) or 0)
    world = int(getattr(dist, "world_size", 1) or 1)
    if dist is not None and world > 1:
        options = options.replace(device=getattr(dist, "device", None))
    # every rank takes rank 0's view of what is finished (taken before anyone writes: gather is a barrier)
    finished = [output_path(out_dir, s).is_file() for s in slides]
    if dist is not None and world > 1:
        finished = dist.gather_objects(finished)[0]
    pending = [i for i, f in enumerate(finished) if not f]
    mine = pending[rank::world]
    rows: dict[int, dict[str, Any]] = {}
    if rank == 0:
        for i in (i for i, f in enumerate(finished) if f):
            out = output_path(out_dir, slides[i])
            rows[i] = {
                "name": slides[i].name,
                "image": str(slides[i].image),
                "output": str(out),
                "status": "skipped",
                "tiles": _tiles_in(out),
                "novel_fraction": _novel_fraction_in(out),
                "seconds": 0.0,
                "error": "",
                "rank": 0,
            }
    total, done, t0 = len(mine), 0, time.perf_counter()
    yield Progress(
        "cohort", 0, total, message=f"{len(slides) - len(pending)} of {len(slides)} already done", metrics={"failed": 0}
    )
    for i in mine:
        slide = slides[i]
        out = output_path(out_dir, slide)
        _remove_stale_parts(out)
        row = {
            "name": slide.name,
            "image": str(slide.image),
            "output": str(out),
            "status": "done",
            "tiles": 0,
            "novel_fraction": None,
            "seconds": 0.0,
            "error": "",
            "rank": rank,
        }
        start = time.perf_counter()
        try:
            gen = predict_whole_slide(
                bundle,
                slide.image,
                options,
                step_px=step_px,
                min_tissue=min_tissue,
                cancel=cancel,
                mpp=slide.mpp,
            )
            try:
                while True:
                    event = next(gen)
                    if event.stage == "predict":
                        yield Progress(
                            "cohort",
                            done,
                            total,
                            message=f"{slide.name}: {event.step}/{event.total} tiles",
                            metrics={"failed": _failed(rows)},
                        )
            except StopIteration as stop:
                pred = stop.value
            write_h5ad(pred, out)
            row["tiles"] = int(pred.n_obs)
            row["novel_fraction"] = pred.uns.get("mclstexp", {}).get("novel_fraction")  # None: not scored
        except (Cancelled, KeyboardInterrupt):
            raise
        except Exception as err:  # one bad slide must not stop the cohort: record it and go on
            row.update(status="failed", error=f"{type(err).__name__}: {err}", tiles=None)
            if os.environ.get("MCLSTEXP_DEBUG"):
                traceback.print_exc()
        row["seconds"] = round(time.perf_counter() - start, 3)
        rows[i] = row
        done += 1
        per_slide = (time.perf_counter() - t0) / done
        yield Progress(
            "cohort",
            done,
            total,
            message=f"{slide.name}: {row['status']}",
            metrics={"eta_s": per_slide * (total - done), "failed": _failed(rows)},
        )
        if cancel is not None:
            cancel.raise_if_cancelled()
    if dist is not None and world > 1:
        merged: dict[int, dict[str, Any]] = {}
        for part in dist.gather_objects(rows):
            merged.update(part)
        rows = merged
    result = CohortResult([rows[i] for i in sorted(rows)])
    if rank == 0:
        result.summary_path = write_summary(result, out_dir / SUMMARY_NAME)
    return result


def _failed(rows: dict[int, dict[str, Any]]) -> int:
    return sum(r["status"] == "failed" for r in rows.values())


def write_summary(result: CohortResult, path: Path) -> Path:
    """Write the per-slide table atomically as CSV; returns ``path``."""
    with atomic_write_path(path) as tmp:
        result.table.to_csv(tmp, index=False)
    return path

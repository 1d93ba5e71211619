"""``mclstexp import her2st DIR --out OUTDIR``, ``import visium DIR --out FILE.h5ad`` and
``import visium-hd DIR --bin 8|16 --out FILE.h5ad``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import MissingInputError, OutputError
from ..progress import Progress, ProgressGen, run_with_progress
from ._paths import check_output

DESCRIPTION = """\
Convert spatial transcriptomics data into the .h5ad sample files every other command reads
(AnnData: raw counts, spot centres in full-resolution image pixels, grid coordinates, section and
patient names, the path of the H&E image, pixel size).  The input files are only read, never changed.
"""

EPILOG = """\
examples:
  mclstexp import her2st ../shared/data/her2st --out samples/
      one <section>.h5ad per section (A1.h5ad ... H3.h5ad); sections without an H&E image
      are kept as expression-only reference data.
  mclstexp import her2st ../shared/data/her2st --sections B4,C2 --out samples/
  mclstexp import visium V1_Breast/outs --out V1_Breast.h5ad --image V1_Breast_image.tif
      --image is the full-resolution H&E picture the spot coordinates refer to (TIFF, SVS, JPEG ...).
  mclstexp import visium-hd HD_sample/outs --bin 8 --out HD_8um.h5ad --image HD_fullres.tif
      8 µm bins of a Visium HD run (--bin 2, 8, 16 as written; other multiples of 2 µm are summed).
"""


def register(subparsers: Any) -> None:
    """Add the ``import`` command with its ``her2st`` and ``visium`` sub-commands."""
    p = subparsers.add_parser(
        "import",
        help="convert her2st (legacy ST), 10x Visium or Visium HD folders into .h5ad samples",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    h = kinds.add_parser(
        "her2st",
        help="her2st / legacy Spatial Transcriptomics folder (ST-cnts, ST-spotfiles, ST-imgs, ...)",
        description=(
            "Read a her2st-layout folder: counts ST-cnts/<section>.tsv.gz, spot positions "
            "ST-spotfiles/<section>_selection.tsv, H&E images ST-imgs/<patient>/<section>/*.jpg, "
            "pathologist labels ST-pat/lbl and reference clusters ST-cluster (when present). "
            "Writes one <section>.h5ad per section into OUTDIR."
        ),
    )
    h.add_argument("folder", metavar="DIR", help="the her2st folder")
    h.add_argument("--out", metavar="OUTDIR", required=True, help="folder for the .h5ad files (created)")
    h.add_argument("--sections", metavar="S1,S2,...", help="only these sections (default: all with counts)")
    h.add_argument("--overwrite", action="store_true", help="replace .h5ad files that already exist")
    h.set_defaults(run=run)
    v = kinds.add_parser(
        "visium",
        help="10x Genomics Visium Space Ranger output folder",
        description=(
            "Read a Space Ranger 'outs' folder: filtered_feature_bc_matrix.h5, "
            "spatial/tissue_positions(_list).csv, spatial/scalefactors_json.json and the hires/lowres "
            "images. Only spots under tissue are kept. Writes one .h5ad file."
        ),
    )
    v.add_argument("folder", metavar="DIR", help="the Space Ranger output folder")
    _one_h5ad_arguments(v, "full-resolution H&E image of the section (needed to train or predict from pixels)")
    hd = kinds.add_parser(
        "visium-hd",
        help="10x Genomics Visium HD Space Ranger output folder (binned_outputs/square_XXXum)",
        description=(
            "Read one bin size of a Visium HD run: binned_outputs/square_XXXum/filtered_feature_bc_matrix.h5, "
            "spatial/tissue_positions.parquet and spatial/scalefactors_json.json. Sizes Space Ranger did not "
            "write (any multiple of 2 µm) are summed from the 2 µm bins. Only bins under tissue are kept. "
            "Writes one .h5ad file."
        ),
    )
    hd.add_argument("folder", metavar="DIR", help="the sample folder, its outs/ or outs/binned_outputs/")
    hd.add_argument(
        "--bin",
        dest="bin_um",
        type=int,
        default=8,
        metavar="UM",
        help="bin edge in µm: 2, 8, 16 or another multiple of 2 (default: %(default)s)",
    )
    _one_h5ad_arguments(hd, "full-resolution H&E image (default: the one Space Ranger recorded, when it exists)")
    sdp = kinds.add_parser(
        "spatialdata",
        help="SpatialData .zarr store (image + shapes of spots/bins + the table annotating them)",
        description=(
            "Read a table of a SpatialData store and the shapes it annotates; spot/bin centres are "
            "brought onto the image's pixels through the store's transformations. The image "
            "element is written once as a pyramidal OME-TIFF beside the .h5ad. Needs the "
            "spatialdata extra."
        ),
    )
    sdp.add_argument("folder", metavar="STORE.zarr", help="the SpatialData store")
    sdp.add_argument("--out", metavar="FILE.h5ad", required=True, help="the .h5ad file to write")
    sdp.add_argument("--table", metavar="NAME", help="table element (default: the first)")
    sdp.add_argument("--image", metavar="NAME", help="image element (default: the first)")
    sdp.add_argument("--overwrite", action="store_true", help="replace the .h5ad file if it exists")
    sdp.set_defaults(run=run)


def _one_h5ad_arguments(parser: argparse.ArgumentParser, image_help: str) -> None:
    """``--out``, ``--image``, ``--library-id`` and ``--overwrite`` of the Space Ranger importers."""
    parser.add_argument("--out", metavar="FILE.h5ad", required=True, help="the .h5ad file to write")
    parser.add_argument("--image", metavar="FULLRES", help=image_help)
    parser.add_argument("--library-id", metavar="NAME", help="sample name (default: from the matrix or folder)")
    parser.add_argument("--overwrite", action="store_true", help="replace the .h5ad file if it exists")
    parser.set_defaults(run=run)


def _her2st_job(folder: Path, out: Path, sections: list[str]) -> ProgressGen[list[tuple[str, Any]]]:
    """Read and write one section at a time (memory stays at one section); returns (section, summary)."""
    from ..io.h5ad import write_h5ad
    from ..io.her2st import read_her2st_section
    from ..sample import image_path

    done = []
    for i, section in enumerate(sections):
        yield Progress("import", i, len(sections), message=section)
        adata = read_her2st_section(folder, section)
        write_h5ad(adata, out / f"{section}.h5ad")
        has_image = image_path(adata) is not None
        done.append((section, (adata.n_obs, adata.n_vars, has_image)))
    yield Progress("import", len(sections), len(sections))
    return done


def run_her2st(args: argparse.Namespace) -> int:
    """Import a her2st folder: one ``<section>.h5ad`` per section."""
    from ..io.her2st import list_her2st_sections

    folder, out = Path(args.folder), Path(args.out)
    if out.exists() and not out.is_dir():
        raise OutputError("--out must be a folder for her2st (one .h5ad per section)", out)
    available = list_her2st_sections(folder)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()] if args.sections else available
    unknown = [s for s in sections if s not in available]
    if unknown:
        raise MissingInputError(f"no counts for sections {', '.join(unknown)}", folder / "ST-cnts")
    for section in sections:
        check_output(out / f"{section}.h5ad", [folder], overwrite=args.overwrite)
    quiet = bool(getattr(args, "quiet", False))
    done = run_with_progress(_her2st_job(folder, out, sections), disable=quiet)
    if not quiet:
        for section, (n_obs, n_vars, has_image) in done:
            note = "with image" if has_image else "expression only"
            print(f"{section}: {n_obs} spots × {n_vars} genes, {note} → {out / f'{section}.h5ad'}")
        with_image = [section for section, (_, _, has_image) in done if has_image]
        print(
            f"{len(done)} section{'' if len(done) == 1 else 's'} imported into {out}: "
            f"{len(with_image)} with an H&E image ({', '.join(with_image) or 'none'}; these can train "
            f"and be predicted), {len(done) - len(with_image)} expression only"
        )
    return 0


def run_visium(args: argparse.Namespace) -> int:
    """Import one Visium folder into one ``.h5ad``."""
    from ..io.h5ad import write_h5ad
    from ..io.visium import read_visium

    folder, out = Path(args.folder), Path(args.out)
    if out.suffix.lower() != ".h5ad":
        raise OutputError("--out must end in .h5ad", out)
    inputs = [folder] + ([Path(args.image)] if args.image else [])
    check_output(out, inputs, overwrite=args.overwrite, suffix=".h5ad")
    adata = read_visium(folder, image=args.image, library_id=args.library_id)
    write_h5ad(adata, out)
    if not getattr(args, "quiet", False):
        note = "with image" if args.image else "expression only (add --image FULLRES to train or predict)"
        print(f"{adata.obs['section'].iloc[0]}: {adata.n_obs} spots × {adata.n_vars} genes, {note} → {out}")
    return 0


def run_visium_hd(args: argparse.Namespace) -> int:
    """Import one bin size of a Visium HD folder into one ``.h5ad``."""
    from ..io.h5ad import write_h5ad
    from ..io.visium_hd import read_visium_hd
    from ..sample import image_path

    folder, out = Path(args.folder), Path(args.out)
    if out.suffix.lower() != ".h5ad":
        raise OutputError("--out must end in .h5ad", out)
    inputs = [folder] + ([Path(args.image)] if args.image else [])
    check_output(out, inputs, overwrite=args.overwrite, suffix=".h5ad")
    adata = read_visium_hd(folder, args.bin_um, image=args.image, library_id=args.library_id)
    write_h5ad(adata, out)
    if not getattr(args, "quiet", False):
        image = image_path(adata)
        note = f"image {image}" if image else "expression only (add --image FULLRES to train or predict)"
        print(
            f"{adata.obs['section'].iloc[0]}: {adata.n_obs} bins of {args.bin_um} µm × {adata.n_vars} genes, "
            f"{note} → {out}"
        )
    return 0


def run_spatialdata(args: argparse.Namespace) -> int:
    """Import one table of a SpatialData store into one ``.h5ad`` (image as ``<out>.image.ome.tif``)."""
    from ..io.h5ad import write_h5ad
    from ..io.spatialdata_io import read_spatialdata

    out = Path(args.out)
    if out.suffix.lower() != ".h5ad":
        raise OutputError("--out must end in .h5ad", out)
    check_output(out, [Path(args.folder)], overwrite=args.overwrite, suffix=".h5ad")
    adata = read_spatialdata(
        args.folder, table=args.table, image=args.image, image_out=out.with_suffix(".image.ome.tif")
    )
    write_h5ad(adata, out)
    if not getattr(args, "quiet", False):
        print(f"{adata.obs['section'].iloc[0]}: {adata.n_obs} spots × {adata.n_vars} genes → {out}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch on ``args.kind``; returns the exit status."""
    runners = {"her2st": run_her2st, "visium": run_visium, "visium-hd": run_visium_hd, "spatialdata": run_spatialdata}
    return runners[args.kind](args)

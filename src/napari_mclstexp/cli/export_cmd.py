"""``mclstexp export PRED.h5ad --geojson FILE --csv FILE --spatialdata STORE.zarr``: predictions for QuPath,
spreadsheets and the scverse tools."""

from __future__ import annotations

import argparse
from typing import Any

from ._paths import check_output

DESCRIPTION = """\
Export a prediction (or any sample .h5ad) for other tools:

  --geojson  QuPath detections: one circle per spot (spot diameter from the sample, else points) in
             full-resolution image pixels, so it overlays the slide; the genes and the uncertainty are
             measurements, the domains (from mclstexp domains) the classification.
  --csv      one row per spot: spot, x, y (full-resolution px), uncertainty, domain, then one column
             per gene (predicted normalised expression).
"""

EPILOG = """\
examples:
  mclstexp export C4_pred.h5ad --geojson C4.geojson --csv C4.csv
  mclstexp export C4_pred.h5ad --geojson C4.geojson --genes CD74,KRT8 --domains-key domain
"""


def register(subparsers: Any) -> None:
    """Add the ``export`` command."""
    p = subparsers.add_parser(
        "export",
        help="write predictions as QuPath GeoJSON (spots, genes, domains) and/or CSV",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("pred", metavar="PRED.h5ad", help="prediction written by mclstexp predict (or domains)")
    p.add_argument("--geojson", metavar="FILE", help="QuPath GeoJSON file to write")
    p.add_argument("--csv", metavar="FILE", help="CSV table to write")
    p.add_argument(
        "--spatialdata",
        metavar="STORE.zarr",
        help="SpatialData store: a table annotating spot circles or bin/tile squares (full-res px)",
    )
    p.add_argument(
        "--embed-slide",
        action="store_true",
        help="with --spatialdata: embed the slide as an image element (default: reference its path)",
    )
    p.add_argument("--genes", metavar="G1,G2", help="genes to export (default: all)")
    p.add_argument(
        "--domains-key", metavar="COLUMN", help="obs column with domain labels (default: 'domain' when present)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check the options, write the requested files and say what they hold; returns 0."""
    from .. import prediction_meta
    from ..errors import GenePanelError, InputError, SampleFormatError
    from ..io.export import predictions_to_csv, spots_to_geojson
    from .evaluate_cmd import read_h5ad

    if not (args.geojson or args.csv or args.spatialdata):
        raise InputError("nothing to export: give --geojson FILE, --csv FILE and/or --spatialdata STORE.zarr")
    for out in (args.geojson, args.csv):
        check_output(out, [args.pred])
    pred = read_h5ad(args.pred)
    if "spatial" not in pred.obsm:
        raise SampleFormatError("no spot positions (obsm['spatial'])", args.pred)
    genes = None
    if args.genes:
        genes = [g.strip() for g in args.genes.split(",") if g.strip()]
        names = set(map(str, pred.var_names))
        missing = [g for g in genes if g not in names]
        if missing or not genes:
            raise GenePanelError(
                f"--genes {', '.join(missing) or '(none)'}: not among its {len(names)} genes", args.pred
            )
    key = args.domains_key or ("domain" if "domain" in pred.obs else None)
    if key is not None and key not in pred.obs:
        cols = ", ".join(map(str, pred.obs.columns)) or "none"
        raise SampleFormatError(f"no obs column {key!r} for --domains-key (columns: {cols})", args.pred)
    n_genes = pred.n_vars if genes is None else len(genes)
    unit = "tiles" if prediction_meta.is_whole_slide(pred) else "spots"
    what = f"{pred.n_obs} {unit}, {n_genes} genes" + (f", domains from obs[{key!r}]" if key else "")
    if args.geojson:
        spots_to_geojson(pred, args.geojson, genes=genes, domains=key)
        print(f"wrote {args.geojson} (QuPath detections: {what})")
    if args.csv:
        predictions_to_csv(pred, args.csv, genes=genes, domains=key)
        print(f"wrote {args.csv} ({what})")
    if args.spatialdata:
        from ..io.spatialdata_io import write_spatialdata

        write_spatialdata(pred, args.spatialdata, image="embed" if args.embed_slide else "reference")
        print(f"wrote {args.spatialdata} (SpatialData: {what})")
    return 0

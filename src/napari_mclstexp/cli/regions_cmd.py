"""``mclstexp regions PRED.h5ad --annotations ANN.geojson --out REGIONS.csv``: per annotation class, per gene."""

from __future__ import annotations

import argparse
from typing import Any

from ._paths import check_output
from .evaluate_cmd import read_h5ad


def register(subparsers: Any) -> None:
    """Add the ``regions`` command."""
    p = subparsers.add_parser(
        "regions",
        help="gene statistics inside annotated regions (QuPath GeoJSON classes) of a prediction",
        description=(
            "For each annotation class of a QuPath GeoJSON file (tumour, stroma, ...): spots inside,\n"
            "per-gene mean predicted inside vs outside, log2 fold change of the back-transformed means,\n"
            "a p-value against random rigid placements of the class's polygons on the tissue (it keeps\n"
            "the slide's spatial autocorrelation), Benjamini-Hochberg per class, the genes' reliability\n"
            "and the class's mean novelty when the prediction carries them. Detections/cells are skipped."
        ),
        epilog=(
            "examples:\n"
            "  mclstexp regions C4_pred.h5ad --annotations C4_annotations.geojson --out C4_regions.csv\n"
            "  mclstexp regions slide_pred.h5ad --annotations qupath.geojson --out r.csv --placements 500\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("pred", metavar="PRED.h5ad", help="prediction (or any AnnData with normalised X)")
    p.add_argument("--annotations", metavar="ANN.geojson", required=True, help="QuPath GeoJSON annotations")
    p.add_argument("--out", metavar="REGIONS.csv", required=True, help="the per-class, per-gene table (CSV)")
    p.add_argument("--genes", metavar="G1,G2", help="comma-separated genes to test (default all)")
    p.add_argument("--placements", type=int, default=200, help="random placements per class for the null (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the placements (default 0)")
    p.add_argument("--top", type=int, default=5, help="genes up per class to print (default 5)")
    p.add_argument(
        "--rank-by",
        metavar="COLUMN",
        default="log2_fold_change",
        help="order of each class's genes, decreasing: log2_fold_change (default: the reported effect), "
        "difference or z",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Read, compute, write the CSV and print a summary per class; returns 0."""
    from ..analysis.region_stats import iter_region_statistics
    from ..errors import InputError
    from ..io.annotations import read_annotations
    from ..io.export import table_to_csv
    from ..progress import run_with_progress

    check_output(args.out, [args.pred, args.annotations], suffix=".csv")
    if args.placements < 2:
        raise InputError("--placements must be at least 2")
    annotations = read_annotations(args.annotations)
    pred = read_h5ad(args.pred)
    genes = [g.strip() for g in args.genes.split(",") if g.strip()] if args.genes else None
    print(annotations.summary())
    gen = iter_region_statistics(
        pred, annotations, genes=genes, n_placements=args.placements, seed=args.seed, rank_by=args.rank_by
    )
    table = run_with_progress(gen, disable=bool(getattr(args, "quiet", False)))
    table_to_csv(table, args.out)
    for name, sub in table.groupby("class", sort=False):
        up = sub[sub["log2_fold_change"] > 0].head(args.top)
        genes_up = ", ".join(
            f"{g} ({fc:+.2f}, q={q:.2g})" for g, fc, q in up[["gene", "log2_fold_change", "p_adjusted"]].values
        )
        n_sig = int((sub["p_adjusted"] < 0.05).sum())
        print(
            f"{name}: {int(sub['n_inside'].iloc[0])} spots inside, {n_sig} genes with BH q < 0.05; "
            f"up: {genes_up or 'none'}"
        )
    print(f"wrote {args.out}")
    return 0

"""``mclstexp domains PRED.h5ad --k K``: spatial domains (PCA + k-means) and their ARI/NMI."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..analysis.report import write_json
from ._paths import check_output
from .evaluate_cmd import read_h5ad


def register(subparsers: Any) -> None:
    """Add the ``domains`` command."""
    p = subparsers.add_parser(
        "domains",
        help="find spatial domains (PCA + k-means) and score them against labels (ARI, NMI)",
        description=(
            "Cluster spots of a prediction into K domains (PCA to 9 components, k-means++, seeded),\n"
            "on predicted expression or on image embeddings; store the labels in obs and, given\n"
            "reference labels, report ARI and NMI ('undetermined' spots dropped)."
        ),
        epilog=(
            "examples:\n"
            "  mclstexp domains C4_pred.h5ad --k 7 --truth-key cluster_ref --json C4_domains.json\n"
            "  mclstexp domains B1_pred.h5ad --k 6 --truth B1.h5ad --truth-key annotation --out B1_domains.h5ad\n"
            "  mclstexp domains slide_pred.h5ad --k 5 --source embedding --out slide_domains.h5ad\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("pred", metavar="PRED.h5ad", help="prediction (or any AnnData with normalised X)")
    p.add_argument("--k", type=int, required=True, help="number of domains")
    p.add_argument(
        "--source",
        choices=["expression", "embedding"],
        default="expression",
        help="cluster predicted expression (X) or image embeddings (obsm['embedding'])",
    )
    p.add_argument("--truth-key", metavar="COLUMN", help="obs column with reference labels")
    p.add_argument(
        "--truth",
        metavar="SAMPLE.h5ad",
        help="take the --truth-key labels from this sample (spots matched by name/position)",
    )
    p.add_argument("--n-pcs", type=int, default=9, help="PCA components (default 9, as the paper)")
    p.add_argument("--seed", type=int, default=0, help="random seed of PCA/k-means (default 0)")
    p.add_argument("--key", help="obs column for the labels (default domain / embedding_cluster)")
    p.add_argument("--out", metavar="FILE.h5ad", help="write the labelled AnnData here (default: update PRED in place)")
    p.add_argument("--json", metavar="FILE", help="write sizes and ARI/NMI as JSON")
    p.set_defaults(run=run)


def _check_label_column(adata: Any, key: str, path: str) -> None:
    """Refuse a reference-label column the file lacks, naming the file and the columns it has."""
    from ..errors import SampleFormatError

    if key not in adata.obs:
        cols = ", ".join(map(str, adata.obs.columns)) or "none"
        raise SampleFormatError(f"no obs column {key!r} for --truth-key (columns: {cols})", path)


def run(args: argparse.Namespace) -> int:
    """Cluster, print sizes and scores, save the labels; returns 0."""
    from ..analysis.domains import add_domains, reference_labels
    from ..io.h5ad import write_h5ad

    out = args.out or args.pred
    check_output(args.json, [args.pred] + ([args.truth] if args.truth else []))
    if args.truth:
        check_output(out, [args.truth])
    pred = read_h5ad(args.pred)
    truth = None
    if args.truth:
        reference = read_h5ad(args.truth)
        _check_label_column(reference, args.truth_key or "annotation", args.truth)
        truth = reference_labels(pred, reference, args.truth_key or "annotation")
    elif args.truth_key:
        _check_label_column(pred, args.truth_key, args.pred)
    result = add_domains(
        pred,
        args.k,
        source=args.source,
        truth=truth,
        truth_key=None if args.truth else args.truth_key,
        n_pcs=args.n_pcs,
        seed=args.seed,
        key_added=args.key,
    )
    print(f"{args.k} domains from {args.source} in obs[{result['key']!r}], sizes {result['sizes']}")
    if "ari" in result:
        print(
            f"ARI {result['ari']:.4f}  NMI {result['nmi']:.4f}  ({result['n_spots']} labelled spots, "
            f"{result['n_dropped']} undetermined dropped)"
        )
    write_h5ad(pred, out)
    if args.json:
        write_json({**result, "pred": str(Path(args.pred).resolve()), "out": str(Path(out).resolve())}, args.json)
    return 0

"""``mclstexp cv SAMPLE.h5ad... --scheme slide|patient --out CV.json``: resumable cross-validation."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..data.panel import check_default_panel
from ..train.protocols import PROTOCOLS
from ._encoder_args import add_encoder_arguments, encoder_changes
from ._paths import check_output

EPILOG = """\
examples:
  mclstexp cv B4.h5ad C2.h5ad C3.h5ad C4.h5ad --scheme slide --preset quick --out cv.json
  mclstexp cv *.h5ad --scheme patient --preset default --device cuda --out cv_patient.json
  mclstexp cv B4.h5ad C2.h5ad C3.h5ad C4.h5ad --folds C2 --bank-extra A*.h5ad --out cv.json
  mclstexp cv P*_ST_rep*.h5ad --scheme slide --preset paper --protocol paper:cscc --out cv_cscc.json
  mclstexp cv B4.h5ad C2.h5ad C3.h5ad C4.h5ad --scheme slide --preset quick --protocol paper --out q.json

Rerunning the same command continues an interrupted run: folds already in --out are kept.
"""


def register(subparsers: Any) -> None:
    """Add the ``cv`` command."""
    p = subparsers.add_parser(
        "cv",
        help="cross-validate (leave one slide or one patient out): per-fold and mean ACG, HEG, ...",
        description=(
            "Leave-one-slide-out (the paper's protocol) or leave-one-patient-out cross-validation:\n"
            "per test section, train on the other image sections, fill the reference bank, predict\n"
            "the test section from its image and score it. Under --scheme patient every section of\n"
            "the test patient is kept out of training and out of the bank."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("samples", nargs="+", metavar="SAMPLE.h5ad", help="image sections (with images)")
    p.add_argument(
        "--scheme",
        choices=["slide", "patient"],
        default=None,
        help="slide: leave one section out (the paper's protocol; folds whose patient also trains "
        "are marked within-patient); patient: leave one patient out (default when the samples "
        "span two or more patients in obs['patient'], else slide)",
    )
    p.add_argument("--out", metavar="CV.json", required=True, help="results (resumed when it exists)")
    p.add_argument(
        "--preset",
        default="quick",
        choices=["paper", "default", "quick"],
        help="training preset (default: %(default)s)",
    )
    p.add_argument("--epochs", type=int, metavar="N", help="training epochs (default: the preset's)")
    p.add_argument("--seed", type=int, metavar="S", help="random seed (default: the preset's)")
    p.add_argument("--weights", metavar="imagenet|none|PATH", help="encoder weights (default: the preset's)")
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        metavar="ours|paper|paper:DATASET",
        help="evaluation protocol: ours (per-spot scale) or the reference code's (per-gene scale; "
        "with --preset paper also its her2st/cscc/visium set-up, 'paper' = from the data's "
        "kind); default: paper for --preset paper, else ours",
    )
    p.add_argument("--k", type=int, metavar="K", help="retrieval neighbours (default: the protocol's)")
    p.add_argument("--distance", choices=["l1", "l2"], help="retrieval 1/d² distance (default: the protocol's)")
    p.add_argument("--folds", metavar="SECTION,...", help="test only these sections")
    p.add_argument(
        "--bank-extra",
        nargs="+",
        default=[],
        metavar="SAMPLE.h5ad",
        help="expression-only sections added to the reference bank",
    )
    p.add_argument(
        "--genes", metavar="FILE|hvg:N", help="gene panel (default: genes common to all sections, up to 2000)"
    )
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps")
    p.add_argument(
        "--domain-key", metavar="COLUMN", help="obs column of reference labels: adds domain ARI/NMI per fold"
    )
    p.add_argument(
        "--baseline",
        "--baselines",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also score ridge (PCA 256 + ridge on the encoder's features), the colour-histogram "
        "kNN and the mean-expression predictor per fold (default: on)",
    )
    p.add_argument(
        "--metric",
        choices=("acg", "hest_pcc", "mse"),
        default="acg",
        help="metric of the comparison table: acg, hest_pcc (HEST: Pearson over the 50 most "
        "variable training genes) or mse (default: %(default)s)",
    )
    add_encoder_arguments(p, weights=False)
    p.add_argument("--predictions", metavar="DIR", help="write each fold's prediction as DIR/<section>.h5ad")
    p.add_argument("--cache", metavar="DIR", help="patch cache folder (default: $MCLSTEXP_CACHE or ~/.cache)")
    p.set_defaults(run=run)


def read_samples(paths: list[str], require_image: bool = False) -> list[Any]:
    """Read and validate sample ``.h5ad`` files (``require_image``: each must name its H&E image)."""
    from ..io.h5ad import read_sample

    return [read_sample(p, require_image=require_image) for p in paths]


def print_table(results: dict[str, Any]) -> None:
    """Per-fold metrics, their mean and standard deviation (and the baseline's mean) as a small table.

    Domain ARI/NMI columns appear when the folds were scored against reference labels (``--domain-key``).
    """

    def fmt(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, int | float) else "  -   "

    keys = ["acg", "heg50", "hvg50", "mse", "mae"]
    mean = results.get("mean", {})
    folds = results["folds"]
    if "domain_ari" in mean or any("domain_ari" in f.get("metrics", {}) for f in folds.values()):
        keys += ["domain_ari", "domain_nmi"]

    def row(name: str, values: dict[str, Any], suffix: str = "", tail: str = "") -> str:
        return f"{name:<10}" + "".join(f"{fmt(values.get(k + suffix)):>9}" for k in keys) + tail

    header = [k.replace("domain_", "").upper() for k in keys]
    print(f"{'fold':<10}" + "".join(f"{h:>9}" for h in header) + f"{'train s':>10}")
    for name, fold in folds.items():
        train_s = fold.get("timings", {}).get("train_s")
        print(row(name, fold.get("metrics", {}), tail=f"{(f'{train_s:.1f}' if train_s is not None else '-'):>10}"))
    print(row("mean", mean))
    if any(k + "_std" in mean for k in keys):
        print(row("std", mean, "_std"))
    if results.get("scale"):
        print(f"scale: {results['scale']}")
    if "baseline_acg" in mean:
        print(f"{'baseline':<10}" + "".join(f"{fmt(mean.get('baseline_' + k)):>9}" for k in keys[:5]))


def run(args: argparse.Namespace) -> int:
    """Run (or resume) the cross-validation and print the table; returns 0."""
    from ..data.patches import PatchCache
    from ..model.presets import get_preset
    from ..progress import run_with_progress
    from ..train.protocols import resolve_protocol
    from ..workflows.cv import run_cv

    check_output(args.out, [*args.samples, *args.bank_extra])
    cfg = get_preset(args.preset)
    changes = {k: getattr(args, k) for k in ("epochs", "seed", "weights") if getattr(args, k) is not None}
    encoder_changes(args, changes)
    if changes:
        cfg = cfg.replace(**changes)
    samples = read_samples(args.samples, require_image=True)
    extra = read_samples(args.bank_extra) if args.bank_extra else []
    cfg, protocol = resolve_protocol(cfg, getattr(args, "protocol", None), samples)
    overrides = {k: getattr(args, k, None) for k in ("k", "distance")}
    cfg = cfg.replace(**{k: v for k, v in overrides.items() if v is not None})
    print(f"protocol {protocol['protocol']}, k {cfg.k}, {cfg.distance.upper()}; scale: {protocol['scale_description']}")
    check_default_panel(samples + extra, args.genes, cfg)
    folds = [s.strip() for s in args.folds.split(",") if s.strip()] if args.folds else None
    from ..workflows.cv_baselines import default_scheme, format_table

    scheme = args.scheme or default_scheme(samples)
    gen = run_cv(
        samples,
        scheme,
        cfg,
        out=args.out,
        folds=folds,
        extra=extra,
        genes=args.genes,
        device=args.device,
        domain_key=args.domain_key,
        baseline=args.baseline,
        predictions_dir=args.predictions,
        patch_cache=PatchCache(args.cache),
    )
    results = run_with_progress(gen, disable=getattr(args, "quiet", False))
    print_table(results)
    if args.baseline:
        print(format_table(results, args.metric))
    print(f"results: {Path(args.out).resolve()}")
    return 0

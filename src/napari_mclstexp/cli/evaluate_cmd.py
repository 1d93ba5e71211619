"""``mclstexp evaluate PRED.h5ad --truth SAMPLE.h5ad``: accuracy of a prediction against measurements."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from .. import prediction_meta
from ..analysis.report import write_json
from ..atomic import atomic_write_path
from ..errors import InputError, MissingInputError, SpotMatchError
from ._paths import check_output


def read_h5ad(path: str | os.PathLike) -> Any:
    """Read an ``.h5ad`` file (prediction or sample), turning failures into one clear error."""
    import anndata as ad

    p = Path(path)
    if not p.is_file():
        raise MissingInputError("file not found", p)
    try:
        return ad.read_h5ad(p)
    except Exception as err:  # noqa: BLE001 - h5py/anndata raise many types
        raise InputError(f"not a readable .h5ad file ({type(err).__name__}: {err})", p) from err


def register(subparsers: Any) -> None:
    """Add the ``evaluate`` command."""
    p = subparsers.add_parser(
        "evaluate",
        help="score a prediction against measured expression (ACG, HEG@50, HVG@50, MSE, MAE)",
        description=(
            "Compare predicted expression with the measured expression of the same spots (matched\n"
            "by spot name, else by position). ACG = mean Pearson r over genes; HEG@50 / HVG@50 =\n"
            "the same over the 50 most expressed / most variable measured genes."
        ),
        epilog=(
            "examples:\n"
            "  mclstexp evaluate C4_pred.h5ad --truth C4.h5ad\n"
            "  mclstexp evaluate C4_pred.h5ad --truth C4.h5ad --json C4_metrics.json --genes-csv C4_genes.csv \\\n"
            "      --figure C4.png --figure-genes CD74,KRT8\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("pred", metavar="PRED.h5ad", help="prediction written by mclstexp predict")
    p.add_argument("--truth", metavar="SAMPLE.h5ad", required=True, help="measured sample (raw counts)")
    p.add_argument("--json", metavar="FILE", help="write the scores (and marker summary) as JSON")
    p.add_argument("--genes-csv", metavar="FILE", help="write the per-gene table, best-predicted first")
    p.add_argument(
        "--normalization",
        choices=["log10_1e4", "log10_1e4_per_gene", "ln_cpm", "none"],
        help="normalisation of the measured counts (default: the prediction's)",
    )
    p.add_argument("--figure", metavar="PNG", help="measured vs predicted maps on the slide")
    p.add_argument(
        "--figure-genes",
        metavar="G1,G2",
        help="genes of the figure (default: ERBB2 when present and the two best-predicted genes)",
    )
    p.set_defaults(run=run)


def _figure_genes(arg: str | None, ranked: Any) -> list[str]:
    if arg:
        return [g.strip() for g in arg.split(",") if g.strip()]
    best = [g for g in ranked.index if g != "ERBB2"][:2]
    return (["ERBB2"] if "ERBB2" in ranked.index else []) + best


def _check_figure_genes(arg: str, pred: Any, truth: Any, pred_path: str, truth_path: str) -> None:
    """Refuse ``--figure-genes`` absent from the prediction or the measurement, before any work."""
    from ..errors import GenePanelError

    genes = [g.strip() for g in arg.split(",") if g.strip()]
    if not genes:
        raise GenePanelError("--figure-genes names no gene")
    for adata, path, what in ((pred, pred_path, "prediction"), (truth, truth_path, "measured sample")):
        names = set(map(str, adata.var_names))
        missing = [g for g in genes if g not in names]
        if missing:
            raise GenePanelError(f"--figure-genes {', '.join(missing)}: not in this {what}'s {len(names)} genes", path)


def novelty_split(pred: Any, truth: Any, normalization: Any) -> dict[str, Any] | None:
    """ACG of the typical and of the novel spots (``obs['novelty']`` above its level) apart; ``None``
    without novelty scores.  A group of fewer than 3 spots gets ``acg`` ``None``."""
    from ..analysis.metrics import evaluate, summary

    if "novelty" not in pred.obs:
        return None
    info = pred.uns.get("mclstexp", {})
    level = float(info.get("novelty", {}).get("level", 0.99)) if hasattr(info, "get") else 0.99
    novel = pred.obs["novelty"].to_numpy() > level
    out = {}
    for name, mask in (("typical", ~novel), ("novel", novel)):
        acg = summary(evaluate(pred[mask], truth, normalization=normalization))["acg"] if mask.sum() >= 3 else None
        out[name] = {"n_spots": int(mask.sum()), "acg": acg}
    return out


def run(args: argparse.Namespace) -> int:
    """Evaluate, print a summary and write the requested files; returns 0."""
    from ..analysis.interpret import group_summary, marker_report, rank_genes
    from ..analysis.metrics import evaluate, summary

    for out in (args.json, args.genes_csv, args.figure):
        check_output(out, [args.pred, args.truth])
    from ..io.h5ad import read_sample

    # the measured sample is read as a sample: validated, relative image path resolved (figure)
    pred, truth = read_h5ad(args.pred), read_sample(args.truth)
    if args.figure and args.figure_genes:
        _check_figure_genes(args.figure_genes, pred, truth, args.pred, args.truth)
    try:
        result = evaluate(pred, truth, normalization=args.normalization)
    except SpotMatchError as err:
        if err.path is not None:
            raise
        problem = err.problem.replace("the measured sample", f"the measured sample {args.truth}")
        if prediction_meta.is_whole_slide(pred):
            problem = (
                f"a whole-slide prediction (tile grid) shares no spot with {args.truth}; "
                f"to score, predict at its spots: mclstexp predict MODEL.mclst {args.truth} --out PRED.h5ad"
            )
        raise SpotMatchError(problem, args.pred) from err
    scores = summary(result)
    ranked = rank_genes(result["per_gene"])
    report = marker_report(result["per_gene"])
    groups = group_summary(report, result["per_gene"]) if len(report) else None

    def fmt(v: Any) -> str:
        return "nan" if v is None else f"{v:.4f}"

    print(
        f"spots {scores['n_spots']} (matched by {scores['matched_by']}), genes {scores['n_genes']} "
        f"({scores['n_nan_genes']} with undefined r), normalisation {scores['normalization']}"
    )
    print("  ".join(f"{k.upper()} {fmt(scores[k])}" for k in ("acg", "heg50", "hvg50", "mse", "mae")))
    print("best predicted: " + ", ".join(f"{g} {r:.3f}" for g, r in ranked["r"].head(5).items()))
    if groups is not None:
        for name, row in groups.iterrows():
            n = int(row["n_genes"])
            print(f"{name}: {n} gene{'' if n == 1 else 's'}, mean r {row['mean_r']:.4f}")

    split = novelty_split(pred, truth, args.normalization)
    if split:
        print("by novelty: " + ", ".join(f"{k} spots ACG {fmt(v['acg'])} (n={v['n_spots']})" for k, v in split.items()))
    if args.json:
        data = dict(scores)
        if split:
            data["novelty"] = split
        if groups is not None:
            data["marker_groups"] = groups.to_dict(orient="index")
            data["marker_genes"] = report.set_index("gene")[["group", "r", "rank"]].to_dict(orient="index")
        data["pred"], data["truth"] = str(Path(args.pred).resolve()), str(Path(args.truth).resolve())
        write_json(data, args.json)
    if args.genes_csv:
        table = ranked.copy()
        table["marker_group"] = report.set_index("gene")["group"].reindex(table.index) if len(report) else None
        with atomic_write_path(args.genes_csv) as tmp:
            table.to_csv(tmp, index_label="gene")
    if args.figure:
        from ..analysis.figures import plot_measured_vs_predicted

        plot_measured_vs_predicted(
            pred, truth, _figure_genes(args.figure_genes, ranked), args.figure, normalization=args.normalization
        )
    written = [p for p in (args.json, args.genes_csv, args.figure) if p]
    if written:
        print("wrote " + ", ".join(written))
    return 0

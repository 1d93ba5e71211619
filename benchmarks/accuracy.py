"""Accuracy benchmark on the shared HER2+ data: slide-level CV over C2, C3, C4 (not run in CI).

For each test section the model trains on the other image sections (B4 and the other two C sections;
``--bank-extra`` adds the 30 expression-only sections to the reference bank), predicts the test
section from its H&E image and is scored against the measured counts on the paper's 785-gene panel:
ACG, HEG@50, HVG@50, MSE, MAE.  Next to it, on the same folds and patches, the colour-histogram kNN
reference (``predict.baseline``).  Spatial domains: PCA(9) + k-means of the predicted expression, of
the image embeddings and, as a ceiling, of the measured expression, each scored (ARI / NMI) against the
original study's expression clusters (``ST-cluster``, k = number of clusters).

Usage::

    python -m benchmarks accuracy                       # quick preset on CPU (≈ 20+ min on 2 cores)
    python -m benchmarks accuracy --preset default      # on a CUDA machine
    python -m benchmarks accuracy --epochs 1 --folds C2 # smoke test

The other accuracy parts (``accuracy-levers``, ``accuracy-descriptors``, ``encoders``) are listed by
``python -m benchmarks``; what they share is in ``her2st_folds``.

Data: ``--data DIR`` or ``$MCLSTEXP_SHARED_DATA/her2st`` or ``../shared/data/her2st``.  The CV itself
is resumable (``<out>-cv.json``); the summary goes to ``benchmarks/results/accuracy-<preset>-<device>.json``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .her2st_folds import IMAGE_SECTIONS, data_root

HERE = Path(__file__).resolve().parent
TEST_SECTIONS = ("C2", "C3", "C4")
METRICS = ("acg", "heg50", "hvg50", "mse", "mae")


def resolve_config(preset: str, device: str, epochs: int | None, weights: str | None):
    """The preset's config; ImageNet weights fall back to random ones when offline (recorded)."""
    import torch

    from napari_mclstexp.errors import WeightsUnavailableError
    from napari_mclstexp.model.encoders import make_image_encoder
    from napari_mclstexp.model.presets import get_preset

    if preset == "auto":
        preset = "default" if torch.cuda.is_available() and device != "cpu" else "quick"
    cfg = get_preset(preset)
    changes = {}
    if epochs is not None:
        changes["epochs"] = epochs
    if weights is not None:
        changes["weights"] = weights
    note = None
    if weights is None and cfg.weights == "imagenet":
        try:
            make_image_encoder(cfg.encoder, "imagenet")
        except WeightsUnavailableError as err:
            changes["weights"] = "none"
            note = f"ImageNet weights unavailable ({err}); trained from a random initialisation"
    return (cfg.replace(**changes) if changes else cfg), note


def domain_references(pred_dir: Path, samples: dict, cfg, key: str = "cluster_ref") -> dict:
    """ARI/NMI of domains from image embeddings and from measured expression, per test section."""
    import anndata as ad

    from napari_mclstexp.analysis.domains import determined_mask, find_domains, score_domains
    from napari_mclstexp.analysis.metrics import match_spots
    from napari_mclstexp.data.genes import expression_matrix

    out = {}
    for path in sorted(pred_dir.glob("*.h5ad")):
        section = path.stem
        truth = samples[section]
        pred = ad.read_h5ad(path)
        p_idx, t_idx, _ = match_spots(pred, truth)
        labels = truth.obs[key].astype(object).to_numpy()[t_idx]
        keep = determined_mask(labels)
        k = len(set(labels[keep]))
        emb = find_domains(np.asarray(pred.obsm["embedding"])[p_idx], k, seed=cfg.seed)
        measured = expression_matrix(truth, list(pred.var_names), cfg.normalization)[t_idx]
        meas = find_domains(measured, k, seed=cfg.seed)
        out[section] = {
            "k": k,
            "embedding": score_domains(emb, labels),
            "measured_expression": score_domains(meas, labels),
        }
    return out


def table(summary: dict) -> str:
    """Markdown table: per fold, model vs reference, and domain ARI/NMI."""
    head = "| fold | method | " + " | ".join(m.upper() for m in METRICS) + " | domain ARI | domain NMI |"
    lines = [head, "|" + "---|" * (len(METRICS) + 4)]

    def f(v):
        return "–" if v is None else f"{v:.4f}"

    for name, row in summary["folds"].items():
        for method in ("model", "baseline"):
            m = row.get(method) or {}
            dom = row.get("domains", {}).get("predicted_expression" if method == "model" else "none", {})
            lines.append(
                f"| {name} | {method if method == 'model' else 'colour-hist kNN'} | "
                + " | ".join(f(m.get(k)) for k in METRICS)
                + f" | {f(dom.get('ari'))} | {f(dom.get('nmi'))} |"
            )
    mean = summary["mean"]
    for method, prefix in (("model", ""), ("colour-hist kNN", "baseline_")):
        dom = (f(mean.get("domain_ari")), f(mean.get("domain_nmi"))) if not prefix else ("–", "–")
        lines.append(
            f"| **mean** | {method} | "
            + " | ".join(f(mean.get(prefix + k)) for k in METRICS)
            + f" | {dom[0]} | {dom[1]} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="her2st folder (default: shared data)")
    ap.add_argument(
        "--preset",
        default="auto",
        choices=["auto", "quick", "default", "paper"],
        help="auto: default on CUDA, quick otherwise",
    )
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--weights", help="encoder weights (default: the preset's, random if offline)")
    ap.add_argument("--folds", default=",".join(TEST_SECTIONS))
    ap.add_argument("--scheme", default="slide", choices=["slide", "patient"])
    ap.add_argument("--bank-extra", action="store_true", help="add the 30 expression-only sections to the bank")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--cache", help="patch cache folder (default: a temporary one)")
    ap.add_argument("--out", help="summary JSON (default: benchmarks/results/accuracy-<preset>-<device>.json)")
    args = ap.parse_args(argv)

    import torch

    from napari_mclstexp.data.patches import PatchCache
    from napari_mclstexp.device import resolve_device
    from napari_mclstexp.io.her2st import list_her2st_sections, read_her2st_section
    from napari_mclstexp.progress import run_with_progress
    from napari_mclstexp.workflows.cv import run_cv

    root = data_root(args.data)
    if not root.is_dir():
        print(f"her2st data not found at {root}", file=sys.stderr)
        return 1
    device = resolve_device(args.device)
    cfg, note = resolve_config(args.preset, device.type, args.epochs, args.weights)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    tag = f"{cfg.preset}-{device.type}" + ("-bankextra" if args.bank_extra else "")
    out = Path(args.out) if args.out else HERE / "results" / f"accuracy-{tag}.json"
    cv_out = out.with_name(out.stem + "-cv.json")

    t0 = time.perf_counter()
    samples = {s: read_her2st_section(root, s) for s in IMAGE_SECTIONS}
    extra = []
    if args.bank_extra:
        extra = [read_her2st_section(root, s) for s in list_her2st_sections(root) if s not in samples]
    load_s = time.perf_counter() - t0
    genes = root / "her_hvg_785.npy"
    folds = [s.strip() for s in args.folds.split(",") if s.strip()]
    # kept beside the temporary files so that a resumed run still finds earlier folds' predictions
    work = Path(tempfile.gettempdir()) / f"mclstexp-accuracy-{out.stem}"
    pred_dir = work / "pred"
    cache = PatchCache(args.cache or work / "cache")
    gen = run_cv(
        list(samples.values()),
        args.scheme,
        cfg,
        out=cv_out,
        folds=folds,
        extra=extra,
        genes=str(genes) if genes.is_file() else None,
        device=str(device),
        domain_key="cluster_ref",
        baseline=True,
        predictions_dir=pred_dir,
        patch_cache=cache,
    )
    cv_res = run_with_progress(gen)
    doms = domain_references(pred_dir, samples, cfg)

    summary = {
        "benchmark": "accuracy",
        "command": shlex.join(sys.orig_argv),
        "data": str(root),
        "scheme": args.scheme,
        "preset": cfg.preset,
        "config": cfg.to_dict(),
        "note": note,
        "device": str(device),
        "card": card,
        "n_genes": len(cv_res["genes"]),
        "bank_extra_sections": len(extra),
        "data_hash": cv_res["data_hash"],
        "versions": cv_res["versions"],
        "load_s": load_s,
        "folds": {},
        "mean": cv_res["mean"],
        "cv_json": str(cv_out),
    }
    for name, fold in cv_res["folds"].items():
        m = fold["metrics"]
        summary["folds"][name] = {
            "train": fold["train"],
            "bank_spots": fold.get("n_bank_spots"),
            "model": {k: m.get(k) for k in (*METRICS, "n_spots", "n_genes", "n_nan_genes")},
            "baseline": {k: (fold.get("baseline_metrics") or {}).get(k) for k in METRICS},
            "domains": {
                "predicted_expression": {
                    "ari": m.get("domain_ari"),
                    "nmi": m.get("domain_nmi"),
                    "k": m.get("domain_k"),
                },
                **({k: v for k, v in doms.get(name, {}).items() if k != "k"}),
            },
            "timings": fold.get("timings"),
            "final_loss": fold.get("final_loss"),
            "epochs": fold.get("epochs"),
        }
    for kind in ("embedding", "measured_expression"):
        vals = [f["domains"][kind] for f in summary["folds"].values() if kind in f["domains"]]
        if vals:
            summary["mean"][f"domain_{kind}_ari"] = float(np.mean([v["ari"] for v in vals]))
            summary["mean"][f"domain_{kind}_nmi"] = float(np.mean([v["nmi"] for v in vals]))
    summary["table_markdown"] = table(summary)
    out.parent.mkdir(parents=True, exist_ok=True)
    from napari_mclstexp.analysis.report import write_json

    write_json(summary, out)
    print(summary["table_markdown"])
    print(
        f"domains (mean ARI/NMI): embedding {summary['mean'].get('domain_embedding_ari')}/"
        f"{summary['mean'].get('domain_embedding_nmi')}, measured expression "
        f"{summary['mean'].get('domain_measured_expression_ari')}/{summary['mean'].get('domain_measured_expression_nmi')}"
    )
    print(f"summary: {out}")
    return 0

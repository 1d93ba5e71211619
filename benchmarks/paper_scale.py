#!/usr/bin/env python
"""How much the evaluation scale alone moves the numbers: paper protocol vs ours, one model (not run in CI).

On the shared HER2+ data (sections B4, C2, C3, C4 with images; the paper's 785-gene panel) one model
trains on three sections and predicts the fourth from its image.  The same trained model then gets two
reference banks that differ only in their expression values:

``ours``
    per spot (``log10_1e4``, the scale the model trains on); the truth normalised the same way.
``paper``
    the reference code's per-gene scale (``log10_1e4_per_gene``: each gene across the spots of its
    section); the truth normalised the same way (:mod:`napari_mclstexp.data.scales`).

Keys, queries, k and distance are identical, so every difference between the two rows comes from the
normalisation.  The data-only facts of the issue (per-gene r between the two truth matrices, HEG@50
overlap, mean values) are recorded for the test section too.  Random initial weights (offline), CPU,
few epochs, small patches: a statement about the scales, not an estimate of the paper's accuracy.

Usage::

    python benchmarks/paper_scale.py                        # paper preset, 4 epochs, 64 px, test C2
    python benchmarks/paper_scale.py --preset quick --epochs 10

Writes ``benchmarks/results/paper_scale-<preset>.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from napari_mclstexp.predict.options import PredictOptions

HERE = Path(__file__).resolve().parent
if (HERE.parent / "src").is_dir():
    sys.path.insert(0, str(HERE.parent / "src"))

SECTIONS = ("B4", "C2", "C3", "C4")
METRICS = ("acg", "heg50", "hvg50", "mse", "mae")


def data_root(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("MCLSTEXP_SHARED_DATA")
    return (Path(env) if env else HERE.parent.parent / "shared" / "data") / "her2st"


def scale_facts(test, genes: list[str]) -> dict:
    """Per-gene r between the two truth matrices, HEG@50 overlap and mean values (data only)."""
    from napari_mclstexp.analysis.metrics import pearson_per_gene
    from napari_mclstexp.data.genes import expression_matrix

    spot = expression_matrix(test, genes, "log10_1e4").astype(np.float64)
    gene = expression_matrix(test, genes, "log10_1e4_per_gene").astype(np.float64)
    r, _ = pearson_per_gene(spot, gene)
    heg_spot = set(np.argsort(-spot.mean(0), kind="stable")[:50])
    heg_gene = set(np.argsort(-gene.mean(0), kind="stable")[:50])
    return {
        "per_gene_r_median": float(np.nanmedian(r)),
        "heg50_shared_genes": len(heg_spot & heg_gene),
        "mean_per_spot": float(spot.mean()),
        "mean_per_gene": float(gene.mean()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="her2st folder (default: $MCLSTEXP_SHARED_DATA/her2st or ../shared/data/her2st)")
    ap.add_argument("--preset", default="paper", choices=["paper", "default", "quick"])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--input-px", type=int, default=64, help="encoder input size (224 px crops resized)")
    ap.add_argument("--test", default="C2", choices=SECTIONS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="JSON (default: benchmarks/results/paper_scale-<preset>.json)")
    args = ap.parse_args(argv)

    import torch

    from napari_mclstexp.analysis.metrics import evaluate, summary
    from napari_mclstexp.analysis.report import versions, write_json
    from napari_mclstexp.bundle import make_bundle
    from napari_mclstexp.data.genes import load_gene_list
    from napari_mclstexp.data.patches import PatchCache
    from napari_mclstexp.io.her2st import read_her2st_section
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.predict.spots import predict_at_spots
    from napari_mclstexp.progress import run
    from napari_mclstexp.train.protocols import resolve_protocol
    from napari_mclstexp.train.trainer import train

    root = data_root(args.data)
    samples = {s: read_her2st_section(root, s) for s in SECTIONS}
    genes = load_gene_list(root / "her_hvg_785.npy")
    test = samples[args.test]
    train_samples = [samples[s] for s in SECTIONS if s != args.test]
    cfg = get_preset(args.preset).replace(weights="none", input_px=args.input_px, epochs=args.epochs, seed=args.seed)
    cache = PatchCache(Path(tempfile.gettempdir()) / "mclstexp-bench-cache")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    t0 = time.perf_counter()
    result = run(train(train_samples, cfg, genes=genes, device="cpu", patch_cache=cache))
    train_s = time.perf_counter() - t0
    rows = {}
    for protocol in ("ours", "paper"):
        pcfg, info = resolve_protocol(cfg, protocol, train_samples)
        # the same trained model; only the bank's values (and so the truth's scale) differ
        bundle = make_bundle(SimpleNamespace(**{**vars(result), "config": pcfg}), train_samples, "cpu")
        pred = run(predict_at_spots(bundle, test, PredictOptions(device="cpu"), patch_cache=cache))
        rows[protocol] = {
            **summary(evaluate(pred, test)),
            "scale": info["scale_description"],
            "k": pcfg.k,
            "distance": pcfg.distance,
        }
    out = {
        "benchmark": "paper_scale",
        "preset": args.preset,
        "weights": "none (random initialisation, offline)",
        "epochs": args.epochs,
        "input_px": args.input_px,
        "train_sections": [s for s in SECTIONS if s != args.test],
        "test_section": args.test,
        "n_genes": len(result.genes),
        "train_s": train_s,
        "final_loss": result.history[-1]["loss"] if result.history else None,
        "machine": f"CPU, {os.cpu_count()} cores",
        "results": rows,
        "difference_paper_minus_ours": {k: rows["paper"][k] - rows["ours"][k] for k in METRICS},
        "truth_scales": scale_facts(test, list(result.genes)),
        "versions": versions(),
    }
    path = Path(args.out) if args.out else HERE / "results" / f"paper_scale-{args.preset}.json"
    write_json(out, path)
    print(f"{'protocol':<8}" + "".join(f"{m:>9}" for m in METRICS))
    for name, row in rows.items():
        print(f"{name:<8}" + "".join(f"{row[m]:>9.4f}" for m in METRICS))
    print(f"truth scales: {out['truth_scales']}")
    print(f"train {train_s:.0f} s; results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

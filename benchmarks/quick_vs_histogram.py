"""Benchmark: the ``quick`` preset vs the colour-histogram kNN reference on the shared HER2+ sections.

Leave-one-section-out over the four her2st sections with images (B4, C2, C3, C4): for each held-out
section in C2, C3, C4 the ``quick`` model is trained from scratch on the other three (B4 always
trains) and predicts the held-out spots by retrieval; the reference predicts the same spots from the
colour-histogram neighbours (k = 50 and 200) among the same training spots.  ACG = mean Pearson r over
the genes (NaN genes dropped), per held-out section, then averaged.  Both methods see the same patches
(224 px crops resized to the preset's 64 px input).  Train time is wall time and process CPU time.

Run (long; one seed first)::

    nohup .venv/bin/python benchmarks/quick_vs_histogram.py --seeds 0 > /tmp/qvh.log 2>&1 &

Writes ``benchmarks/results/quick_vs_histogram.json`` (atomically, after every run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from napari_mclstexp.analysis.metrics import pearson_per_gene
from napari_mclstexp.atomic import atomic_write_path
from napari_mclstexp.data.genes import expression_matrix, load_gene_list
from napari_mclstexp.data.patches import PatchCache, default_cache_root, sample_patches
from napari_mclstexp.io.her2st import read_her2st_section
from napari_mclstexp.model.bank import build_bank
from napari_mclstexp.model.presets import get_preset
from napari_mclstexp.predict.baseline import histogram_knn_predict
from napari_mclstexp.predict.retrieval import retrieve
from napari_mclstexp.progress import run
from napari_mclstexp.train.trainer import train

SECTIONS = ("B4", "C2", "C3", "C4")
REPO = Path(__file__).resolve().parents[1]


def her2st_root(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("MCLSTEXP_SHARED_DATA")
    return (Path(env) if env else REPO.parent / "shared" / "data") / "her2st"


def acg(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean Pearson r over genes, NaN (constant) genes dropped."""
    if torch.is_tensor(pred):
        pred = pred.detach().float().cpu().numpy()
    r, _ = pearson_per_gene(np.asarray(pred, np.float64), np.asarray(truth, np.float64))
    return float(np.nanmean(r))


@torch.inference_mode()
def embed(model, patches: np.ndarray, batch: int = 128, tta: bool | None = None) -> torch.Tensor:
    return torch.cat(
        [
            model.encode_images(torch.from_numpy(np.array(patches[i : i + batch])), tta=tta)
            for i in range(0, len(patches), batch)
        ]
    )


def save(out: Path, payload: dict) -> None:
    with atomic_write_path(out) as tmp:
        tmp.write_text(json.dumps(payload, indent=1))


def summarise(runs: list[dict], reference: dict[str, dict]) -> dict:
    """Means over folds (per seed, then over seeds) and the goal check."""
    tests = sorted(reference)
    if not tests:
        return {}
    ref = {k: float(np.mean([reference[t][f"acg_k{k}"] for t in tests])) for k in (50, 200)}
    best_k = max(ref, key=ref.get)
    seeds = sorted({r["seed"] for r in runs})
    per_seed = []
    for s in seeds:
        rows = [r for r in runs if r["seed"] == s]
        if sorted(r["test"] for r in rows) == tests:
            per_seed.append(
                {
                    "seed": s,
                    "acg_k200": float(np.mean([r["acg_k200"] for r in rows])),
                    "acg_k50": float(np.mean([r["acg_k50"] for r in rows])),
                    "acg_k200_no_tta": float(np.mean([r.get("acg_k200_no_tta", np.nan) for r in rows])),
                    "train_wall_s": float(np.mean([r["train_wall_s"] for r in rows])),
                }
            )
    out = {"reference_mean_acg": ref, "reference_best_k": best_k, "complete_seeds": len(per_seed)}
    if per_seed:
        quick = float(np.mean([p["acg_k200"] for p in per_seed]))
        out.update(
            {
                "quick_per_seed": per_seed,
                "quick_mean_acg_k200": quick,
                "quick_mean_acg_k50": float(np.mean([p["acg_k50"] for p in per_seed])),
                "quick_mean_acg_k200_no_tta": float(np.mean([p["acg_k200_no_tta"] for p in per_seed])),
                "quick_std_over_seeds_k200": float(np.std([p["acg_k200"] for p in per_seed])),
                "relative_gain_vs_best_reference": quick / ref[best_k] - 1.0,
                "goal_10pct_met": bool(quick >= 1.10 * ref[best_k]),
            }
        )
    return out


def merge(files: list[str], out: Path) -> int:
    """Combine result files of the same benchmark run in parallel (e.g. one process per seed)."""
    parts = [json.loads(Path(f).read_text()) for f in files]
    payload = dict(parts[0])
    payload["runs"] = [r for p in parts for r in p["runs"]]
    payload["merged_from"] = [Path(f).name for f in files]
    for p in parts[1:]:
        payload["reference"].update(p["reference"])
        if "all_four_sections" in p:
            payload["all_four_sections"] = p["all_four_sections"]
    payload["summary"] = summarise(payload["runs"], payload["reference"])
    save(out, payload)
    print(json.dumps(payload["summary"], indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--her2st", default=None, help="her2st folder (default: shared data)")
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--tests", nargs="*", default=["C2", "C3", "C4"])
    ap.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    ap.add_argument("--genes", default=None, help="gene list (default: her_hvg_785.npy) or hvg:N")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (the target machine has 2)")
    ap.add_argument("--preset", default="quick", help="preset to compare (default: quick)")
    ap.add_argument("--device", default="cpu", help="training device (default: cpu, the quick preset's target)")
    ap.add_argument("--weights", default=None, help="override the preset's encoder weights (e.g. none offline)")
    ap.add_argument("--time-all-four", action="store_true", help="also time quick on all four sections")
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=JSON",
        help="override config fields, e.g. --set weight_decay=0.05 color_jitter=[0.3,0.3,0.3]",
    )
    ap.add_argument(
        "--out", default=None, help="JSON (default: benchmarks/results/<preset>_vs_histogram[_<device>].json)"
    )
    ap.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="JSON",
        help="only merge the runs of earlier result files (e.g. one per seed) into --out",
    )
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args.merge, Path(args.out or REPO / "benchmarks" / "results" / "quick_vs_histogram.json"))
    name = f"{args.preset}_vs_histogram" + ("" if args.device == "cpu" else f"_{args.device.split(':')[0]}")
    args.out = args.out or str(REPO / "benchmarks" / "results" / f"{name}.json")
    torch.set_num_threads(args.threads)
    root = her2st_root(args.her2st)
    samples = {s: read_her2st_section(root, s) for s in SECTIONS}
    spec = args.genes or str(root / "her_hvg_785.npy")
    if spec.startswith("hvg:"):
        genes = spec
    else:
        genes = [g for g in load_gene_list(spec) if all(g in a.var_names for a in samples.values())]
    cfg = get_preset(args.preset)
    if args.epochs is not None:
        cfg = cfg.replace(epochs=args.epochs)
    if args.weights is not None:
        cfg = cfg.replace(weights=args.weights)
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    if "color_jitter" in overrides:
        overrides["color_jitter"] = tuple(overrides["color_jitter"])
    cfg = cfg.replace(**overrides)
    cache = PatchCache(default_cache_root())
    patches = {s: np.asarray(sample_patches(a, cfg.patch_px, cfg.input_px, cache)) for s, a in samples.items()}
    out = Path(args.out)
    payload = {
        "benchmark": name,
        "device": args.device,
        "overrides": overrides,
        "config": cfg.to_dict(),
        "sections": list(SECTIONS),
        "tests": args.tests,
        "n_genes": len(genes) if isinstance(genes, list) else genes,
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": args.threads,
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "platform": platform.platform(),
        },
        "reference": {},
        "runs": [],
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for test in args.tests:
        train_names = [s for s in SECTIONS if s != test]
        gene_list = genes if isinstance(genes, list) else None
        if gene_list is None:
            from napari_mclstexp.data.genes import select_genes

            gene_list = select_genes([samples[s] for s in train_names], genes)
        truth = expression_matrix(samples[test], gene_list, cfg.normalization)
        tr_expr = np.concatenate([expression_matrix(samples[s], gene_list, cfg.normalization) for s in train_names])
        tr_patch = np.concatenate([patches[s] for s in train_names])
        payload["reference"][test] = {
            f"acg_k{k}": acg(histogram_knn_predict(tr_patch, tr_expr, patches[test], k), truth) for k in (50, 200)
        }
        print(test, "reference", payload["reference"][test], flush=True)
    for seed in args.seeds:
        for test in args.tests:
            train_names = [s for s in SECTIONS if s != test]
            train_samples = [samples[s] for s in train_names]
            t0, c0 = time.perf_counter(), time.process_time()
            result = run(
                train(train_samples, cfg.replace(seed=seed), genes=genes, device=args.device, patch_cache=cache)
            )
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            bank = build_bank(result.model, train_samples, result.genes, result.config, result.device)
            queries = embed(result.model, patches[test])
            truth = expression_matrix(samples[test], result.genes, cfg.normalization)
            row = {
                "seed": seed,
                "history": result.history,
                "test": test,
                "train": train_names,
                "n_train_spots": int(len(bank.expression)),
                "train_wall_s": wall,
                "train_cpu_s": cpu,
                "final_loss": result.history[-1]["loss"],
                "temperature": result.history[-1]["temperature"],
            }
            for k in (50, 200):
                row[f"acg_k{k}"] = acg(retrieve(queries, bank, k, cfg.distance).prediction, truth)
            if cfg.tta:  # ablation: the same model without test-time augmentation
                plain = embed(result.model, patches[test], tta=False)
                row["acg_k200_no_tta"] = acg(retrieve(plain, bank, 200, cfg.distance).prediction, truth)
            payload["runs"].append(row)
            payload["summary"] = summarise(payload["runs"], payload["reference"])
            save(out, payload)
            print(json.dumps(row), flush=True)
    if args.time_all_four:
        t0, c0 = time.perf_counter(), time.process_time()
        run(train(list(samples.values()), cfg, genes=genes, device=args.device, patch_cache=cache))
        payload["all_four_sections"] = {
            "train_wall_s": time.perf_counter() - t0,
            "train_cpu_s": time.process_time() - c0,
            "n_spots": int(sum(a.n_obs for a in samples.values())),
        }
    payload["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    payload["summary"] = summarise(payload["runs"], payload["reference"])
    save(out, payload)
    print(json.dumps(payload["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

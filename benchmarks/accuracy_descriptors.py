"""Tissue descriptors beside the ``quick`` model's retrieval (``python -m benchmarks accuracy-descriptors``).

Same settings and baselines as ``accuracy-levers`` (``cv``: test C2, C3, C4 in turn, the test patient C also
in training; ``C>B4`` and ``B4>C``: the test patient never in training or in the bank).  Per seed and fold the
``quick`` model is trained once (or its bundle reused from ``--bundle-dir``), then finished twice as ``train``
finishes bundles (``workflows.reliability.iter_finish_bundle``): without descriptors (retrieval, the neighbour
weight chosen held out) and with them (descriptor trees, their blend weight and then the neighbour weight
chosen on held-out predictions of the training sections — never on a test section).  Rows: the
colour-histogram kNN (k = 200) and the kNN smoothed; the retrieval alone and smoothed; the descriptor trees
alone; retrieval + descriptors at the chosen weight, and smoothed (what ``quick`` bundles now predict);
the 3-seed ensemble of the last.  Metrics: ACG and HEG@50 per test section, averaged over a setting's tests,
then over seeds.

    python -m benchmarks accuracy-descriptors --seed 0 --bundle-dir /tmp/b --out /tmp/d0.json
    python -m benchmarks accuracy-descriptors --merge /tmp/d*.json \
        --out benchmarks/results/accuracy-descriptors-quick-cpu.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from napari_mclstexp.predict.options import PredictOptions

from .her2st_folds import (
    IMAGE_SECTIONS,
    SETTINGS,
    current_stains,
    data_root,
    knn_alpha,
    scores,
    tests_of,
    write_json,
    write_seed_files,
)

VARIANTS = ("own", "own_smooth", "descriptors_only", "blend", "blend_smooth")
ROWS = (
    ("knn", "colour-histogram kNN (k = 200)"),
    ("knn_smooth", "kNN + smoothing"),
    ("own", "quick retrieval"),
    ("own_smooth", "quick retrieval + smoothing"),
    ("descriptors_only", "descriptor trees alone"),
    ("blend", "retrieval + descriptors (held-out weight)"),
    ("blend_smooth", "retrieval + descriptors + smoothing (quick now)"),
    ("blend_smooth_ensemble3", "the same, 3-seed ensemble"),
)


def _bundle(args, seed: int, setting: str, train_names, samples, genes, cache):
    """The fold's trained quick bundle: from ``--bundle-dir`` or trained now (and kept there)."""
    from napari_mclstexp.bundle import make_bundle, save_bundle
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.progress import run
    from napari_mclstexp.train.trainer import train

    path = Path(args.bundle_dir) / f"s{seed}_{setting.replace('>', '-')}_{'-'.join(train_names)}.mclst"
    if not path.is_file():
        tr = [samples[s] for s in train_names]
        t, c = time.perf_counter(), time.process_time()
        result = run(train(tr, get_preset("quick").replace(seed=seed), genes=genes, device="cpu", patch_cache=cache))
        bundle = make_bundle(result, tr, result.device)
        bundle.metadata["bench_train_s"] = time.perf_counter() - t
        bundle.metadata["bench_train_cpu_s"] = time.process_time() - c
        save_bundle(bundle, path)
    return path


def run_seed(args) -> dict:
    import torch

    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.data.genes import expression_matrix, load_gene_list
    from napari_mclstexp.data.patches import PatchCache, sample_patches
    from napari_mclstexp.io.her2st import read_her2st_section
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.predict.baseline import histogram_knn_predict
    from napari_mclstexp.predict.descriptor_model import blend, bundle_descriptor_model
    from napari_mclstexp.predict.smoothing import neighbour_graph, smooth
    from napari_mclstexp.predict.spots import predict_at_spots
    from napari_mclstexp.progress import run
    from napari_mclstexp.sample import spot_xy
    from napari_mclstexp.workflows.reliability import iter_finish_bundle

    torch.set_num_threads(args.threads)
    root = Path(args.data)
    samples = {s: read_her2st_section(root, s) for s in IMAGE_SECTIONS}
    genes = [g for g in load_gene_list(root / "her_hvg_785.npy") if all(g in a.var_names for a in samples.values())]
    quick = get_preset("quick")
    cache = PatchCache(args.cache)
    expr = {s: expression_matrix(a, genes, quick.normalization) for s, a in samples.items()}
    xy = {s: spot_xy(a) for s, a in samples.items()}
    patches = {s: np.asarray(sample_patches(a, quick.patch_px, quick.input_px, cache)) for s, a in samples.items()}
    out: dict = {"runs": [], "baseline": [], "predictions": {}}
    Path(args.bundle_dir).mkdir(parents=True, exist_ok=True)
    for setting in args.settings:
        for train_names, test in SETTINGS[setting]:
            tests = tests_of((train_names, test))
            a_knn = knn_alpha(patches, expr, xy, train_names, 200)
            tr_p = np.concatenate([patches[s] for s in train_names])
            tr_e = np.concatenate([expr[s] for s in train_names])
            for t in tests:
                p = histogram_knn_predict(tr_p, tr_e, patches[t], 200)
                sm = smooth(p, neighbour_graph(xy[t]), a_knn)
                knn = {"knn": scores(p, expr[t]), "knn_smooth": scores(sm, expr[t])}
                out["baseline"].append({"setting": setting, "test": t, "alpha": a_knn, **knn})
            path = _bundle(args, args.seed, setting, train_names, samples, genes, cache)
            tr = [samples[s] for s in train_names]
            plain, both = load_bundle(path), load_bundle(path)
            current_stains(plain, tr), current_stains(both, tr)  # kept bundles: today's stain estimate
            plain.config["descriptors"], both.config["descriptors"] = False, True
            run(iter_finish_bundle(plain, tr, device="cpu", patch_cache=cache))
            t1, c1 = time.perf_counter(), time.process_time()
            run(iter_finish_bundle(both, tr, device="cpu", patch_cache=cache))
            finish_s, finish_cpu = time.perf_counter() - t1, time.process_time() - c1
            alpha_own = plain.metadata["smoothing"]["alpha"]
            weight, alpha = both.metadata["descriptors"]["weight"], both.metadata["smoothing"]["alpha"]
            row = {
                "seed": args.seed,
                "setting": setting,
                "train": list(train_names),
                "train_s": plain.metadata.get("bench_train_s"),
                "train_cpu_s": plain.metadata.get("bench_train_cpu_s"),
                "descriptor_finish_s": finish_s,
                "descriptor_finish_cpu_s": finish_cpu,
                "alpha_own": alpha_own,
                "descriptor_weight": weight,
                "descriptor_scores": both.metadata["descriptors"]["scores"],
                "alpha_blend": alpha,
                "tests": {},
            }
            for t in tests:
                raw = np.asarray(run(predict_at_spots(plain, samples[t], PredictOptions(device="cpu", smooth=False))).X)
                t2 = time.perf_counter()
                product = run(predict_at_spots(both, samples[t], PredictOptions(device="cpu"), patch_cache=cache))
                row.setdefault("predict_s", {})[t] = time.perf_counter() - t2
                desc = bundle_descriptor_model(both).predict(run(iter_sample_descriptors_for(both, samples[t], cache)))
                mixed = blend(raw, desc, weight)
                mixed_sm = smooth(mixed, neighbour_graph(xy[t]), alpha)
                # the product path (predict_at_spots with the finished bundle) gives the same numbers
                row.setdefault("product_max_abs_diff", {})[t] = float(np.abs(np.asarray(product.X) - mixed_sm).max())
                variants = {
                    "own": raw,
                    "own_smooth": smooth(raw, neighbour_graph(xy[t]), alpha_own),
                    "descriptors_only": desc,
                    "blend": mixed,
                    "blend_smooth": mixed_sm,
                }
                row["tests"][t] = {name: scores(v, expr[t]) for name, v in variants.items()}
                out["predictions"][f"{setting}|{t}|blend_smooth"] = mixed_sm
            out["runs"].append(row)
            print(json.dumps({k: v for k, v in row.items() if k not in ("train", "descriptor_scores")}), flush=True)
            save(args, out)
    return out


def iter_sample_descriptors_for(bundle, adata, cache):
    """The spot descriptors a bundle's prediction reads (same crop and input size as ``predict_at_spots``)."""
    from napari_mclstexp.data.descriptors import iter_sample_descriptors
    from napari_mclstexp.predict.spots import patch_px_for
    from napari_mclstexp.sample import microns_per_pixel

    crop = patch_px_for(bundle, microns_per_pixel(adata))
    return iter_sample_descriptors(adata, crop, int(bundle.config["input_px"]), cache)


def save(args, out: dict) -> None:
    payload = {k: v for k, v in out.items() if k != "predictions"}
    write_seed_files(args, out["predictions"], {**payload, "seed": args.seed, "settings": args.settings})


def merge(files: list[str], out: Path, data: Path) -> int:
    """Mean over seeds of each setting's mean over tests, per variant, beside the kNN; the seeds' ensemble."""
    from napari_mclstexp.data.genes import expression_matrix, load_gene_list
    from napari_mclstexp.io.her2st import read_her2st_section

    parts = [json.loads(Path(f).read_text()) for f in files]
    runs = [r for p in parts for r in p["runs"]]
    images = {s: read_her2st_section(data, s) for s in IMAGE_SECTIONS}
    genes = [g for g in load_gene_list(data / "her_hvg_785.npy") if all(g in a.var_names for a in images.values())]
    npz = [np.load(Path(f).with_suffix(".npz")) for f in files]
    table: dict[str, dict] = {}
    for setting in SETTINGS:
        base = [b for b in parts[0]["baseline"] if b["setting"] == setting]
        mine = [r for r in runs if r["setting"] == setting]
        if not base or not mine:
            continue
        row = table.setdefault(setting, {})
        knn_acg = float(np.mean([b["knn"]["acg"] for b in base]))
        for variant in ("knn", "knn_smooth"):
            row[variant] = {m: float(np.mean([b[variant][m] for b in base])) for m in ("acg", "heg50")}
        seeds = sorted({r["seed"] for r in mine})
        for variant in VARIANTS:
            per_seed = []
            for s in seeds:
                tests = [t for r in mine if r["seed"] == s for t in r["tests"].values()]
                per_seed.append({m: float(np.mean([t[variant][m] for t in tests])) for m in ("acg", "heg50")})
            row[variant] = {m: float(np.mean([p[m] for p in per_seed])) for m in ("acg", "heg50")}
            row[variant].update(acg_sd=float(np.std([p["acg"] for p in per_seed])), seeds=seeds)
        for name in ("own", "own_smooth", "blend_smooth"):
            row[name]["vs_knn"] = row[name]["acg"] / knn_acg
        accs = []
        for item in SETTINGS[setting]:
            for t in tests_of(item):
                preds = [z[f"{setting}|{t}|blend_smooth"] for z in npz if f"{setting}|{t}|blend_smooth" in z.files]
                if len(preds) == len(seeds) > 1:
                    truth = expression_matrix(images[t], genes, "log10_1e4")
                    accs.append(scores(np.mean(preds, 0), truth))
        if accs:
            row[f"blend_smooth_ensemble{len(seeds)}"] = {
                m: float(np.mean([a[m] for a in accs])) for m in ("acg", "heg50")
            }
        row["weights"] = [r["descriptor_weight"] for r in mine]
        row["alphas"] = [r["alpha_blend"] for r in mine]
        row["train_s"] = float(np.mean([r["train_s"] or np.nan for r in mine]))
        row["descriptor_finish_s"] = float(np.mean([r["descriptor_finish_s"] for r in mine]))
    payload = {
        "benchmark": "accuracy_descriptors",
        "merged_from": [str(f) for f in files],
        "table": table,
        "table_markdown": markdown(table),
        "runs": runs,
        "baseline": parts[0]["baseline"],
        "machine": parts[0].get("machine"),
        "doc": __doc__,
    }
    write_json(payload, out)
    print(payload["table_markdown"])
    return 0


def markdown(table: dict) -> str:
    """ACG (HEG@50) and the ratio to the plain kNN per row and setting."""
    settings = list(table)
    lines = ["| predictor | " + " | ".join(settings) + " |", "|---" * (len(settings) + 1) + "|"]
    for key, label in ROWS:
        cells = []
        for s in settings:
            v = table[s].get(key)
            ratio = v["acg"] / table[s]["knn"]["acg"] if v else None
            cells.append("–" if v is None else f"{v['acg']:.3f} ({v['heg50']:.3f}) {ratio:.2f}×")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="her2st folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--settings", nargs="*", default=list(SETTINGS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bundle-dir", default=None, help="trained fold bundles are kept (and reused) here")
    ap.add_argument("--cache", default=None, help="patch cache (default: $MCLSTEXP_CACHE or the user's)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--merge", nargs="+", default=None)
    args = ap.parse_args(argv)
    args.data = str(data_root(args.data))
    if args.merge:
        return merge(args.merge, Path(args.out), Path(args.data))
    if args.cache is None:
        from napari_mclstexp.data.patches import default_cache_root

        args.cache = str(default_cache_root())
    args.bundle_dir = args.bundle_dir or str(Path(args.out).with_suffix("")) + "_bundles"
    run_seed(args)
    return 0

"""Accuracy levers of the offline ``quick`` preset, each alone and together (``python -m benchmarks accuracy-levers``).

Settings on the shared HER2+ data (her2st: one letter = one patient):

``cv``      slide-level CV: test C2, C3, C4 in turn, train on the other three image sections (B4 + two C);
            the test patient (C) is also in training.
``C>B4``    cross-patient: train C2, C3, C4, test B4 (patient B never seen).
``B4>C``    cross-patient: train B4, test C2, C3, C4 (patient C never seen).

Levers: ``context`` (context views, ``context_scale`` 3 vs 1: retrained), ``smooth`` (neighbour smoothing at
the weight chosen on held-out predictions of the training sections, never on a test section), ``extra`` (the
expression-only her2st sections of patients not tested join the reference bank; the weight is re-chosen with
them) and ``ensemble`` (the seeds' predictions averaged).  Beside them, in the same run: the colour-histogram
kNN (k = 200, on the spot patches) and the same kNN smoothed with a weight chosen the same way.  Metrics: ACG
and HEG@50 per test section, averaged over a setting's tests, then over seeds.

One process per seed (``--seed 0``), then ``--merge`` the JSON files::

    python -m benchmarks accuracy-levers --seed 0 --out /tmp/lev0.json
    python -m benchmarks accuracy-levers --merge /tmp/lev*.json --out benchmarks/results/accuracy-levers-quick-cpu.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from napari_mclstexp.predict.options import PredictOptions

from .her2st_folds import IMAGE_SECTIONS, SETTINGS, data_root, knn_alpha, scores, tests_of, write_json, write_seed_files


def run_seed(args) -> dict:
    import torch

    from napari_mclstexp.bundle import make_bundle
    from napari_mclstexp.data.genes import expression_matrix, load_gene_list
    from napari_mclstexp.data.patches import PatchCache, sample_patches
    from napari_mclstexp.io.her2st import list_her2st_sections, read_her2st_section
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.predict.baseline import histogram_knn_predict
    from napari_mclstexp.predict.smoothing import neighbour_graph, smooth
    from napari_mclstexp.predict.spots import predict_at_spots
    from napari_mclstexp.progress import run
    from napari_mclstexp.sample import spot_xy
    from napari_mclstexp.train.trainer import train
    from napari_mclstexp.workflows.reliability import iter_gene_reliability

    torch.set_num_threads(args.threads)
    root = Path(args.data)
    t0 = time.perf_counter()
    samples = {s: read_her2st_section(root, s) for s in IMAGE_SECTIONS}
    extra_all = {s: read_her2st_section(root, s) for s in list_her2st_sections(root) if s not in samples}
    genes = [g for g in load_gene_list(root / "her_hvg_785.npy") if all(g in a.var_names for a in samples.values())]
    base = get_preset("quick")
    if args.epochs:
        base = base.replace(epochs=args.epochs)
    cache = PatchCache(args.cache)
    expr = {s: expression_matrix(a, genes, base.normalization) for s, a in samples.items()}
    xy = {s: spot_xy(a) for s, a in samples.items()}
    patches = {s: np.asarray(sample_patches(a, base.patch_px, base.input_px, cache)) for s, a in samples.items()}
    out = {"load_s": time.perf_counter() - t0, "runs": [], "baseline": [], "predictions": {}}

    for setting in args.settings:
        for train_names, test in SETTINGS[setting]:
            tests = tests_of((train_names, test))
            a_knn = knn_alpha(patches, expr, xy, train_names, 200)
            tr_p = np.concatenate([patches[s] for s in train_names])
            tr_e = np.concatenate([expr[s] for s in train_names])
            for t in tests:
                p = histogram_knn_predict(tr_p, tr_e, patches[t], 200)
                sm = smooth(p, neighbour_graph(xy[t]), a_knn)
                out["baseline"].append(
                    {
                        "setting": setting,
                        "test": t,
                        "alpha": a_knn,
                        "knn": scores(p, expr[t]),
                        "knn_smooth": scores(sm, expr[t]),
                    }
                )
    for context in args.contexts:
        cfg = base.replace(seed=args.seed, context_scale=context)
        for setting in args.settings:
            for train_names, test in SETTINGS[setting]:
                tests = tests_of((train_names, test))
                tr = [samples[s] for s in train_names]
                patients = {s[0] for s in tests}
                extra = [a for s, a in extra_all.items() if s[0] not in patients]  # never the test patient
                t1, c1 = time.perf_counter(), time.process_time()
                result = run(train(tr, cfg, genes=genes, device="cpu", patch_cache=cache))
                train_s, train_cpu = time.perf_counter() - t1, time.process_time() - c1
                row = {
                    "seed": args.seed,
                    "context": context,
                    "setting": setting,
                    "train": list(train_names),
                    "train_s": train_s,
                    "train_cpu_s": train_cpu,
                    "tests": {},
                }
                for bank_name, extras in (("own", []), ("extra", extra)):
                    bundle = make_bundle(result, tr, result.device, extra_samples=extras)
                    rel = run(iter_gene_reliability(bundle, tr, device="cpu", patch_cache=cache))
                    alpha = rel["smoothing"]["alpha"]
                    row[f"alpha_{bank_name}"] = alpha
                    row[f"bank_{bank_name}"] = len(bundle.bank)
                    for t in tests:
                        pred = run(
                            predict_at_spots(
                                bundle, samples[t], PredictOptions(device="cpu", smooth=False), patch_cache=cache
                            )
                        )
                        raw = np.asarray(pred.X, np.float32)
                        sm = smooth(raw, neighbour_graph(xy[t]), alpha)
                        res = row["tests"].setdefault(t, {})
                        res[bank_name] = scores(raw, expr[t])
                        res[f"{bank_name}_smooth"] = scores(sm, expr[t])
                        key = f"{context}|{setting}|{t}|{bank_name}"
                        out["predictions"][key] = {"raw": raw, "smooth": sm}
                out["runs"].append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "train"}), flush=True)
                save(args, out)
    return out


def save(args, out: dict) -> None:
    arrays = {f"{k}|{v}": a for k, d in out["predictions"].items() for v, a in d.items()}
    payload = {k: v for k, v in out.items() if k != "predictions"}
    payload.update(seed=args.seed, contexts=args.contexts, settings=args.settings, epochs=args.epochs)
    write_seed_files(args, arrays, payload)


def merge(files: list[str], out: Path, data: Path) -> int:
    """Mean over seeds of each setting's mean over tests, per variant; ensembles from the saved predictions."""
    from napari_mclstexp.data.genes import expression_matrix, load_gene_list
    from napari_mclstexp.io.her2st import read_her2st_section

    parts = [json.loads(Path(f).read_text()) for f in files]
    runs = [r for p in parts for r in p["runs"]]
    table: dict[str, dict] = {}
    for setting in SETTINGS:
        base = [b for b in parts[0]["baseline"] if b["setting"] == setting]
        if not base:
            continue
        row = table.setdefault(setting, {})
        for variant in ("knn", "knn_smooth"):
            row[variant] = {m: float(np.mean([b[variant][m] for b in base])) for m in ("acg", "heg50")}
        for context in sorted({r["context"] for r in runs}):
            mine = [r for r in runs if r["setting"] == setting and r["context"] == context]
            seeds = sorted({r["seed"] for r in mine})
            if not seeds:
                continue
            covered = sorted({t for r in mine for t in r["tests"]})
            for variant in ("own", "own_smooth", "extra", "extra_smooth"):
                per_seed = []
                for s in seeds:
                    tests = [t for r in mine if r["seed"] == s for t in r["tests"].values()]
                    per_seed.append({m: np.mean([t[variant][m] for t in tests]) for m in ("acg", "heg50")})
                name = f"ctx{context}_{variant}"
                row[name] = {m: float(np.mean([p[m] for p in per_seed])) for m in ("acg", "heg50")}
                row[name]["acg_sd"] = float(np.std([p["acg"] for p in per_seed]))
                row[name]["seeds"] = seeds
                row[name]["tests"] = covered
                same = [b["knn"]["acg"] for b in base if b["test"] in covered]
                row[name]["knn_acg_same_tests"] = float(np.mean(same))
                row[name]["vs_knn"] = row[name]["acg"] / row[name]["knn_acg_same_tests"]
            row[f"ctx{context}_train_s"] = float(np.mean([r["train_s"] for r in mine]))
    # ensembles: the seeds' predictions averaged
    npz = [np.load(Path(f).with_suffix(".npz")) for f in files]
    root = Path(data)
    images = {s: read_her2st_section(root, s) for s in IMAGE_SECTIONS}
    genes = [g for g in load_gene_list(root / "her_hvg_785.npy") if all(g in a.var_names for a in images.values())]
    for setting in SETTINGS:
        if setting not in table:
            continue
        for context in sorted({r["context"] for r in runs}):
            for variant in ("own_smooth", "extra_smooth"):
                bank, kind = variant.split("_")
                accs, sizes = [], []
                for _, test in SETTINGS[setting]:
                    for t in test if isinstance(test, tuple) else (test,):
                        key = f"{context}|{setting}|{t}|{bank}|{kind}"
                        preds = [z[key] for z in npz if key in z]
                        if len(preds) < 2:
                            continue
                        truth = expression_matrix(images[t], genes, "log10_1e4")
                        accs.append(scores(np.mean(preds, 0), truth))
                        sizes.append(len(preds))
                if accs and len(set(sizes)) == 1:
                    table[setting][f"ctx{context}_{variant}_ensemble{sizes[0]}"] = {
                        m: float(np.mean([a[m] for a in accs])) for m in ("acg", "heg50")
                    }
    payload = {
        "benchmark": "accuracy_levers",
        "merged_from": [str(f) for f in files],
        "table": table,
        "runs": runs,
        "baseline": parts[0]["baseline"],
        "machine": parts[0].get("machine"),
        "epochs": parts[0].get("epochs"),
        "doc": __doc__,
    }
    payload["table_markdown"] = markdown(table)
    write_json(payload, out)
    print(payload["table_markdown"])
    for setting, row in table.items():
        print(setting)
        for name, v in row.items():
            print(f"  {name:32s} {json.dumps(v)}")
    return 0


ROWS = (
    ("knn", "colour-histogram kNN (k = 200)"),
    ("knn_smooth", "kNN + smoothing"),
    ("ctx1_own", "quick (spot patch)"),
    ("ctx1_own_smooth", "quick + smoothing"),
    ("ctx1_extra", "quick + expression-only bank"),
    ("ctx1_extra_smooth", "quick + expression-only bank + smoothing"),
    ("ctx3_own", "quick + context (×3)"),
    ("ctx3_own_smooth", "quick + context + smoothing"),
    ("ctx3_extra_smooth", "quick + context + bank + smoothing (all)"),
    ("ctx1_own_smooth_ensemble3", "quick + smoothing, 3-seed ensemble"),
    ("ctx1_extra_smooth_ensemble3", "quick + bank + smoothing, 3-seed ensemble"),
)


def markdown(table: dict) -> str:
    """ACG (HEG@50) per lever and setting, with the ratio to the plain kNN and the seeds behind each figure."""
    settings = [s for s in SETTINGS if s in table]
    lines = ["| lever | " + " | ".join(settings) + " |", "|---" * (len(settings) + 1) + "|"]
    for key, label in ROWS:
        cells = []
        for s in settings:
            v = table[s].get(key)
            if v is None:
                cells.append("–")
                continue
            seeds, tests = v.get("seeds"), v.get("tests")
            note = f", {len(seeds)} seed{'s' * (len(seeds) > 1)}" if seeds is not None else ""
            every = {t for item in SETTINGS[s] for t in tests_of(item)}
            if tests is not None and set(tests) != every:
                note += f", {'+'.join(tests)} only"
            ratio = v["acg"] / v.get("knn_acg_same_tests", table[s]["knn"]["acg"])
            cells.append(f"{v['acg']:.3f} ({v['heg50']:.3f}) {ratio:.2f}×{note}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="her2st folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--contexts", type=int, nargs="*", default=[1, 3])
    ap.add_argument("--settings", nargs="*", default=list(SETTINGS))
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
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
    run_seed(args)
    return 0

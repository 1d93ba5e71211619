#!/usr/bin/env python
"""Variants of the descriptor trees, tried for the cross-patient goal (``accuracy.py --part descriptor-variants``).

The descriptor predictor alone (``predict.descriptor_model``: extra trees on the tissue descriptors, first
30 principal components of expression), changed one thing at a time, beside the colour-histogram kNN
(k = 200) measured in the same run.  No CNN is trained, so every row is cheap; the trees' seed is the only
randomness (seeds 0, 1, 2; means reported).  Settings: ``inner`` — leave one of C2, C3, C4 out, trained on
the other two (the only one used to choose: it never sees patient B); ``cv`` — as ``accuracy.py --part
descriptors`` (B4 and two C sections → the third; patient C also in training); ``C>B4`` and ``B4>C`` —
the test patient never in training.

Variants: ``base`` (what ``quick`` bundles use); ``centre_targets`` / ``centre_descriptors`` / ``centre_both``
(each training section centred on its own mean; the descriptors of the test section on its own);
``zscore_genes`` (genes scaled to unit variance before the components); ``pcs15`` / ``pcs50`` / ``pcs100``;
``neighbours_1.5`` / ``neighbours_2.5`` (each spot's descriptors plus their mean over the spots within 1.5 or
2.5 lattice spacings, in the same section); ``basis_expression_only`` (the components from the training
sections plus every expression-only her2st section of another patient than the test's); ``stain_aug_05`` /
``stain_aug_10`` (two extra copies of each training spot with its optical densities in H&E space scaled by
U(1 ± s) and shifted by U(± s), s = 0.05 or 0.1: stain augmentation); ``neighbours_2.5+basis`` (the two
best on ``inner`` together); ``descriptors_v1`` (the version-1 descriptors, :mod:`.descriptors_v1`, beside
``base``, the current ones).

    python benchmarks/accuracy.py --part descriptor-variants \
        --out benchmarks/results/accuracy-descriptor-variants-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
IMAGES = ("B4", "C2", "C3", "C4")
SETTINGS = {
    "inner": [(("C3", "C4"), ("C2",)), (("C2", "C4"), ("C3",)), (("C2", "C3"), ("C4",))],
    "cv": [(("B4", "C3", "C4"), ("C2",)), (("B4", "C2", "C4"), ("C3",)), (("B4", "C2", "C3"), ("C4",))],
    "C>B4": [(("C2", "C3", "C4"), ("B4",))],
    "B4>C": [(("B4",), ("C2", "C3", "C4"))],
}
VARIANTS = {
    "base": {},
    "centre_targets": {"centre_y": True},
    "centre_descriptors": {"centre_x": True},
    "centre_both": {"centre_y": True, "centre_x": True},
    "zscore_genes": {"zscore": True},
    "pcs15": {"components": 15},
    "pcs50": {"components": 50},
    "pcs100": {"components": 100},
    "neighbours_1.5": {"neighbours": 1.5},
    "neighbours_2.5": {"neighbours": 2.5},
    "basis_expression_only": {"basis_extra": True},
    "stain_aug_05": {"stain": 0.05},
    "stain_aug_10": {"stain": 0.10},
    "neighbours_2.5+basis": {"neighbours": 2.5, "basis_extra": True},
    "descriptors_v1": {"v1": True},
}
#: Ruifrok & Johnston's H, E, DAB optical densities (rows), DAB completed as their cross product.
HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
HED[2] = np.cross(HED[0], HED[1])


def stain_jitter(reads: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    """``(N, E, E, 3)`` uint8 reads with H, E, DAB densities scaled by U(1 ± s) and shifted by U(± s)."""
    od = -np.log(np.clip(reads.astype(np.float32) / 255.0, 1e-6, 1.0)) @ np.linalg.inv(HED).astype(np.float32)
    n = len(reads)
    od = od * rng.uniform(1 - s, 1 + s, (n, 1, 1, 3)).astype(np.float32) + rng.uniform(-s, s, (n, 1, 1, 3))
    return np.clip(np.exp(-(od @ HED.astype(np.float32))) * 255 + 0.5, 0, 255).astype(np.uint8)


def load(data: Path, cache_dir: str | None) -> dict:
    """Descriptors, 3× reads, colour-histogram patches, expression and centres of the image sections; the
    expression of the others (expression-only)."""
    from napari_mclstexp.data import descriptors_v1
    from napari_mclstexp.data.descriptors import READ_PX, read_edge, tissue_descriptors
    from napari_mclstexp.data.genes import expression_matrix, load_gene_list
    from napari_mclstexp.data.patches import PatchCache, sample_patches
    from napari_mclstexp.io.her2st import read_her2st_section
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.sample import spot_xy

    quick = get_preset("quick")
    cache = PatchCache(cache_dir) if cache_dir else None
    images = {s: read_her2st_section(data, s) for s in IMAGES}
    genes = [g for g in load_gene_list(data / "her_hvg_785.npy") if all(g in a.var_names for a in images.values())]
    d: dict = {"genes": genes, "expr": {}, "xy": {}, "patches": {}, "reads": {}, "desc": {}, "extra": {}}
    for s, a in images.items():
        d["expr"][s] = expression_matrix(a, genes, quick.normalization)
        d["xy"][s] = spot_xy(a)
        d["patches"][s] = np.asarray(sample_patches(a, quick.patch_px, quick.input_px, cache))
        # the read iter_sample_descriptors makes, and version 1's (3× the spot patch at 3× the input)
        d["reads"][s] = np.asarray(sample_patches(a, read_edge(quick.patch_px), READ_PX, cache))
        d["desc"][s] = tissue_descriptors(d["reads"][s])
        c = descriptors_v1.CONTEXT
        reads_v1 = sample_patches(a, c * quick.patch_px, c * quick.input_px, cache)
        d.setdefault("desc_v1", {})[s] = descriptors_v1.tissue_descriptors(np.asarray(reads_v1))
    for path in sorted((data / "ST-cnts").glob("*.tsv.gz")):
        name = path.name.split(".")[0]
        if name not in IMAGES:
            d["extra"][name] = expression_matrix(read_her2st_section(data, name), genes, quick.normalization)
    return d


def neighbour_mean(x: np.ndarray, xy: np.ndarray, radius: float) -> np.ndarray:
    from napari_mclstexp.predict.smoothing import neighbour_graph

    graph = neighbour_graph(xy, radius)
    mean = np.asarray(graph @ x)
    alone = np.asarray(graph.sum(1)).ravel() == 0
    mean[alone] = x[alone]
    return mean


def features(d: dict, s: str, v: dict) -> np.ndarray:
    x = d["desc_v1" if v.get("v1") else "desc"][s]
    if v.get("centre_x"):
        x = x - x.mean(0)
    if v.get("neighbours"):
        x = np.concatenate([x, neighbour_mean(x, d["xy"][s], v["neighbours"])], 1)
    return x


def fit_predict(d: dict, train, tests, v: dict, seed: int) -> dict:
    from sklearn.decomposition import PCA
    from sklearn.ensemble import ExtraTreesRegressor

    from napari_mclstexp.data.descriptors import tissue_descriptors
    from napari_mclstexp.predict import descriptor_model as dm

    xs = [features(d, s, v) for s in train]
    ys = [d["expr"][s] - (d["expr"][s].mean(0) if v.get("centre_y") else 0) for s in train]
    if v.get("stain"):
        rng = np.random.default_rng(seed)
        for s, y in zip(list(train), list(ys), strict=True):
            for _ in range(2):
                xs.append(tissue_descriptors(stain_jitter(d["reads"][s], rng, v["stain"])))
                ys.append(y)
    x, y = np.concatenate(xs), np.concatenate(ys)
    mu = y.mean(0)
    sd = y.std(0) + 1e-3 if v.get("zscore") else np.ones_like(mu)
    basis = [(y - mu) / sd]
    if v.get("basis_extra"):
        patients = {t[0] for t in tests}
        basis += [(e - mu) / sd for k, e in d["extra"].items() if k[0] not in patients]
    n = min(v.get("components", dm.N_COMPONENTS), len(y) - 1)
    comps = PCA(n, random_state=seed).fit(np.concatenate(basis)).components_
    trees = ExtraTreesRegressor(
        n_estimators=dm.N_TREES,
        min_samples_leaf=dm.MIN_LEAF,
        max_features=dm.MAX_FEATURES,
        random_state=seed,
        n_jobs=-1,
    ).fit(x, ((y - mu) / sd) @ comps.T)
    return {t: (trees.predict(features(d, t, v)) @ comps) * sd + mu for t in tests}


def main(argv: list[str] | None = None) -> int:
    from accuracy_levers import scores

    from napari_mclstexp.atomic import atomic_write_path
    from napari_mclstexp.predict.baseline import histogram_knn_predict

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("MCLSTEXP_SHARED_DATA", str(HERE.parent.parent / "shared/data")))
    ap.add_argument("--cache", default=None, help="patch cache folder")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", default=str(HERE / "results" / "accuracy-descriptor-variants-cpu.json"))
    args = ap.parse_args(argv)
    data = Path(args.data)
    data = data / "her2st" if (data / "her2st").is_dir() else data
    t0 = time.perf_counter()
    d = load(data, args.cache)
    seeds = [int(s) for s in args.seeds.split(",")]
    table: dict = {"knn": {}}
    for setting, folds in SETTINGS.items():
        accs = []
        for train, tests in folds:
            ref_p = np.concatenate([d["patches"][s] for s in train])
            ref_e = np.concatenate([d["expr"][s] for s in train])
            accs += [
                scores(histogram_knn_predict(ref_p, ref_e, d["patches"][t], 200), d["expr"][t])["acg"] for t in tests
            ]
        table["knn"][setting] = float(np.mean(accs))
    for name in args.variants.split(","):
        row = table.setdefault(name, {})
        for setting, folds in SETTINGS.items():
            per_seed = []
            for seed in seeds:
                got = [
                    scores(p, d["expr"][t])
                    for train, tests in folds
                    for t, p in fit_predict(d, train, tests, VARIANTS[name], seed).items()
                ]
                per_seed.append([np.mean([g["acg"] for g in got]), np.mean([g["heg50"] for g in got])])
            acg, heg = np.mean(per_seed, 0)
            row[setting] = {"acg": float(acg), "heg50": float(heg), "acg_sd": float(np.std([p[0] for p in per_seed]))}
            row[setting]["vs_knn"] = float(acg / table["knn"][setting])
        print(name, {k: round(v["acg"], 4) for k, v in row.items()}, flush=True)
    payload = {
        "benchmark": "descriptor-variants",
        "doc": __doc__,
        "selection_setting": "inner",
        "seeds": seeds,
        "table": table,
        "seconds": time.perf_counter() - t0,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    with atomic_write_path(args.out) as tmp:
        Path(tmp).write_text(json.dumps(payload, indent=1))
    print(f"wrote {args.out}")
    return 0

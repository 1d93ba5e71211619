"""Frozen-feature probe of a pretrained encoder: is SimCLR on own tiles better than random weights?

Cheap companion of ``benchmarks/pretrain.py`` (no end-to-end training): the ``quick`` encoder's 256-d
features of every spot patch, from random initialisation vs from a pretrained ``.safetensors`` file
(pretrained without the test section's tiles), predict the held-out section's expression by
standardised-feature kNN (1/d² weights, k = 50, 200) and by ridge (standardise → PCA → ridge, HEST),
beside the colour-histogram kNN.  ACG as in ``quick_vs_histogram.py``.

Run::

    PYTHONPATH=src .venv/bin/python benchmarks/pretrain_probe.py --encoder-file enc-C4.safetensors --test C4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quick_vs_histogram import SECTIONS, acg, her2st_root, save  # noqa: E402

from napari_mclstexp.data.genes import expression_matrix, load_gene_list  # noqa: E402
from napari_mclstexp.data.patches import PatchCache, default_cache_root, sample_patches  # noqa: E402
from napari_mclstexp.io.her2st import read_her2st_section  # noqa: E402
from napari_mclstexp.model.encoders import make_image_encoder  # noqa: E402
from napari_mclstexp.model.presets import get_preset  # noqa: E402
from napari_mclstexp.model.ridge import fit_ridge  # noqa: E402
from napari_mclstexp.predict.baseline import histogram_knn_predict  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@torch.inference_mode()
def features(weights: str, patches: np.ndarray, seed: int) -> np.ndarray:
    """(N, 256) smallcnn features of uint8 64 px patches (inputs in [0, 1], as ``quick``)."""
    torch.manual_seed(seed)
    enc, _ = make_image_encoder("smallcnn", weights, 64)
    enc.eval()
    x = torch.from_numpy(patches).permute(0, 3, 1, 2).float() / 255.0
    return torch.cat([enc(x[i : i + 256]) for i in range(0, len(x), 256)]).numpy()


def knn(f_train: np.ndarray, expr: np.ndarray, f_test: np.ndarray, k: int) -> np.ndarray:
    """Standardised-feature kNN with 1/d² weights."""
    mean, std = f_train.mean(0), f_train.std(0)
    std[std == 0] = 1.0
    a, b = (f_train - mean) / std, (f_test - mean) / std
    dist, idx = NearestNeighbors(n_neighbors=k).fit(a).kneighbors(b)
    w = 1.0 / np.maximum(dist, 1e-6) ** 2
    w /= w.sum(1, keepdims=True)
    return np.einsum("nk,nkg->ng", w, expr[idx])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--her2st", default=None)
    ap.add_argument("--test", default="C4")
    ap.add_argument("--encoder-file", required=True, help="pretrained on the other sections' tiles only")
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1], help="seeds of the random-init encoders")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "pretrain-probe-cpu.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    root = her2st_root(args.her2st)
    samples = {s: read_her2st_section(root, s) for s in SECTIONS}
    genes = [g for g in load_gene_list(root / "her_hvg_785.npy") if all(g in a.var_names for a in samples.values())]
    cfg = get_preset("quick")
    cache = PatchCache(default_cache_root())
    patches = {s: np.asarray(sample_patches(a, cfg.patch_px, cfg.input_px, cache)) for s, a in samples.items()}
    names = [s for s in SECTIONS if s != args.test]
    truth = expression_matrix(samples[args.test], genes, cfg.normalization)
    tr_expr = np.concatenate([expression_matrix(samples[s], genes, cfg.normalization) for s in names])
    tr_patch = np.concatenate([patches[s] for s in names])
    rows: dict = {
        "histogram": {
            f"knn_k{k}": acg(histogram_knn_predict(tr_patch, tr_expr, patches[args.test], k), truth) for k in (50, 200)
        }
    }
    inits = {f"random_seed{s}": ("none", s) for s in args.seeds} | {"simclr": (args.encoder_file, 0)}
    for name, (weights, seed) in inits.items():
        t0 = time.perf_counter()
        f_tr, f_te = features(weights, tr_patch, seed), features(weights, patches[args.test], seed)
        w, b = fit_ridge(f_tr, tr_expr)
        rows[name] = {f"knn_k{k}": acg(knn(f_tr, tr_expr, f_te, k), truth) for k in (50, 200)}
        rows[name]["ridge"] = acg(f_te @ w.T + b, truth)
        rows[name]["seconds"] = time.perf_counter() - t0
        print(name, rows[name], flush=True)
    payload = {
        "benchmark": "pretrain_probe",
        "test": args.test,
        "train": names,
        "n_genes": len(genes),
        "encoder_file": Path(args.encoder_file).name,
        "results": rows,
        "machine": "2-core CPU shared with other jobs",
        "threads": args.threads,
    }
    save(Path(args.out), payload)
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: does own-slide SimCLR pretraining help the ``quick`` preset on held-out HER2+ sections?

Protocol (held-out sections never seen, not even their unlabelled tiles): for each test section T in
``--tests`` (default C4), the ``quick`` encoder is pretrained with :func:`pretrain_and_save` on tissue
tiles of the *other three* image sections (B4, C2, C3 for T = C4), then ``quick`` trains on those three
sections once from ``weights=none`` and once from the pretrained file, per seed; both predict T's spots
by retrieval (ACG = mean Pearson r over the paper's 785 genes, k = 50 and 200), beside the colour-histogram
kNN on the same crops.

Also times one SimCLR step against one BYOL step (online + EMA target network + predictor) at the
same batch: the cost argument for SimCLR on a CPU.

Run::

    python -m benchmarks pretrain --tests C4 --seeds 0 1

Own-slide pretraining stays an experimental option of the command line until this part measures a gain
(``docs/accuracy.md``).

Writes ``benchmarks/results/pretrain-cpu.json`` (atomically, after every run).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from napari_mclstexp.data.genes import expression_matrix, load_gene_list
from napari_mclstexp.data.patches import PatchCache, default_cache_root, sample_patches
from napari_mclstexp.io.her2st import read_her2st_section
from napari_mclstexp.model.bank import build_bank
from napari_mclstexp.model.encoders import make_image_encoder
from napari_mclstexp.model.presets import get_preset
from napari_mclstexp.predict.baseline import histogram_knn_predict
from napari_mclstexp.predict.retrieval import retrieve
from napari_mclstexp.progress import run
from napari_mclstexp.train.pretrain import _SimCLR, augment_views, nt_xent
from napari_mclstexp.train.trainer import train
from napari_mclstexp.workflows.pretrain import pretrain_and_save

from .her2st_folds import IMAGE_SECTIONS, REPO, acg, data_root, embed, write_json


def time_objectives(batch: int, steps: int = 3) -> dict:
    """Seconds per step of SimCLR and of BYOL (smallcnn, 64 px views, batch tiles = 2·batch views)."""
    torch.manual_seed(0)
    tiles = torch.randint(0, 255, (batch, 96, 96, 3), dtype=torch.uint8)
    enc, dim = make_image_encoder("smallcnn", "none", 64)
    online = _SimCLR(enc, dim)
    target = copy.deepcopy(online).requires_grad_(False)
    predictor = torch.nn.Sequential(torch.nn.Linear(128, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128))
    out = {}
    for name in ("simclr", "byol"):
        times = []
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            v = torch.cat([augment_views(tiles, 64) for _ in range(2)])
            if name == "simclr":
                loss = nt_xent(online(v))
            else:
                p = F.normalize(predictor(online(v)), dim=1)
                with torch.no_grad():
                    z = F.normalize(target(v), dim=1).roll(batch, 0)  # the other view's target
                loss = (2 - 2 * (p * z).sum(1)).mean()
            loss.backward()
            if name == "byol":
                with torch.no_grad():
                    for pt, po in zip(target.parameters(), online.parameters(), strict=True):
                        pt.mul_(0.99).add_(po, alpha=0.01)
            times.append(time.perf_counter() - t0)
        out[f"{name}_s_per_step"] = float(np.median(times[1:]))
    out["batch_tiles"] = batch
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--her2st", default=None)
    ap.add_argument("--tests", nargs="*", default=["C4"])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    ap.add_argument("--epochs", type=int, default=None, help="override quick's training epochs")
    ap.add_argument("--pretrain-epochs", type=int, default=3)
    ap.add_argument("--tiles-per-slide", type=int, default=1000)
    ap.add_argument("--pretrain-batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--inits", nargs="*", default=["none", "simclr"], help="initialisations to train from")
    ap.add_argument(
        "--encoder-file", default=None, help="reuse this pretrained encoder (one test section) instead of pretraining"
    )
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "pretrain-cpu.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    root = data_root(args.her2st)
    samples = {s: read_her2st_section(root, s) for s in IMAGE_SECTIONS}
    genes = [g for g in load_gene_list(root / "her_hvg_785.npy") if all(g in a.var_names for a in samples.values())]
    cfg = get_preset("quick")
    if args.epochs is not None:
        cfg = cfg.replace(epochs=args.epochs)
    cache = PatchCache(default_cache_root())
    patches = {s: np.asarray(sample_patches(a, cfg.patch_px, cfg.input_px, cache)) for s, a in samples.items()}
    out = Path(args.out)
    payload: dict = {
        "benchmark": "pretrain",
        "protocol": "pretrain on the training sections' tissue tiles only; train quick on them; test held out",
        "config": cfg.to_dict(),
        "pretrain": {
            "objective": "simclr",
            "epochs": args.pretrain_epochs,
            "tiles_per_slide": args.tiles_per_slide,
            "batch": args.pretrain_batch,
        },
        "n_genes": len(genes),
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": args.threads,
            "note": "2-core CPU shared with other processes (timings are upper bounds)",
            "torch": torch.__version__,
            "platform": platform.platform(),
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "folds": {},
        "runs": [],
    }
    if not args.skip_timing:
        payload["objective_timing"] = time_objectives(args.pretrain_batch)
        print("timing", payload["objective_timing"], flush=True)
        write_json(payload, out)
    tmp = Path(tempfile.mkdtemp(prefix="mclst-pretrain-"))
    for test in args.tests:
        names = [s for s in IMAGE_SECTIONS if s != test]
        truth = expression_matrix(samples[test], genes, cfg.normalization)
        tr_expr = np.concatenate([expression_matrix(samples[s], genes, cfg.normalization) for s in names])
        tr_patch = np.concatenate([patches[s] for s in names])
        fold = {"train": names, "histogram": {}}
        for k in (50, 200):
            fold["histogram"][f"acg_k{k}"] = acg(histogram_knn_predict(tr_patch, tr_expr, patches[test], k), truth)
        t0, c0 = time.perf_counter(), time.process_time()
        saved = (
            None
            if args.encoder_file
            else run(
                pretrain_and_save(
                    [samples[s] for s in names],
                    tmp / f"enc-{test}.safetensors",
                    preset="quick",
                    epochs=args.pretrain_epochs,
                    tiles_per_slide=args.tiles_per_slide,
                    batch_size=args.pretrain_batch,
                    seed=0,
                    device="cpu",
                )
            )
        )
        if saved is not None:
            fold["pretrain_wall_s"] = time.perf_counter() - t0
            fold["pretrain_cpu_s"] = time.process_time() - c0
            fold["pretrain_tiles"] = saved.result.n_tiles
            fold["pretrain_history"] = saved.result.history
        else:
            fold["encoder_file"] = args.encoder_file
        encoder_path = str(saved.path) if saved is not None else args.encoder_file
        payload["folds"][test] = fold
        write_json(payload, out)
        print(test, fold, flush=True)
        for seed in args.seeds:
            for weights in [encoder_path if init == "simclr" else "none" for init in args.inits]:
                train_samples = [samples[s] for s in names]
                c = cfg.replace(seed=seed, weights=weights)
                t0 = time.perf_counter()
                result = run(train(train_samples, c, genes=genes, device="cpu", patch_cache=cache))
                wall = time.perf_counter() - t0
                bank = build_bank(result.model, train_samples, result.genes, result.config, result.device)
                queries = embed(result.model, patches[test])
                row = {
                    "test": test,
                    "seed": seed,
                    "init": "none" if weights == "none" else "simclr",
                    "train_wall_s": wall,
                    "final_loss": result.history[-1]["loss"],
                }
                for k in (50, 200):
                    row[f"acg_k{k}"] = acg(retrieve(queries, bank, k, cfg.distance).prediction, truth)
                payload["runs"].append(row)
                payload["summary"] = summarise(payload["runs"])
                write_json(payload, out)
                print(row, flush=True)
    payload["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_json(payload, out)
    return 0


def summarise(runs: list[dict]) -> dict:
    """Mean ACG per initialisation (over tests and seeds) and the gain of pretraining."""
    out: dict = {}
    for init in ("none", "simclr"):
        rows = [r for r in runs if r["init"] == init]
        if rows:
            out[init] = {
                "n_runs": len(rows),
                "acg_k200": float(np.mean([r["acg_k200"] for r in rows])),
                "acg_k50": float(np.mean([r["acg_k50"] for r in rows])),
                "train_wall_s": float(np.mean([r["train_wall_s"] for r in rows])),
            }
    if "none" in out and "simclr" in out:
        out["gain_acg_k200"] = out["simclr"]["acg_k200"] - out["none"]["acg_k200"]
    return out

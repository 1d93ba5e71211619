"""Frozen-encoder benchmark on the shared HER2+ data (CPU-sized; ``python -m benchmarks encoders``).

Three measurements, one JSON (``benchmarks/results/encoders-<device>.json``):

1. **Cross-patient CV** (``--scheme patient`` over B4, C2, C3, C4: train C2–C4 → test B4; train B4 →
   test C2, C3, C4), ``--seeds`` seeds: the model (frozen timm encoder + mclSTExp contrastive head),
   ridge on the same features (HEST recipe), the colour-histogram kNN and the mean-expression
   predictor; ACG, HEST PCC (50 training HVGs) and MSE per fold, means over seeds, model ratios.
   The encoder's weights are **random** (one file saved once, so every seed and fold shares the feature
   cache): nothing can be downloaded here, so a foundation model's accuracy cannot be measured on
   this machine; this measures the pipeline and the baselines, not UNI or Virchow2.
2. **Seconds per epoch, frozen vs end to end**, same encoder and input size: the frozen epoch is
   timed by the trainer; the end-to-end epoch is extrapolated from timed training steps (forward,
   backward, update of encoder + heads) to the same number of spots.
3. **Feature-extraction patches/s** of the encoder on the CPU at 224 px (ViT-S/16 by default; the CV uses
   ViT-Ti/16 at 112 px to fit a shared 2-core CPU).

Usage::

    python -m benchmarks encoders                      # ≈ 6–10 min on 2 CPU cores
    python -m benchmarks encoders --seeds 1 --epochs 5 # smoke test
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .her2st_folds import IMAGE_SECTIONS, data_root

HERE = Path(__file__).resolve().parent
METHODS = ("model", "ridge", "histogram", "mean")
KEYS = ("acg", "hest_pcc", "mse")


def random_weights(arch: str, input_px: int, path: Path) -> Path:
    """Save a seeded random initialisation of ``timm:<arch>`` (what a user's weights file would be)."""
    import torch
    from safetensors.torch import save_file

    from napari_mclstexp.model.encoders import make_image_encoder

    torch.manual_seed(0)
    enc, _ = make_image_encoder(f"timm:{arch}", "none", input_px=input_px)
    save_file({k: v.contiguous() for k, v in enc.model.state_dict().items()}, str(path))
    return path


def cross_patient(samples, cfg, genes, seeds, cache_dir) -> dict:
    """Patient-scheme CV per seed; per fold and method the metrics, then means and ratios."""
    from napari_mclstexp.data.patches import PatchCache
    from napari_mclstexp.progress import run_with_progress
    from napari_mclstexp.workflows.cv import run_cv

    rows: dict[str, dict[str, list[dict]]] = {}
    seconds = []
    for seed in seeds:
        t0 = time.perf_counter()
        res = run_with_progress(
            run_cv(
                samples,
                "patient",
                cfg.replace(seed=seed),
                genes=genes,
                device="cpu",
                baseline=True,
                patch_cache=PatchCache(cache_dir / "patches"),
            )
        )
        seconds.append(time.perf_counter() - t0)
        for test, fold in res["folds"].items():
            per = rows.setdefault(test, {m: [] for m in METHODS})
            per["model"].append(fold["metrics"])
            for m in METHODS[1:]:
                per[m].append(fold["baselines"][m])

    def avg(records: list[dict], key: str) -> float | None:
        vals = np.array([r.get(key) for r in records if r.get(key) is not None], dtype=float)
        vals = vals[np.isfinite(vals)]
        return float(vals.mean()) if vals.size else None

    folds = {t: {m: {k: avg(recs, k) for k in KEYS} for m, recs in per.items()} for t, per in rows.items()}
    mean = {m: {k: avg([folds[t][m] for t in folds], k) for k in KEYS} for m in METHODS}
    ratios = {}
    for m in METHODS[1:]:
        r = {}
        for k in ("acg", "hest_pcc"):
            a, b = mean["model"][k], mean[m][k]
            r[k] = a / b if a is not None and b else None
        a, b = mean["model"]["mse"], mean[m]["mse"]
        r["mse_baseline_over_model"] = b / a if a and b is not None else None
        ratios[m] = r
    return {"folds": folds, "mean": mean, "model_ratio": ratios, "seconds_per_seed": seconds}


def epoch_seconds(samples, cfg, genes, steps: int, batch: int) -> dict:
    """Frozen epoch (trainer-timed) vs end-to-end epoch (extrapolated from timed steps), same encoder."""
    import torch

    from napari_mclstexp.data.genes import expression_matrix, select_genes
    from napari_mclstexp.data.patches import sample_patches
    from napari_mclstexp.model.mclstexp import build_model, pos_shape_for, spot_positions
    from napari_mclstexp.progress import run
    from napari_mclstexp.train.trainer import train

    panel = list(select_genes(samples, genes))
    n_spots = sum(a.n_obs for a in samples)
    frozen = run(train(samples, cfg.replace(epochs=2, freeze=True), genes=panel, device="cpu"))
    frozen_s = float(frozen.history[-1]["seconds"])  # second epoch: steady state
    e2e_cfg = cfg.replace(freeze=False)
    torch.manual_seed(0)
    model = build_model(e2e_cfg, len(panel), pos_shape_for(samples, e2e_cfg))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    a = samples[0]
    patches = torch.from_numpy(np.array(sample_patches(a, cfg.patch_px, cfg.input_px)[:batch]))
    expr = torch.from_numpy(np.asarray(expression_matrix(a, panel, cfg.normalization))[:batch])
    pos = torch.from_numpy(spot_positions(a, cfg)[:batch])
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        img, spot = model(patches, expr, pos)
        loss = model.loss(img, spot)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:  # the first step warms up allocators and lazy initialisation
            times.append(time.perf_counter() - t0)
    per_spot = float(np.median(times)) / batch
    e2e_s = per_spot * n_spots
    return {
        "n_spots": n_spots,
        "frozen_s_per_epoch": frozen_s,
        "end_to_end_s_per_epoch": e2e_s,
        "end_to_end_extrapolated_from_steps": steps,
        "end_to_end_batch": batch,
        "speedup": e2e_s / max(frozen_s, 1e-9),
    }


def end_to_end_step(samples, cfg, genes, arch: str, px: int, batch: int, steps: int) -> dict:
    """Seconds per spot of end-to-end training steps of ``timm:<arch>`` at ``px`` (random weights)."""
    import torch

    from napari_mclstexp.data.genes import expression_matrix, select_genes
    from napari_mclstexp.data.patches import sample_patches
    from napari_mclstexp.model.mclstexp import build_model, pos_shape_for, spot_positions

    panel = list(select_genes(samples, genes))
    c = cfg.replace(encoder=f"timm:{arch}", weights="none", input_px=px, freeze=False)
    torch.manual_seed(0)
    model = build_model(c, len(panel), pos_shape_for(samples, c)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    a = samples[0]
    patches = torch.from_numpy(np.array(sample_patches(a, c.patch_px, px)[:batch]))
    expr = torch.from_numpy(np.asarray(expression_matrix(a, panel, c.normalization))[:batch])
    pos = torch.from_numpy(spot_positions(a, c)[:batch])
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = model.loss(*model(patches, expr, pos))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    return {"arch": arch, "input_px": px, "batch": batch, "steps": steps, "s_per_spot": float(np.median(times)) / batch}


def patches_per_second(arch: str, px: int, n: int, batch: int) -> dict:
    """Encoder features per second on the CPU (inference, fp32, uint8 patches in)."""
    import torch

    from napari_mclstexp.model.encoders import make_image_encoder

    enc, dim = make_image_encoder(f"timm:{arch}", "none", input_px=px)
    enc.eval()
    x = torch.rand(batch, 3, px, px)
    with torch.inference_mode():
        enc(x[:2])
        t0 = time.perf_counter()
        done = 0
        while done < n:
            enc(x)
            done += batch
    s = time.perf_counter() - t0
    return {
        "arch": arch,
        "input_px": px,
        "dim": dim,
        "patches": done,
        "seconds": s,
        "patches_per_s": done / s,
        "params_m": sum(p.numel() for p in enc.parameters()) / 1e6,
    }


def table(res: dict) -> str:
    cp = res["cross_patient"]
    lines = [
        "| fold | " + " | ".join(f"{m} ACG" for m in METHODS) + " | model HEST PCC | ridge HEST PCC |",
        "|---" * (len(METHODS) + 3) + "|",
    ]

    def f(v):
        return f"{v:.3f}" if isinstance(v, float) else "–"

    for t, per in {**cp["folds"], "mean": cp["mean"]}.items():
        lines.append(
            f"| {t} | "
            + " | ".join(f(per[m]["acg"]) for m in METHODS)
            + f" | {f(per['model']['hest_pcc'])} | {f(per['ridge']['hest_pcc'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="her2st folder (default: ../shared/data/her2st)")
    p.add_argument(
        "--arch",
        default="vit_tiny_patch16_224",
        help="timm architecture of the CV and the epoch timing (default: ViT-Ti/16, CPU budget)",
    )
    p.add_argument(
        "--speed-arch",
        default="vit_small_patch16_224",
        help="timm architecture whose 224 px feature extraction is timed (default: ViT-S/16)",
    )
    p.add_argument("--input-px", type=int, default=112, help="encoder input for the CV (default 112: CPU budget)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=10, help="contrastive head epochs (default 10; quick preset: 40)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a shared 2-core CPU two threads ran 3-4x slower per step)",
    )
    p.add_argument("--e2e-steps", type=int, default=2)
    p.add_argument("--out", help="summary JSON (default benchmarks/results/encoders-cpu.json)")
    p.add_argument(
        "--add-e2e",
        metavar="ARCH:PX",
        help="only time end-to-end steps of timm:ARCH at PX px and add them (vs the measured frozen "
        "epoch) to an existing --out JSON",
    )
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(max(1, args.threads))
    from napari_mclstexp.io.her2st import read_her2st_section
    from napari_mclstexp.model.presets import get_preset

    root = data_root(args.data)
    if not root.is_dir():
        print(f"her2st data not found at {root}", file=sys.stderr)
        return 1
    work = Path(tempfile.gettempdir()) / "mclstexp-encoders-bench"
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MCLSTEXP_CACHE", str(work / "cache"))
    weights = random_weights(args.arch, args.input_px, work / f"{args.arch}-{args.input_px}-random.safetensors")
    cfg = get_preset("quick").replace(
        encoder=f"timm:{args.arch}",
        weights=str(weights),
        input_px=args.input_px,
        patch_px=224,
        freeze=True,
        epochs=args.epochs,
    )
    samples = [read_her2st_section(root, s) for s in IMAGE_SECTIONS]
    genes = root / "her_hvg_785.npy"
    genes = str(genes) if genes.is_file() else "hvg:300"
    out = Path(args.out) if args.out else HERE / "results" / "encoders-cpu.json"
    if args.add_e2e:
        import json

        from napari_mclstexp.analysis.report import write_json

        arch, px = args.add_e2e.split(":")
        res = json.loads(out.read_text())
        step = end_to_end_step(samples, cfg, genes, arch, int(px), 8, args.e2e_steps)
        e = res["epoch_seconds"]
        step["end_to_end_s_per_epoch"] = step["s_per_spot"] * e["n_spots"]
        step["speedup_vs_frozen_epoch"] = step["end_to_end_s_per_epoch"] / e["frozen_s_per_epoch"]
        res.setdefault("end_to_end_other", []).append(step)
        write_json(res, out)
        print(step)
        return 0
    t0 = time.perf_counter()
    res = {
        "benchmark": "encoders",
        "command": shlex.join(sys.orig_argv),
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "note": (
            "encoder weights are random (no download possible here): foundation-model accuracy cannot be "
            "measured on this machine; the table measures the pipeline and the baselines"
        ),
        "config": cfg.to_dict(),
        "genes": genes,
    }
    res["features_per_s_224"] = patches_per_second(args.speed_arch, 224, 32, 16)
    res["features_per_s_cv_encoder"] = patches_per_second(args.arch, args.input_px, 64, 32)
    res["cross_patient"] = cross_patient(samples, cfg, genes, list(range(args.seeds)), work)
    res["epoch_seconds"] = epoch_seconds(samples, cfg, genes, args.e2e_steps, 32)
    res["total_s"] = time.perf_counter() - t0
    res["table_markdown"] = table(res)
    from napari_mclstexp.analysis.report import write_json

    write_json(res, out)
    print(res["table_markdown"])
    e = res["epoch_seconds"]
    print(
        f"s/epoch frozen {e['frozen_s_per_epoch']:.2f} vs end to end {e['end_to_end_s_per_epoch']:.1f} "
        f"({e['speedup']:.0f}×); {args.speed_arch} features at 224 px: "
        f"{res['features_per_s_224']['patches_per_s']:.1f}/s"
    )
    print(f"summary: {out}")
    return 0

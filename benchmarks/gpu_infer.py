"""The ``infer`` part of ``gpu.py``: whole-slide prediction on a synthetic pyramid, and its helpers."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from napari_mclstexp.predict.options import PredictOptions

from .gpu_parts import log, our_config, sync


def synthetic_slide(edge_px: int, seed: int = 0) -> np.ndarray:
    """H&E-like (edge_px, edge_px, 3) uint8 image: one rendered tile repeated (cheap at any size)."""
    from napari_mclstexp.synthetic import region_map, render_he

    rng = np.random.default_rng(seed)
    tile = min(edge_px, 2048)
    base = render_he(region_map((tile, tile), 4, rng, smooth_px=tile / 4), rng)
    reps = -(-edge_px // tile)
    return np.tile(base, (reps, reps, 1))[:edge_px, :edge_px]


def make_bank_bundle(dev: torch.device, s: dict, samples: list):
    """A bundle of the paper model (random weights) with a bank of ≥ ``bank_spots`` spots."""
    from napari_mclstexp.bundle import make_bundle
    from napari_mclstexp.data.genes import select_genes
    from napari_mclstexp.model.bank import ReferenceBank
    from napari_mclstexp.model.mclstexp import build_model, pos_shape_for

    cfg = our_config(s, epochs=1)
    genes = list(select_genes(samples, None))
    pos_shape = pos_shape_for(samples, cfg)
    torch.manual_seed(0)
    model = build_model(cfg, len(genes), pos_shape).to(dev).eval()
    fake = SimpleNamespace(
        model=model,
        config=cfg,
        genes=genes,
        history=[],
        pos_shape=pos_shape,
        train_sections=[str(a.obs["section"].iloc[0]) for a in samples],
    )
    bundle = make_bundle(fake, samples, dev)
    missing = s["bank_spots"] - len(bundle.bank)
    if missing > 0:  # pad with resampled rows + noise: retrieval cost depends on the size only
        rng = np.random.default_rng(0)
        rows = rng.integers(0, len(bundle.bank), missing)
        emb = bundle.bank.embeddings[rows] + rng.normal(0, 0.05, (missing, bundle.bank.dim)).astype(np.float32)
        extra = ReferenceBank(
            emb,
            bundle.bank.expression[rows],
            genes,
            np.full(missing, "PAD"),
            np.array([f"pad{i}" for i in range(missing)]),
        )
        bundle.bank = ReferenceBank.concatenate([bundle.bank, extra])
    return bundle


def timed_prediction(dev: torch.device, bundle, slide: Path, step_px: int, hard_limit_s: float) -> dict:
    """One ``predict_whole_slide`` call, cancelled after ``hard_limit_s`` s (rate from its events then)."""
    from napari_mclstexp.errors import Cancelled
    from napari_mclstexp.predict.slide import predict_whole_slide
    from napari_mclstexp.progress import CancelToken, run

    cancel = CancelToken()
    seen = [0, 0.0]
    sync(dev)
    t0 = time.perf_counter()

    def on_event(ev) -> None:
        if ev.stage == "predict":
            seen[:] = [int(ev.step), time.perf_counter() - t0]
            if seen[1] > hard_limit_s:
                cancel.cancel()

    try:
        pred = run(
            predict_whole_slide(bundle, slide, PredictOptions(device=str(dev)), step_px=step_px, cancel=cancel),
            on_event,
        )
    except Cancelled:
        n, wall = seen
        return {"patches": n, "seconds": wall, "patches_per_s": n / max(wall, 1e-9), "cancelled": True}
    sync(dev)
    wall = time.perf_counter() - t0
    return {"patches": int(pred.n_obs), "seconds": wall, "patches_per_s": pred.n_obs / wall, "cancelled": False}


def write_slides(s: dict, work: Path) -> tuple[Path, Path]:
    """The timed slide and a small warm-up slide, as pyramidal OME-TIFFs (mpp 1)."""
    from napari_mclstexp.io.wsi_write import write_pyramid_tiff

    big = write_pyramid_tiff(work / "bench_slide.ome.tif", synthetic_slide(s["slide_px"]), mpp=1.0)
    small = write_pyramid_tiff(work / "warm_slide.ome.tif", synthetic_slide(s["warm_slide_px"], 1), mpp=1.0)
    return big, small


def part_infer(dev: torch.device, s: dict, samples: list, slides, seconds: float, hard_limit_s: float) -> dict:
    from napari_mclstexp.predict.slide import predict_whole_slide
    from napari_mclstexp.progress import run

    torch.backends.cudnn.benchmark = False  # whatever predict_whole_slide does itself
    bundle = make_bank_bundle(dev, s, samples)
    t = time.perf_counter()
    big, small = slides()
    log(f"  infer: waited {time.perf_counter() - t:.1f} s for the slides; bank {len(bundle.bank)} spots")
    warm = run(predict_whole_slide(bundle, small, PredictOptions(device=str(dev)), step_px=s["step_px"]))
    log(f"  infer: warm-up predicted {warm.n_obs} patches")
    runs = []
    t_part = time.perf_counter()
    while not runs or time.perf_counter() - t_part < seconds:
        runs.append(timed_prediction(dev, bundle, big, s["step_px"], hard_limit_s))
        r = runs[-1]
        log(
            f"  infer: {r['patches']} patches in {r['seconds']:.2f} s = {r['patches_per_s']:.0f} patches/s"
            + (" (cut short)" if r["cancelled"] else "")
        )
        if r["patches"] == 0:
            raise RuntimeError("whole-slide prediction found no tissue on the synthetic slide")
        if r["cancelled"]:
            break
    rates = sorted(r["patches_per_s"] for r in runs)
    reader = reader_rate(big, s, seconds=min(5.0, max(1.0, seconds / 5)))
    log(f"  infer: tile reading alone (no model): {reader:.0f} patches/s")
    return {
        "patches_per_s": float(np.median(rates)),
        "reader_patches_per_s": reader,
        "runs": runs,
        "bank_spots": len(bundle.bank),
        "n_genes": len(bundle.genes),
        "slide_px": s["slide_px"],
        "step_px": s["step_px"],
        "patch_px": s["patch_px"],
        "warmup_patches": int(warm.n_obs),
    }


def reader_rate(slide_path: Path, s: dict, seconds: float) -> float:
    """Patches/s of ``predict.tiles.tile_batches`` alone: lazy block reads by the worker threads."""
    import os

    from napari_mclstexp.io.wsi import open_slide
    from napari_mclstexp.predict.slide import tile_grid
    from napari_mclstexp.predict.tiles import group_blocks, tile_batches

    with open_slide(slide_path) as slide:
        grid = tile_grid(slide.shape, s["step_px"], s["patch_px"])
        rows, cols = np.indices(grid.shape).reshape(2, -1)
        xy = grid.centres(cols, rows)
        blocks = group_blocks(cols, rows, 8)
        gen = tile_batches(
            slide,
            xy,
            blocks,
            s["patch_px"],
            s["patch_px"],
            0,
            256,
            min(8, os.cpu_count() or 1),
            pin=torch.cuda.is_available(),
        )
        t0, n = time.perf_counter(), 0
        for idx, *_ in gen:
            n += len(idx)
            if time.perf_counter() - t0 > seconds:
                break
        gen.close()
        return n / (time.perf_counter() - t0)

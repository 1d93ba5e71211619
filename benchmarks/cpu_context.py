"""``cpu.py --parts context``: the whole-slide cost of context views (the spot patch plus a 3× wider view)."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from napari_mclstexp.predict.options import PredictOptions


def bench_context(s: dict, work: Path, log) -> dict:
    """Whole-slide cost of the context view: the demo model's shape with ``context_scale`` 1 and 3 (untrained
    weights, the same bank), runs interleaved on the same slide; tiles per second and the ratio."""
    from dataclasses import replace as dc_replace

    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.io.wsi_write import write_pyramid_tiff
    from napari_mclstexp.model.mclstexp import build_model
    from napari_mclstexp.predict.slide import predict_whole_slide
    from napari_mclstexp.progress import run
    from napari_mclstexp.workflows.demo import sample_data_dir

    from .gpu_infer import synthetic_slide

    demo = load_bundle(sample_data_dir() / "demo_quick.mclst")
    slide = write_pyramid_tiff(work / "ctx_slide.ome.tif", synthetic_slide(s["slide_px"]), mpp=1.0)
    bundles = {}
    for scale in (1, 3):
        cfg = {**demo.config, "context_scale": scale}
        torch.manual_seed(0)
        model = build_model(cfg, len(demo.genes), demo.pos_shape, image_weights="none")
        bundles[scale] = dc_replace(demo, config=cfg, state_dict=model.state_dict(), metadata=dict(demo.metadata))
    out: dict = {"slide_px": s["slide_px"], "input_px": int(demo.config["input_px"]), "runs": {1: [], 3: []}}
    for _ in range(2):
        for scale, bundle in bundles.items():
            t0, c0 = time.perf_counter(), time.process_time()
            pred = run(predict_whole_slide(bundle, slide, PredictOptions(device="cpu")))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            out["runs"][scale].append({"tiles": int(pred.n_obs), "seconds": wall, "cpu_s": cpu})
    for scale in (1, 3):
        best = min(out["runs"][scale], key=lambda r: r["seconds"])
        out[f"context_{scale}"] = {
            "tiles_per_s": best["tiles"] / best["seconds"],
            "tiles_per_cpu_s": best["tiles"] / best["cpu_s"],
        }
        log(f"  context_scale {scale}: {out[f'context_{scale}']['tiles_per_s']:.0f} tiles/s")
    out["cost_ratio"] = out["context_1"]["tiles_per_s"] / out["context_3"]["tiles_per_s"]
    out["cost_ratio_cpu"] = out["context_1"]["tiles_per_cpu_s"] / out["context_3"]["tiles_per_cpu_s"]
    return out

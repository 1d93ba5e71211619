"""``cpu.py --parts descriptors``: the whole-slide cost of blending in the tissue descriptors.

The shipped demo model (``quick`` preset) on a synthetic pyramidal JPEG slide, once as a retrieval-only bundle
and once finished with tissue descriptors (fitted on the demo's training spots, blend weight forced to 0.5 so
the blend runs whatever weight the held-out choice gives), runs interleaved; tiles per second (and per
CPU-second) of each and the ratio (goal ≤ 2×: each tile is then read 3× wider and described on the CPU).
"""

from __future__ import annotations

import time
from pathlib import Path

from napari_mclstexp.predict.options import PredictOptions


def bench_descriptors(s: dict, work: Path, log) -> dict:
    from gpu_infer import synthetic_slide

    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.io.wsi_write import write_pyramid_tiff
    from napari_mclstexp.predict.slide import predict_whole_slide
    from napari_mclstexp.progress import run
    from napari_mclstexp.workflows.demo import load_demo_sample, sample_data_dir, split_demo_sample
    from napari_mclstexp.workflows.reliability import iter_finish_bundle

    plain = load_bundle(sample_data_dir() / "demo_quick.mclst")
    both = load_bundle(sample_data_dir() / "demo_quick.mclst")
    both.config["descriptors"] = True
    train_part = split_demo_sample(load_demo_sample())[0]
    t0 = time.perf_counter()
    run(iter_finish_bundle(both, [train_part], device="cpu"))
    finish_s = time.perf_counter() - t0
    chosen = both.metadata["descriptors"]["weight"]
    both.metadata["descriptors"]["weight"] = 0.5
    slide = write_pyramid_tiff(work / "desc_slide.ome.tif", synthetic_slide(s["slide_px"]), mpp=1.0)
    out: dict = {"slide_px": s["slide_px"], "finish_s": finish_s, "chosen_weight": chosen, "runs": {}}
    for _ in range(2):
        for name, bundle, on in (("retrieval", plain, False), ("descriptors", both, True)):
            t0, c0 = time.perf_counter(), time.process_time()
            pred = run(predict_whole_slide(bundle, slide, PredictOptions(device="cpu", descriptors=on)))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            out["runs"].setdefault(name, []).append({"tiles": int(pred.n_obs), "seconds": wall, "cpu_s": cpu})
    for name, runs in out["runs"].items():
        best = min(runs, key=lambda r: r["seconds"])
        out[name] = {"tiles_per_s": best["tiles"] / best["seconds"], "tiles_per_cpu_s": best["tiles"] / best["cpu_s"]}
        log(f"  {name}: {out[name]['tiles_per_s']:.0f} tiles/s")
    out["cost_ratio"] = out["retrieval"]["tiles_per_s"] / out["descriptors"]["tiles_per_s"]
    out["cost_ratio_cpu"] = out["retrieval"]["tiles_per_cpu_s"] / out["descriptors"]["tiles_per_cpu_s"]
    return out

"""``cpu.py --parts descriptors``: the whole-slide cost of blending in the tissue descriptors.

The shipped demo model (``quick`` preset) on a synthetic pyramidal JPEG slide of at least 2,000 tiles
(``--desc-slide-px``, default 12,288 px in full, ``slide_px`` with ``--tiny``; at ``--desc-mpp`` µm/px,
default 1; issue 31's case is 16,384 px at 0.5, 1,369 of the demo model's 448 px tiles; 20,480 px gives
2,000 and more), three bundles run alternately in one warm process (a first pass of each is not counted, then
``--desc-rounds`` timed rounds, default 2): retrieval only (``off``); finished with tissue descriptors as
``train`` finishes them now (``on``: version 2, the reading threads describe each block from its read, each
pixel once); and the same trees on version-1 descriptors (``on_v1``: each tile read 3× wider at the input
resolution and described alone, what bundles made before version 2 still run).  The blend weight is forced to
0.5 so the blend runs whatever the held-out choice gives.  Per bundle: tiles per second (best of the timed
rounds) and per CPU-second; ``cost_ratio`` = time on / time off (goal ≤ 1.3; also the median of the rounds'
paired ratios, ``cost_ratio_paired_median``: the machine's load drifts), ``cost_ratio_v1`` the same for
version 1, ``speedup_vs_v1`` = on's tiles/s over on_v1's.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

from napari_mclstexp.predict.options import PredictOptions


def bench_descriptors(s: dict, work: Path, log) -> dict:
    import numpy as np

    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.data.descriptors import iter_sample_descriptors
    from napari_mclstexp.io.wsi_write import write_pyramid_tiff
    from napari_mclstexp.predict.slide import predict_whole_slide
    from napari_mclstexp.predict.spots import patch_px_for
    from napari_mclstexp.progress import run
    from napari_mclstexp.sample import microns_per_pixel
    from napari_mclstexp.workflows.demo import load_demo_sample, sample_data_dir, split_demo_sample
    from napari_mclstexp.workflows.reliability import iter_finish_bundle

    from .gpu_infer import synthetic_slide

    plain = load_bundle(sample_data_dir() / "demo_quick.mclst")
    both = load_bundle(sample_data_dir() / "demo_quick.mclst")
    both.config["descriptors"] = True
    train_part = split_demo_sample(load_demo_sample())[0]
    if s.get("desc_train_spots"):  # --tiny: the trees and their calibration from fewer spots (seconds)
        keep = np.random.default_rng(0).choice(train_part.n_obs, s["desc_train_spots"], replace=False)
        train_part = train_part[np.sort(keep)].copy()
    t0 = time.perf_counter()
    run(iter_finish_bundle(both, [train_part], device="cpu"))
    finish_s = time.perf_counter() - t0
    chosen = both.metadata["descriptors"]["weight"]
    both.metadata["descriptors"]["weight"] = 0.5
    old = copy.copy(both)  # the same bundle with its bank described by version 1
    old.__dict__.pop("_descriptor_model", None)
    old.metadata = {**both.metadata, "descriptors": {**both.metadata["descriptors"], "version": 1}}
    crop = patch_px_for(both, microns_per_pixel(train_part))
    old.descriptors = run(iter_sample_descriptors(train_part, crop, both.config["input_px"], version=1))
    edge = int(s.get("desc_slide_px", 12288 if s["slide_px"] >= 4096 else s["slide_px"]))
    mpp = float(s.get("desc_mpp", 1.0))
    slide = write_pyramid_tiff(work / "desc_slide.ome.tif", synthetic_slide(edge), mpp=mpp)
    out: dict = {
        "slide_px": edge,
        "slide_mpp": mpp,
        "finish_s": finish_s,
        "chosen_weight": chosen,
        "load_avg_start": os.getloadavg()[0],
        "runs": {},
    }
    cases = (("off", plain, False), ("on", both, True), ("on_v1", old, True))
    for round_ in range(int(s.get("desc_rounds", 3))):  # round 0 warms every path up (trees, threads, caches)
        for name, bundle, on in cases:
            t0, c0 = time.perf_counter(), time.process_time()
            pred = run(predict_whole_slide(bundle, slide, PredictOptions(device="cpu", descriptors=on)))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            if round_:
                out["runs"].setdefault(name, []).append({"tiles": int(pred.n_obs), "seconds": wall, "cpu_s": cpu})
            log(f"  round {round_} {name}: {pred.n_obs} tiles in {wall:.1f} s")
    for name, runs in out["runs"].items():
        best = min(runs, key=lambda r: r["seconds"])
        out[name] = {"tiles_per_s": best["tiles"] / best["seconds"], "tiles_per_cpu_s": best["tiles"] / best["cpu_s"]}
        log(f"  {name}: {out[name]['tiles_per_s']:.0f} tiles/s")
    out["tiles"] = out["runs"]["on"][0]["tiles"]
    out["cost_ratio"] = out["off"]["tiles_per_s"] / out["on"]["tiles_per_s"]
    out["cost_ratio_cpu"] = out["off"]["tiles_per_cpu_s"] / out["on"]["tiles_per_cpu_s"]
    out["cost_ratio_v1"] = out["off"]["tiles_per_s"] / out["on_v1"]["tiles_per_s"]
    out["speedup_vs_v1"] = out["on"]["tiles_per_s"] / out["on_v1"]["tiles_per_s"]
    # paired per round (the machine's load drifts): median over rounds of time on / time off
    pairs = [a["seconds"] / b["seconds"] for a, b in zip(out["runs"]["on"], out["runs"]["off"], strict=True)]
    out["cost_ratio_paired_median"] = float(np.median(pairs))
    out["load_avg_end"] = os.getloadavg()[0]
    return out

"""One GPU speed benchmark, under 5 minutes: our training, the reference's, whole-slide inference.

Measured in one run on one device (each part guarded; the JSON is rewritten after every part):

``trunk``
    DenseNet-121 trunk alone, bf16 autocast + channels_last (cuDNN autotuned), forward + backward on
    random images: the ceiling our training can approach; on CUDA also the same step replayed from a
    CUDA graph at the training batch.
``train``
    ``napari_mclstexp.train.trainer.train`` as shipped (the paper model — DenseNet-121, spot
    Transformer over the batch, 256-d heads, hard CLIP loss, Adam — with our pipeline: uint8 patches
    cached once, device augmentation, bf16, channels_last, data-sized position tables) on synthetic
    sections; steady-state spots/s from the trainer's per-step events, warm-up excluded.
``reference``
    ``reference_pipeline.benchmark_reference``: fp32, per-sample PIL crop + torchvision transforms in
    the main process, 2 × 65,536-row tables.
``infer``
    ``predict.slide.predict_whole_slide`` on a synthetic pyramidal OME-TIFF against a ~30k-spot bank,
    after a warm-up call on a small slide: predicted patches / wall-clock s (reading, tissue
    detection, encoding, retrieval and assembly included); then tile reading alone, for diagnosis.
``train_eager``
    (last) the same trainer with ``cuda_graph=False``: what replaying the step from a CUDA graph gains.
``vit``
    (only with ``--parts ...,vit``; needs timm) frozen feature extraction with ViT-L/16 and ViT-g/14 at
    224 px, bf16, random weights (``gpu_vit.py``): the foundation-model encoders' cost.
``direct``
    (only with ``--parts ...,direct``) the trainer's building blocks in a bare loop with cuDNN autotuning and
    GPU-resident patches: shows how much the trainer itself costs.

Usage: ``PYTHONUNBUFFERED=1 python -m benchmarks gpu [--budget-s 270] [--compile] [--tiny]``.
On a machine without CUDA ``--tiny`` is implied (tiny sizes, proves the script runs end to end).
Writes ``benchmarks/results/gpu-<card>-<date>.json`` (keys ``device``, ``train_spots_per_s``,
``reference_spots_per_s``, ``infer_patches_per_s``, ``peak_mem_gb``, ``details``, ...).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import multiprocessing
import re
import shutil
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from .gpu_infer import part_infer, write_slides
from .gpu_parts import (
    log,
    make_train_samples,
    part_direct,
    part_reference,
    part_train,
    part_trunk,
    peak_gb,
    reset_peak,
)
from .gpu_vit import part_vit

HERE = Path(__file__).resolve().parent

#: Sizes per mode.  Full: HER2+ panel (785 genes), batch 128, 224 px; tiny: seconds on a CPU.
SIZES = {
    "full": dict(
        n_genes=785,
        batch=128,
        patch_px=224,
        train_image_px=1536,
        train_spacing_px=13.0,
        train_sections=2,
        trunk_batches=(128, 256),
        trunk_s=8.0,
        train_s=50.0,
        train_eager_s=30.0,
        ref_s=30.0,
        ref_image_px=4096,
        slide_px=16384,
        warm_slide_px=2048,
        step_px=112,
        bank_spots=30000,
        infer_s=25.0,
        direct_s=15.0,
        direct_spots=8192,
    ),
    "tiny": dict(
        n_genes=16,
        batch=8,
        patch_px=32,
        train_image_px=192,
        train_spacing_px=24.0,
        train_sections=2,
        trunk_batches=(8,),
        trunk_s=1.0,
        train_s=3.0,
        train_eager_s=2.0,
        ref_s=1.5,
        ref_image_px=256,
        slide_px=512,
        warm_slide_px=128,
        step_px=32,
        bank_spots=2000,
        infer_s=1.0,
        direct_s=1.0,
        direct_spots=64,
        ref_spots=96,
    ),
}
#: Seconds kept for the parts after ``train`` (reference, infer, margins).
RESERVE_AFTER_TRAIN = {"full": 120.0, "tiny": 8.0}


def card_name(dev: torch.device) -> str:
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"


def write_json(path: Path, report: dict) -> None:
    from napari_mclstexp.atomic import atomic_write_path

    with atomic_write_path(path) as tmp:
        tmp.write_text(json.dumps(report, indent=1, default=float))


def summarise(report: dict, s: dict) -> None:
    d = report["details"]
    report["train_spots_per_s"] = d.get("train", {}).get("spots_per_s")
    report["reference_spots_per_s"] = d.get("reference", {}).get("spots_per_s")
    report["infer_patches_per_s"] = d.get("infer", {}).get("patches_per_s")
    # Our product's pipeline only (train, infer); every part's own peak is in its details.
    peaks = [d[k].get("peak_mem_gb") for k in ("train", "infer") if k in d]
    peaks = [p for p in peaks if p is not None]
    report["peak_mem_gb"] = max(peaks) if peaks else None
    report["train_eager_spots_per_s"] = d.get("train_eager", {}).get("spots_per_s")
    report["train_step_mode"] = d.get("train", {}).get("step_mode")
    report["vit_patches_per_s"] = {k: v["patches_per_s"] for k, v in d.get("vit", {}).get("models", {}).items()} or None
    tr, ref = report["train_spots_per_s"], report["reference_spots_per_s"]
    trunk = d.get("trunk", {}).get("images_per_s", {}).get(str(s["batch"]))
    report["speedup_vs_reference"] = tr / ref if tr and ref else None
    report["train_fraction_of_trunk"] = tr / trunk if tr and trunk else None
    if not report["tiny"]:
        inf = report["infer_patches_per_s"]
        report["goals"] = {
            "train_ge_2200": bool(tr and tr >= 2200),
            "train_ge_85pct_trunk": bool(tr and trunk and tr >= 0.85 * trunk),
            "train_ge_5x_reference": bool(tr and ref and tr >= 5 * ref),
            "infer_ge_8000": bool(inf and inf >= 8000),
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget-s", type=float, default=270.0, help="total wall-clock budget (s)")
    p.add_argument("--device", default="auto", help="auto, cuda, cuda:K or cpu")
    p.add_argument("--tiny", action="store_true", help="tiny sizes (implied without CUDA)")
    p.add_argument("--compile", action="store_true", help="torch.compile the image encoder (trunk, direct)")
    p.add_argument(
        "--parts",
        default="trunk,train,reference,infer,train_eager",
        help="comma-separated parts, in order (also: vit, direct)",
    )
    p.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON")
    p.add_argument("--tag", default="", help="appended to the JSON's name (e.g. compile), so runs do not overwrite")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: 1 in tiny mode, as OpenMP spinning on shared cores costs 10x)",
    )
    args = p.parse_args(argv)
    t_begin = time.perf_counter()
    from napari_mclstexp.device import resolve_device

    dev = resolve_device(args.device)
    tiny = args.tiny or dev.type != "cuda"
    mode = "tiny" if tiny else "full"
    if args.threads or tiny:
        torch.set_num_threads(args.threads or 1)
    s = SIZES[mode]
    card = card_name(dev)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", card + (f" {args.tag}" if args.tag else "")).strip("-") + (
        "-tiny" if tiny else ""
    )
    out = args.out / f"gpu-{slug}-{dt.date.today().isoformat()}.json"
    report = {
        "device": card,
        "train_spots_per_s": None,
        "reference_spots_per_s": None,
        "infer_patches_per_s": None,
        "peak_mem_gb": None,
        "tiny": tiny,
        "budget_s": args.budget_s,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": sys.version.split()[0],
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "sizes": s,
        "compile": bool(args.compile),
        "details": {},
        "errors": {},
    }
    log(f"device {card} ({dev}), mode {mode}, budget {args.budget_s:.0f} s, torch {torch.__version__}")
    messages = report["engine_log"] = []  # CUDA-graph captures and fallbacks of the engine
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: (messages.append(record.getMessage()), log(f"  engine: {record.getMessage()}"))
    logging.getLogger("napari_mclstexp").addHandler(handler)
    logging.getLogger("napari_mclstexp").setLevel(logging.INFO)
    work = Path(tempfile.mkdtemp(prefix="mclstexp-bench-"))

    def left() -> float:
        return args.budget_s - (time.perf_counter() - t_begin)

    # CPU-only preparation runs in background processes while the GPU measures (no GIL sharing).
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    t_prep = time.perf_counter()
    wanted = [w.strip() for w in args.parts.split(",") if w.strip()]
    futures = {}
    if {"train", "infer"} & set(wanted):
        futures["samples"] = pool.submit(make_train_samples, s, work)
    if "infer" in wanted:
        futures["slides"] = pool.submit(write_slides, s, work)

    def prepared(key: str):
        fut = futures[key]
        if not fut.done():
            log(f"  waiting for background preparation of {key}")
        value = fut.result()
        if key == "samples" and "logged" not in futures:
            futures["logged"] = True
            log(
                f"  synthetic sections: {sum(a.n_obs for a in value)} spots "
                f"(ready {time.perf_counter() - t_prep:.0f} s after start)"
            )
        return value

    def samples() -> list:
        return prepared("samples")

    parts = {
        "trunk": lambda: part_trunk(dev, s, args),
        "train": lambda: part_train(
            dev, s, args, samples(), max(s["train_s"] / 5, min(s["train_s"], left() - RESERVE_AFTER_TRAIN[mode]))
        ),
        "train_eager": lambda: part_train(
            dev,
            s,
            args,
            samples(),
            max(s["train_s"] / 5, min(s["train_eager_s"], left() - 20.0 * (not tiny))),
            cuda_graph=False,
        ),
        "reference": lambda: part_reference(dev, s, max(s["ref_s"] / 3, min(s["ref_s"], left() - 60.0 * (not tiny)))),
        "infer": lambda: part_infer(
            dev,
            s,
            samples(),
            lambda: prepared("slides"),
            max(0.0, min(s["infer_s"], left() - 25.0 * (not tiny))),
            hard_limit_s=max(10.0, left() - 40.0 * (not tiny)),
        ),
        "vit": lambda: part_vit(dev, tiny, max(1.0, min(10.0 if not tiny else 1.0, (left() - 10.0) / 4)), log),
        "direct": lambda: part_direct(dev, s, args, max(1.0, min(s["direct_s"], left() - 5.0))),
    }
    for name in wanted:
        if name not in parts:
            p.error(f"unknown part {name!r}; choose from {', '.join(parts)}")
        if left() < (2.0 if tiny else 15.0):
            log(f"{name}: skipped, budget spent")
            report["errors"][name] = "skipped: budget spent"
            continue
        log(f"{name}: start ({left():.0f} s left)")
        reset_peak(dev)
        t = time.perf_counter()
        try:
            result = parts[name]()
            result["peak_mem_gb"] = peak_gb(dev)
            result["part_s"] = time.perf_counter() - t
            report["details"][name] = result
            log(f"{name}: done in {result['part_s']:.1f} s, peak {result['peak_mem_gb'] or 0:.1f} GB")
        except Exception as err:  # one failing part must not lose the others
            report["errors"][name] = "".join(traceback.format_exception(type(err), err, err.__traceback__))[-4000:]
            log(f"{name}: FAILED: {type(err).__name__}: {err}")
        finally:
            if dev.type == "cuda":
                torch.cuda.empty_cache()
        summarise(report, s)
        report["elapsed_s"] = time.perf_counter() - t_begin
        write_json(out, report)
    pool.shutdown(cancel_futures=True)
    shutil.rmtree(work, ignore_errors=True)
    summarise(report, s)
    report["elapsed_s"] = time.perf_counter() - t_begin
    write_json(out, report)
    keys = (
        "device",
        "train_spots_per_s",
        "train_step_mode",
        "train_eager_spots_per_s",
        "reference_spots_per_s",
        "infer_patches_per_s",
        "peak_mem_gb",
        "speedup_vs_reference",
        "train_fraction_of_trunk",
        "vit_patches_per_s",
        "goals",
    )
    log("summary: " + json.dumps({k: report.get(k) for k in keys}, default=float))
    log(f"wrote {out} in {report['elapsed_s']:.0f} s")
    return 0 if not report["errors"] else 1

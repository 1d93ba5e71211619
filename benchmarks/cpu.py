"""CPU speed figures (``make bench``): patch pipeline, quick preset's time to a model, whole-slide speed.

``patch_pipeline``
    Training patches per second on the CPU, three ways:

    * ``pil_per_sample`` — the reference code's loader: per-sample PIL crop of a 224 px patch from the
      full slide + ``ColorJitter(.5, .5, .5)``, ``RandomHorizontalFlip``, ``RandomRotation(180)``,
      ``ToTensor`` (``reference_pipeline.ReferenceDataset``);
    * ``cached_tensor_paper`` — what the trainer does: uint8 patches extracted once (cached), a batch
      gathered by index, converted to float and augmented as a tensor with the same transforms
      (``data.augment.augment_batch``: jitter .5, flips, rotation 180°);
    * ``cached_tensor_default`` — the same with the ``default`` preset's augmentation (flips, 90°
      rotations, jitter .2);
    * ``cached_tensor_quick_64px`` — what the CPU trainer pays with the ``quick`` preset (64 px inputs,
      flips, 90° rotations, jitter .1).

    Plus ``extract_once`` — the one-off cost of cutting the patches out of the slide
    (``data.patches.extract_patches``).
``quick_preset``
    Wall-clock seconds from synthetic samples on disk to a bundle with the ``quick`` preset
    (patches, training, reference bank), and the held-out ACG of that bundle (sanity: it learned).
``whole_slide``
    ``predict.slide.predict_whole_slide`` with the shipped demo model (``quick`` preset) on a synthetic
    pyramidal JPEG slide, tiles touching: tiles/s without and with test-time augmentation (what a
    pathologist without a GPU waits for).
``context``
    The whole-slide cost of context views: the same model shape with ``context_scale`` 1 and 3
    (untrained weights), interleaved runs; tiles/s of each and the ratio (goal ≤ 2×; ``cpu_context.py``).
``descriptors``
    The same for blending in the tissue descriptors (``cpu_descriptors.py``).

``compile``
    The ``quick`` preset's training with and without ``torch.compile`` of the image encoder
    (``TrainConfig.compile``), interleaved runs on the same synthetic sections: seconds per epoch
    after the first, and the first epoch's extra seconds (compiling, with an empty inductor cache).

Every rate is also given per CPU-second of this process (``*_cpu_s``), which stays meaningful when
other processes share the cores (the load average at start and end is recorded).
Writes ``benchmarks/results/cpu-<date>.json``.  ``--tiny`` shrinks everything (used by the tests).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_mclstexp.predict.options import PredictOptions

HERE = Path(__file__).resolve().parent

SIZES = {
    "full": dict(
        patch_px=224,
        batch=128,
        n_patches=1024,
        pil_patches=384,
        image_px=2048,
        quick_image_px=512,
        quick_sections=3,
        quick_epochs=None,
        slide_px=4096,
        compile_epochs=6,
        desc_train_spots=None,
    ),
    "tiny": dict(
        patch_px=64,
        batch=16,
        n_patches=64,
        pil_patches=32,
        image_px=256,
        quick_image_px=256,
        quick_sections=3,
        quick_epochs=2,
        slide_px=768,
        compile_epochs=2,
        desc_train_spots=240,
    ),
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def bench_pil(s: dict) -> dict:
    """Reference loader: per-sample PIL crop + torchvision transforms, patches/s."""
    from .reference_pipeline import ReferenceDataset, make_reference_data

    data = make_reference_data(s["pil_patches"], 8, image_px=s["image_px"], seed=0)
    ds = ReferenceDataset(data, s["patch_px"])
    ds[0]
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(len(ds)):
        item = ds[i]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert item["image"].shape == (3, s["patch_px"], s["patch_px"])
    return {
        "patches_per_s": len(ds) / wall,
        "patches_per_cpu_s": len(ds) / cpu,
        "ms_per_patch": 1e3 * wall / len(ds),
        "patches": len(ds),
    }


def bench_tensor(
    s: dict, patches: torch.Tensor, *, rotate_deg: float, rot90: bool, jitter: tuple[float, float, float]
) -> dict:
    """Cached uint8 patches → batch by index → float → ``augment_batch``, patches/s."""
    from napari_mclstexp.data.augment import augment_batch

    gen = torch.Generator().manual_seed(0)
    n, b = len(patches), s["batch"]

    def batch() -> torch.Tensor:
        idx = torch.randint(0, n, (b,), generator=gen)
        x = patches[idx].permute(0, 3, 1, 2).float().div_(255.0)
        return augment_batch(x, flips=True, rot90=rot90, rotate_deg=rotate_deg, jitter=jitter, generator=gen)

    batch()
    t0, c0, done = time.perf_counter(), time.process_time(), 0
    while done < n or time.perf_counter() - t0 < 1.0:
        out = batch()
        done += b
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert out.shape == (b, 3, s["patch_px"], s["patch_px"]) and 0.0 <= float(out.min()) <= float(out.max()) <= 1.0
    return {
        "patches_per_s": done / wall,
        "patches_per_cpu_s": done / cpu,
        "ms_per_patch": 1e3 * wall / done,
        "patches": done,
        "batch": b,
        "rotate_deg": rotate_deg,
        "rot90": rot90,
        "jitter": list(jitter),
    }


def bench_patch_pipeline(s: dict, work: Path) -> dict:
    from napari_mclstexp.data.patches import extract_patches
    from napari_mclstexp.sample import image_path, spot_xy
    from napari_mclstexp.synthetic import make_synthetic_sample

    adata = make_synthetic_sample(
        work,
        image_px=(s["image_px"], s["image_px"]),
        spot_spacing_px=s["image_px"] / np.sqrt(s["n_patches"]) * 0.93,
        n_genes=8,
        section="PATCHES",
    )
    xy = spot_xy(adata)
    t0 = time.perf_counter()
    cached = extract_patches(image_path(adata), xy, s["patch_px"])
    extract = time.perf_counter() - t0
    log(f"  extract once: {len(xy) / extract:.0f} patches/s ({len(xy)} patches)")
    pil = bench_pil(s)
    log(f"  per-sample PIL: {pil['patches_per_s']:.0f} patches/s ({pil['ms_per_patch']:.2f} ms/patch)")
    patches = torch.from_numpy(cached)
    paper = bench_tensor(s, patches, rotate_deg=180.0, rot90=False, jitter=(0.5, 0.5, 0.5))
    log(f"  cached + tensor augmentation (paper transforms): {paper['patches_per_s']:.0f} patches/s")
    default = bench_tensor(s, patches, rotate_deg=0.0, rot90=True, jitter=(0.2, 0.2, 0.2))
    log(f"  cached + tensor augmentation (default preset): {default['patches_per_s']:.0f} patches/s")
    small = (
        torch.nn.functional.interpolate(
            patches.permute(0, 3, 1, 2).float(), size=(64, 64), mode="bilinear", antialias=True
        )
        .round_()
        .clamp_(0, 255)
        .byte()
        .permute(0, 2, 3, 1)
    )
    quick = bench_tensor({**s, "patch_px": 64}, small.contiguous(), rotate_deg=0.0, rot90=True, jitter=(0.1, 0.1, 0.1))
    log(f"  cached 64 px + tensor augmentation (quick preset): {quick['patches_per_s']:.0f} patches/s")
    return {
        "patch_px": s["patch_px"],
        "cached_tensor_quick_64px": quick,
        "extract_once": {"patches_per_s": len(xy) / extract, "patches": len(xy)},
        "pil_per_sample": pil,
        "cached_tensor_paper": paper,
        "cached_tensor_default": default,
        "speedup_paper_transforms": paper["patches_per_s"] / pil["patches_per_s"],
        "speedup_default": default["patches_per_s"] / pil["patches_per_s"],
    }


def bench_quick(s: dict, work: Path) -> dict:
    """Quick preset: synthetic sections → trained bundle; ACG on a held-out synthetic section."""
    from napari_mclstexp.analysis.metrics import evaluate
    from napari_mclstexp.bundle import make_bundle
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.predict.spots import predict_at_spots
    from napari_mclstexp.progress import run
    from napari_mclstexp.synthetic import make_synthetic_sample
    from napari_mclstexp.train.trainer import train

    px = s["quick_image_px"]
    samples = [
        make_synthetic_sample(work / "quick", image_px=(px, px), seed=i, section=f"Q{i}", patient=f"P{i}")
        for i in range(s["quick_sections"] + 1)
    ]
    held_out, train_set = samples[-1], samples[:-1]
    cfg = get_preset("quick")
    if s["quick_epochs"] is not None:
        cfg = cfg.replace(epochs=s["quick_epochs"])
    t0, c0 = time.perf_counter(), time.process_time()
    result = run(train(train_set, cfg, device="cpu"))
    t_train = time.perf_counter() - t0
    bundle = make_bundle(result, train_set, "cpu")
    t_model, cpu_model = time.perf_counter() - t0, time.process_time() - c0
    log(f"  quick preset: model in {t_model:.1f} s ({sum(a.n_obs for a in train_set)} spots, {cfg.epochs} epochs)")
    pred = run(predict_at_spots(bundle, held_out, PredictOptions(device="cpu")))
    metrics = evaluate(pred, held_out)
    log(f"  quick preset: held-out ACG {metrics['acg']:.3f}")
    return {
        "time_to_model_s": t_model,
        "time_to_model_cpu_s": cpu_model,
        "train_s": t_train,
        "epochs": cfg.epochs,
        "train_spots": int(sum(a.n_obs for a in train_set)),
        "n_genes": len(bundle.genes),
        "image_px": px,
        "held_out_acg": float(metrics["acg"]),
        "held_out_heg50": float(metrics["heg50"]),
        "final_loss": float(result.history[-1]["loss"]) if result.history else None,
    }


def bench_slide(s: dict, work: Path) -> dict:
    """Whole-slide prediction on the CPU with the demo bundle: tiles/s, TTA off and on."""
    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.io.wsi_write import write_pyramid_tiff
    from napari_mclstexp.predict.slide import predict_whole_slide
    from napari_mclstexp.progress import run
    from napari_mclstexp.workflows.demo import sample_data_dir

    from .gpu_infer import synthetic_slide

    bundle = load_bundle(sample_data_dir() / "demo_quick.mclst")
    slide = write_pyramid_tiff(work / "cpu_slide.ome.tif", synthetic_slide(s["slide_px"]), mpp=1.0)
    out: dict = {
        "slide_px": s["slide_px"],
        "preset": bundle.config.get("preset"),
        "input_px": int(bundle.config["input_px"]),
        "bank_spots": len(bundle.bank),
    }
    for tta in (False, True):
        t0, c0 = time.perf_counter(), time.process_time()
        pred = run(predict_whole_slide(bundle, slide, PredictOptions(device="cpu", tta=tta)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        key = "tta" if tta else "no_tta"
        out[key] = {
            "tiles": int(pred.n_obs),
            "seconds": wall,
            "tiles_per_s": pred.n_obs / wall,
            "tiles_per_cpu_s": pred.n_obs / max(cpu, 1e-9),
        }
        log(
            f"  whole slide {s['slide_px']} px, TTA {'on' if tta else 'off'}: {pred.n_obs} tiles in {wall:.1f} s "
            f"= {pred.n_obs / wall:.0f} tiles/s"
        )
    out["tta_cost"] = out["tta"]["seconds"] / out["no_tta"]["seconds"]
    return out


def bench_compile(s: dict, work: Path) -> dict:
    """Quick preset training eager vs ``torch.compile``-d encoder: s/epoch after the first, compile cost."""
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.progress import run
    from napari_mclstexp.synthetic import make_synthetic_sample
    from napari_mclstexp.train.trainer import train

    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(work / "inductor")  # an honest first compile
    px = s["quick_image_px"]
    samples = [
        make_synthetic_sample(work / "compile", image_px=(px, px), seed=i, section=f"C{i}", patient=f"P{i}")
        for i in range(s["quick_sections"])
    ]
    cfg = get_preset("quick").replace(epochs=s["compile_epochs"])
    runs: dict[str, list[dict]] = {"eager": [], "compiled": []}
    for _ in range(2):  # interleaved: a busy moment on a shared machine hits both
        for key in ("eager", "compiled"):
            result = run(train(samples, cfg.replace(compile=key == "compiled"), device="cpu"))
            if result.compiled != (key == "compiled"):
                raise RuntimeError("torch.compile fell back to eager; see the log")
            h = result.history
            runs[key].append(
                {
                    "first_epoch_s": h[0]["seconds"],
                    "epoch_s": float(np.median([e["seconds"] for e in h[1:]])),
                    "final_loss": h[-1]["loss"],
                }
            )
    out: dict = {"epochs": cfg.epochs, "train_spots": int(sum(a.n_obs for a in samples)), "runs": runs}
    for key, rs in runs.items():
        out[f"{key}_epoch_s"] = min(r["epoch_s"] for r in rs)
    out["compile_first_epoch_extra_s"] = runs["compiled"][0]["first_epoch_s"] - runs["eager"][0]["first_epoch_s"]
    out["speedup"] = out["eager_epoch_s"] / out["compiled_epoch_s"]
    log(
        f"  compile: {out['eager_epoch_s']:.2f} s/epoch eager vs {out['compiled_epoch_s']:.2f} compiled "
        f"(x{out['speedup']:.2f}); first compile +{out['compile_first_epoch_extra_s']:.1f} s"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    from .cpu_context import bench_context
    from .cpu_descriptors import bench_descriptors

    p = argparse.ArgumentParser(
        description="CPU speed figures: patch pipeline, quick-preset time to a model, whole-slide prediction"
    )
    p.add_argument("--tiny", action="store_true", help="tiny sizes (seconds; for tests)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--parts", default="patches,quick,slide,compile")
    p.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON")
    p.add_argument("--desc-slide-px", type=int, default=None, help="descriptors part: slide edge in px")
    p.add_argument("--desc-mpp", type=float, default=None, help="descriptors part: slide µm/px (default 1.0)")
    p.add_argument(
        "--desc-rounds", type=int, default=None, help="descriptors part: timed rounds of the three bundles (default 2)"
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    s = dict(SIZES["tiny" if args.tiny else "full"])
    if args.desc_slide_px:
        s["desc_slide_px"] = args.desc_slide_px
    if args.desc_mpp:
        s["desc_mpp"] = args.desc_mpp
    if args.desc_rounds:
        s["desc_rounds"] = args.desc_rounds + 1  # and the warm-up round
    from napari_mclstexp.atomic import atomic_write_path

    report = {
        "device": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "tiny": args.tiny,
        "load_avg_start": os.getloadavg()[0],
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "errors": {},
    }
    work = Path(tempfile.mkdtemp(prefix="mclstexp-cpubench-"))
    parts = {
        "patches": ("patch_pipeline", bench_patch_pipeline),
        "quick": ("quick_preset", bench_quick),
        "slide": ("whole_slide", bench_slide),
        "context": ("whole_slide_context", lambda s, work: bench_context(s, work, log)),
        "descriptors": ("whole_slide_descriptors", lambda s, work: bench_descriptors(s, work, log)),
        "compile": ("compile", bench_compile),
    }
    for name in [w.strip() for w in args.parts.split(",") if w.strip()]:
        key, fn = parts[name]
        log(f"{key}: start")
        try:
            report[key] = fn(s, work)
        except Exception as err:  # keep the other figures
            report["errors"][key] = f"{type(err).__name__}: {err}"
            log(f"{key}: FAILED: {type(err).__name__}: {err}")
    report["load_avg_end"] = os.getloadavg()[0]
    out = args.out / f"cpu{'-tiny' if args.tiny else ''}-{dt.date.today().isoformat()}.json"
    with atomic_write_path(out) as tmp:
        tmp.write_text(json.dumps(report, indent=1, default=float))
    log(f"wrote {out}")
    return 0 if not report["errors"] else 1

"""Visium HD at full scale on the CPU: import, raster gene switch, bin training and prediction (JSON).

Parts (each measured in its own process so peak memory is that part's alone):

- ``write``: a synthetic 6.7 mm section, ~700,000 in-tissue 8 µm bins (``--bins``), ``--genes`` genes,
  in Space Ranger's layout (gzip HDF5 matrix, parquet positions).  Not timed against a target.
- ``import``: :func:`read_visium_hd` of that section: seconds and peak RSS (target ≤ 60 s, ≤ 4 GB).
- ``switch``: one gene switch of the raster (column read from a CSC copy + scatter into the raster
  image), the engine work the viewer does; median over genes, ms (target ≤ 15 ms).  The one-off CSC
  copy is reported apart.  napari's own upload/redraw is not included (see ``benchmarks/viewer.py``).
- ``predict``: predictions at bins with the shipped quick bundle on a smaller section that has an H&E
  image (a 700k-bin image would take ~0.5 GB to render here): bins/s, extrapolated to ``--bins``.
- ``train``: one epoch of :func:`train_on_bins` (``--bins-per-epoch``) on that section: seconds, peak RSS.

Usage: ``python -m benchmarks visium-hd [--out hd.json] [--bins 700000] [--genes 200]`` (default output
``benchmarks/results/visium-hd-cpu-<date>.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np

from napari_mclstexp.predict.options import PredictOptions

ROOT = Path(__file__).resolve().parents[1]


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def part_write(work: Path, n_bins: int, n_genes: int) -> dict:
    from napari_mclstexp.synthetic.visium_hd import HDGeometry, write_visium_hd

    cover = 0.85
    side = int(math.ceil(math.sqrt(n_bins / cover)))
    t0 = time.perf_counter()
    write_visium_hd(
        work / "HD",
        n_rows=side,
        n_cols=side,
        bins=(8,),
        n_genes=n_genes,
        tissue_cover=cover,
        geometry=HDGeometry(0.2737, (500.0, 500.0), 0.3),
        chunk_rows=48,
        seed=0,
    )
    size = sum(p.stat().st_size for p in (work / "HD").rglob("*") if p.is_file())
    return {
        "grid": [side, side],
        "capture_mm": side * 8 / 1000,
        "seconds": time.perf_counter() - t0,
        "folder_mb": size / 1e6,
        "peak_rss_gb": _rss_gb(),
    }


def part_import(work: Path) -> dict:
    from napari_mclstexp.io.visium_hd import read_visium_hd

    t0 = time.perf_counter()
    adata = read_visium_hd(work / "HD", 8)
    seconds = time.perf_counter() - t0
    return {
        "bins": int(adata.n_obs),
        "genes": int(adata.n_vars),
        "nnz": int(adata.X.nnz),
        "seconds": seconds,
        "peak_rss_gb": _rss_gb(),
        "target_seconds": 60,
        "target_peak_gb": 4,
    }


def part_switch(work: Path) -> dict:
    from napari_mclstexp.io.visium_hd import read_visium_hd
    from napari_mclstexp.raster import BinRaster, GeneColumns

    adata = read_visium_hd(work / "HD", 8)
    t0 = time.perf_counter()
    raster = BinRaster.from_adata(adata)
    cols = GeneColumns(adata)
    cols(adata.var_names[0])  # first use: the CSC copy
    setup_ms = 1e3 * (time.perf_counter() - t0)
    times = []
    for gene in adata.var_names[1:41]:
        t = time.perf_counter()
        image = raster.image(cols(gene))
        times.append(1e3 * (time.perf_counter() - t))
    return {
        "bins": int(adata.n_obs),
        "raster_shape": list(image.shape),
        "first_use_ms": setup_ms,
        "switch_ms_median": float(np.median(times)),
        "switch_ms_max": float(np.max(times)),
        "target_ms": 15,
    }


def _small_section(work: Path) -> Path:
    from napari_mclstexp.synthetic.visium_hd import HDGeometry, write_visium_hd

    folder = work / "HDsmall"
    if not folder.exists():
        write_visium_hd(
            folder,
            n_rows=96,
            n_cols=96,
            bins=(8,),
            n_genes=33,
            image=True,
            image_margin_px=120,
            geometry=HDGeometry(1.0, (120.0, 120.0), 0.0),
            seed=1,
        )
    return folder


def part_predict(work: Path, n_bins: int, n_predict: int) -> dict:
    import torch

    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.io.visium_hd import read_visium_hd
    from napari_mclstexp.predict.bins import predict_at_bins
    from napari_mclstexp.progress import run

    torch.set_num_threads(2)
    adata = read_visium_hd(_small_section(work), 8)
    adata = adata[: min(n_predict, adata.n_obs)].copy()
    bundle = load_bundle(ROOT / "sample_data" / "demo_quick.mclst")
    run(predict_at_bins(bundle, adata[:64].copy(), PredictOptions(device="cpu")))  # warm-up
    t0 = time.perf_counter()
    pred = run(predict_at_bins(bundle, adata, PredictOptions(device="cpu")))
    seconds = time.perf_counter() - t0
    rate = pred.n_obs / seconds
    return {
        "bins": int(pred.n_obs),
        "seconds": seconds,
        "bins_per_s": rate,
        "patch_px": int(bundle.patch_px),
        "extrapolated_bins": n_bins,
        "extrapolated_minutes": n_bins / rate / 60,
        "peak_rss_gb": _rss_gb(),
        "note": "shipped quick bundle (smallcnn, 64 px input, 224 px patch at 1 µm/px); first --predict-bins bins "
        "of a smaller section with an image; time for all bins extrapolated",
    }


def part_train(work: Path, bins_per_epoch: int) -> dict:
    import torch

    from napari_mclstexp.io.visium_hd import read_visium_hd
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.progress import run
    from napari_mclstexp.train.bins import train_on_bins

    torch.set_num_threads(2)
    adata = read_visium_hd(_small_section(work), 8)
    cfg = get_preset("quick").replace(epochs=1, encoder="smallcnn", weights="none")
    t0 = time.perf_counter()
    result = run(train_on_bins([adata], cfg, bins_per_epoch=bins_per_epoch, device="cpu"))
    return {
        "section_bins": int(adata.n_obs),
        "bins_per_epoch": bins_per_epoch,
        "seconds": time.perf_counter() - t0,
        "bins_per_s": result.history[-1]["spots_per_s"],
        "patch_px": int(result.config.patch_px),
        "peak_rss_gb": _rss_gb(),
    }


def _child(part: str, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks",
        "visium-hd",
        "--part",
        part,
        "--work",
        str(args.work),
        "--bins",
        str(args.bins),
        "--genes",
        str(args.genes),
        "--predict-bins",
        str(args.predict_bins),
        "--bins-per-epoch",
        str(args.bins_per_epoch),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / f"visium-hd-cpu-{date.today()}.json")
    p.add_argument("--bins", type=int, default=700_000)
    p.add_argument("--genes", type=int, default=200)
    p.add_argument("--predict-bins", type=int, default=4096)
    p.add_argument("--bins-per-epoch", type=int, default=2048)
    p.add_argument("--parts", default="write,import,switch,predict,train")
    p.add_argument("--part", help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.part:
        fn = {
            "write": lambda: part_write(args.work, args.bins, args.genes),
            "import": lambda: part_import(args.work),
            "switch": lambda: part_switch(args.work),
            "predict": lambda: part_predict(args.work, args.bins, args.predict_bins),
            "train": lambda: part_train(args.work, args.bins_per_epoch),
        }[args.part]
        print(json.dumps(fn()))
        return 0
    with tempfile.TemporaryDirectory(prefix="mclstexp-hd-bench-") as tmp:
        args.work = args.work or Path(tmp)
        results = {"machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()}}
        for part in args.parts.split(","):
            results[part] = _child(part, args)
            print(part, json.dumps(results[part]), flush=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0

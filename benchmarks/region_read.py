"""Region-read speed of whole-slide TIFF levels: the zarr path vs the direct tile decoder (``io.wsi_tiles``).

A synthetic H&E-like JPEG pyramid (``io.wsi_write.write_pyramid_tiff``, 256 px tiles) is read with
``Slide.read_region`` from 1 and 2 threads, three ways:

* ``zarr`` — levels as zarr 3 arrays over tifffile's ``aszarr`` store (every chunk decoded in zarr's
  single event-loop thread);
* ``direct_nocache`` — :class:`~napari_mclstexp.io.wsi_tiles.TiledLevel` with its tile cache disabled
  (``os.pread`` + ``page.decode`` in the reading thread);
* ``direct`` — the same with the default 64 MB decoded-tile cache (what ``open_slide`` uses).

Two access patterns on level 0:

``blocks``
    What whole-slide prediction does (``predict.tiles``): 1,008 px square regions (8 × 8 tiles every
    112 px plus a 224 px patch) every 896 px, row-major — neighbouring regions share border tiles.
``random``
    1,008 px square regions at random places (seeded).

Rates are megapixels of regions returned per wall-clock second (``mp_per_s``) and per CPU-second of
this process (``mp_per_cpu_s``, meaningful when other processes share the cores); the best of
``--repeats`` runs (a fresh ``open_slide`` each, so caches start cold).  Writes
``benchmarks/results/region_read-cpu.json``.  ``--tiny`` shrinks everything (used by the tests).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

SIZES = {
    "full": dict(edge_px=8192, region_px=1008, pitch_px=896, random_regions=48, repeats=3),
    "tiny": dict(edge_px=1024, region_px=300, pitch_px=256, random_regions=6, repeats=1),
}
MODES = ("zarr", "direct_nocache", "direct")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def synthetic_image(edge_px: int, seed: int = 0) -> np.ndarray:
    """H&E-like (edge_px, edge_px, 3) uint8 image: one rendered 2,048 px tile repeated."""
    from napari_mclstexp.synthetic import region_map, render_he

    rng = np.random.default_rng(seed)
    tile = min(edge_px, 2048)
    base = render_he(region_map((tile, tile), 4, rng, smooth_px=tile / 4), rng)
    reps = -(-edge_px // tile)
    return np.tile(base, (reps, reps, 1))[:edge_px, :edge_px]


def open_as(path: Path, mode: str):
    """``open_slide`` with the levels read the ``mode`` way (see the module docstring)."""
    from napari_mclstexp.io import wsi

    if mode == "zarr":
        real = wsi.direct_tiled_page
        wsi.direct_tiled_page = lambda level, path=None: None  # every level through zarr, as before wsi_tiles
        try:
            slide = wsi.open_slide(path)
        finally:
            wsi.direct_tiled_page = real
        assert not isinstance(slide.levels[0], wsi.TiledLevel)
        return slide
    slide = wsi.open_slide(path)
    assert isinstance(slide.levels[0], wsi.TiledLevel)
    if mode == "direct_nocache":
        for level in slide.levels:
            level.cache = None
    return slide


def boxes_for(s: dict, pattern: str) -> list[tuple[int, int]]:
    """Top-left corners (x, y) of the regions of one access pattern."""
    edge, size = s["edge_px"], s["region_px"]
    if pattern == "blocks":
        starts = range(-112, edge - size // 2, s["pitch_px"])
        return [(x, y) for y in starts for x in starts]
    rng = np.random.default_rng(0)
    return [(int(x), int(y)) for x, y in rng.integers(0, edge - size, (s["random_regions"], 2))]


def bench_one(path: Path, mode: str, boxes: list[tuple[int, int]], size: int, threads: int, repeats: int) -> dict:
    """Best-of-``repeats`` region-read rate of one mode, pattern and thread count."""
    best: dict = {}
    for _ in range(repeats):
        slide = open_as(path, mode)
        try:
            with ThreadPoolExecutor(threads) as pool:
                t0, c0 = time.perf_counter(), time.process_time()
                out = list(pool.map(lambda b, sl=slide: sl.read_region(b[0], b[1], size, size), boxes))
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            cache = getattr(slide.levels[0], "cache", None)
            hits = (cache.hits / max(1, cache.hits + cache.misses)) if cache is not None else None
        finally:
            slide.close()
        assert all(o.shape == (size, size, 3) for o in out)
        mp = len(boxes) * size * size / 1e6
        if not best or mp / wall > best["mp_per_s"]:
            best = {
                "mp_per_s": mp / wall,
                "mp_per_cpu_s": mp / cpu,
                "wall_s": wall,
                "megapixels": mp,
                "regions": len(boxes),
                "cache_hit_rate": hits,
            }
    return best


def check_equal(path: Path, s: dict) -> bool:
    """The direct and zarr paths return the same pixels (one region across tile borders)."""
    size = s["region_px"]
    a, b = open_as(path, "zarr"), open_as(path, "direct")
    try:
        return bool(np.array_equal(a.read_region(37, 91, size, size), b.read_region(37, 91, size, size)))
    finally:
        a.close()
        b.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Region-read MP/s: zarr path vs direct tile decoding, 1 and 2 threads")
    p.add_argument("--tiny", action="store_true", help="tiny sizes (seconds; for tests)")
    p.add_argument("--threads", default="1,2", help="comma-separated reader thread counts")
    p.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON")
    args = p.parse_args(argv)
    s = SIZES["tiny" if args.tiny else "full"]
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    from napari_mclstexp.atomic import atomic_write_path
    from napari_mclstexp.io.wsi_write import write_pyramid_tiff

    report: dict = {
        "device": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "tiny": args.tiny,
        "load_avg_start": os.getloadavg()[0],
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "slide": {"edge_px": s["edge_px"], "tile_px": 256, "compression": "jpeg", "quality": 90},
        "region_px": s["region_px"],
        "repeats": s["repeats"],
        "results": {},
    }
    with tempfile.TemporaryDirectory(prefix="mclstexp-readbench-") as work:
        path = Path(work) / "slide.ome.tif"
        t0 = time.perf_counter()
        write_pyramid_tiff(path, synthetic_image(s["edge_px"]), mpp=0.5, tile=256)
        log(
            f"wrote a {s['edge_px']}² px JPEG pyramid in {time.perf_counter() - t0:.1f} s "
            f"({path.stat().st_size / 2**20:.1f} MB)"
        )
        report["pixels_equal"] = check_equal(path, s)
        for pattern in ("blocks", "random"):
            boxes = boxes_for(s, pattern)
            for mode in MODES:
                for n in threads:
                    r = bench_one(path, mode, boxes, s["region_px"], n, s["repeats"])
                    report["results"].setdefault(pattern, {}).setdefault(mode, {})[f"threads_{n}"] = r
                    hit = "" if r["cache_hit_rate"] is None else f", cache hits {100 * r['cache_hit_rate']:.0f}%"
                    log(
                        f"  {pattern:6s} {mode:14s} {n} thread(s): {r['mp_per_s']:7.1f} MP/s "
                        f"({r['mp_per_cpu_s']:.1f} MP/CPU-s{hit})"
                    )
    res = report["results"]
    report["speedup_direct_vs_zarr"] = {
        pattern: {
            f"threads_{n}": res[pattern]["direct"][f"threads_{n}"]["mp_per_s"]
            / res[pattern]["zarr"][f"threads_{n}"]["mp_per_s"]
            for n in threads
        }
        for pattern in res
    }
    report["load_avg_end"] = os.getloadavg()[0]
    out = args.out / f"region_read-cpu{'-tiny' if args.tiny else ''}.json"
    with atomic_write_path(out) as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    log(f"wrote {out}")
    return 0 if report["pixels_equal"] else 1

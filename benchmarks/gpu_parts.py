"""The measured parts of ``gpu.py`` (one function per part) and their helpers.

Each ``part_*`` takes the device, the size table of the mode (``gpu.SIZES``) and its time allowance in
seconds, prints progress lines and returns a JSON-able dict of figures.  See ``gpu.py`` for what each
part measures and how.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def reset_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)


def peak_gb(dev: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None


def autocast(dev: torch.device):
    import contextlib

    return torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else contextlib.nullcontext()


def our_config(s: dict, epochs: int = 1000):
    """The paper model with our pipeline (random weights: offline, and speed does not depend on them)."""
    from napari_mclstexp.model.presets import get_preset

    return get_preset("paper").replace(
        weights="none",
        patch_px=s["patch_px"],
        input_px=s["patch_px"],
        precision="bf16",
        channels_last=True,
        pos_table="data",
        batch_size=s["batch"],
        epochs=epochs,
    )


def make_train_samples(s: dict, work: Path) -> list:
    from napari_mclstexp.synthetic import make_synthetic_sample

    px = s["train_image_px"]
    return [
        make_synthetic_sample(
            work,
            image_px=(px, px),
            spot_spacing_px=s["train_spacing_px"],
            n_genes=s["n_genes"],
            seed=i,
            section=f"BENCH{i}",
            patient=f"P{i}",
        )
        for i in range(s["train_sections"])
    ]


def part_trunk(dev: torch.device, s: dict, args) -> dict:
    from napari_mclstexp.model.encoders import make_image_encoder

    torch.backends.cudnn.benchmark = True
    enc, _ = make_image_encoder("densenet121", "none")
    enc = enc.to(dev).train()
    if dev.type == "cuda":
        enc = enc.to(memory_format=torch.channels_last)
    net = torch.compile(enc) if args.compile else enc
    out = {}
    for b in s["trunk_batches"]:
        x = torch.rand(b, 3, s["patch_px"], s["patch_px"], device=dev)
        if dev.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)

        def step(x=x) -> None:
            enc.zero_grad(set_to_none=True)
            with autocast(dev):
                y = net(x)
            y.float().square().mean().backward()

        for _ in range(3):
            step()
        sync(dev)
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < s["trunk_s"] or n == 0:
            for _ in range(4):
                step()
            n += 4
            sync(dev)
        rate = n * b / (time.perf_counter() - t0)
        out[str(b)] = rate
        log(f"  trunk batch {b}: {rate:.0f} images/s")
    graphed = None
    if dev.type == "cuda":
        try:
            graphed = trunk_graphed_rate(enc, dev, s)
            log(f"  trunk batch {s['batch']} replayed from a CUDA graph: {graphed:.0f} images/s")
        except Exception as err:  # the eager figures stand on their own
            log(f"  trunk graph capture failed: {type(err).__name__}: {err}")
    torch.backends.cudnn.benchmark = False
    return {
        "images_per_s": out,
        "graphed_images_per_s": {str(s["batch"]): graphed} if graphed else None,
        "precision": "bf16" if dev.type == "cuda" else "fp32",
        "channels_last": dev.type == "cuda",
        "compile": bool(args.compile),
    }


def trunk_graphed_rate(enc: torch.nn.Module, dev: torch.device, s: dict) -> float:
    """Forward + backward of the trunk at the training batch, captured once and replayed."""
    b = s["batch"]
    x = torch.rand(b, 3, s["patch_px"], s["patch_px"], device=dev).contiguous(memory_format=torch.channels_last)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
            y = enc(x)
        y.float().square().mean().backward()

    side = torch.cuda.Stream(dev)
    side.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(side):
        for _ in range(3):
            enc.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream(dev).wait_stream(side)
    enc.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=side):
        step()
    for _ in range(3):
        graph.replay()
    sync(dev)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < s["trunk_s"] / 2 or n == 0:
        for _ in range(8):
            graph.replay()
        n += 8
        sync(dev)
    return n * b / (time.perf_counter() - t0)


def steady_rate(events: list[tuple[float, int]], batch: int, t_end: float, warm_s: float) -> tuple[float, int]:
    """Spots/s between the first event after ``warm_s`` s of training and ``t_end`` (last step done)."""
    t_first = events[0][0]
    later = [e for e in events[2:] if e[0] - t_first >= warm_s] or events[1:] or events
    t_a, step_a = later[0]
    step_b = events[-1][1]
    if step_b <= step_a or t_end <= t_a:
        return float("nan"), 0
    return (step_b - step_a) * batch / (t_end - t_a), step_b - step_a


def part_train(dev: torch.device, s: dict, args, samples: list, seconds: float, cuda_graph: bool = True) -> dict:
    from napari_mclstexp.errors import Cancelled
    from napari_mclstexp.progress import CancelToken
    from napari_mclstexp.train.trainer import train

    cfg = our_config(s).replace(cuda_graph=cuda_graph)
    if args.compile and "compile" in cfg.to_dict():
        cfg = cfg.replace(compile=True)
    cancel = CancelToken()
    gen = train(samples, cfg, device=str(dev), cancel=cancel)
    t0 = time.perf_counter()
    t_train0 = None
    events: list[tuple[float, int]] = []
    last_log, reported, result = t0, {}, None
    try:
        while True:
            ev = next(gen)
            now = time.perf_counter()
            if ev.stage != "train":
                if now - t0 > seconds + 60.0:  # patch extraction far slower than expected
                    cancel.cancel()
                continue
            if t_train0 is None:
                t_train0 = now
                log(f"  train: patches ready after {now - t0:.1f} s; first step done")
            events.append((now, int(ev.step)))
            reported = dict(ev.metrics)
            if now - last_log > 10:
                last_log = now
                log(
                    f"  train: step {ev.step}, epoch {reported.get('epoch')}, "
                    f"trainer says {reported.get('spots_per_s', float('nan')):.0f} spots/s"
                )
            if now - t_train0 >= seconds and len(events) >= 4:
                cancel.cancel()
    except StopIteration as stop:
        result = stop.value
    except Cancelled:
        pass
    sync(dev)
    t_end = time.perf_counter()
    if len(events) < 2:
        raise RuntimeError(f"trainer made only {len(events)} step(s) in the time given")
    rate, steps = steady_rate(events, s["batch"], t_end, warm_s=min(10.0, 0.15 * seconds))
    n_spots = sum(a.n_obs for a in samples)
    mode = "graph" if reported.get("cuda_graph") else "eager"
    log(f"  train: {rate:.0f} spots/s steady over {steps} steps ({mode} steps)")
    return {
        "spots_per_s": rate,
        "step_mode": mode,
        "timed_steps": steps,
        "n_train_spots": n_spots,
        "patch_stage_s": (t_train0 or t_end) - t0,
        "train_s": t_end - (t_train0 or t_end),
        "trainer_reported": reported,
        "history": result.history if result is not None else None,
        "config": cfg.to_dict(),
        "method": "train.trainer.train as shipped, cancelled after the "
        "time budget; rate between the first step after warm-up and the last step (GPU synced)",
    }


def part_reference(dev: torch.device, s: dict, seconds: float) -> dict:
    from .reference_pipeline import benchmark_reference

    torch.backends.cudnn.benchmark = False  # the reference code does not turn it on
    n_spots = s.get("ref_spots")
    out = benchmark_reference(
        dev,
        n_genes=s["n_genes"],
        batch_size=s["batch"],
        patch_px=s["patch_px"],
        seconds=seconds,
        image_px=s["ref_image_px"],
        n_spots=n_spots,
        log=lambda m: log(m) if "0 steps" in m else None,
    )
    out["settings"].update(
        cudnn_benchmark=torch.backends.cudnn.benchmark,
        tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
        tf32_cudnn=torch.backends.cudnn.allow_tf32,
    )
    log(
        f"  reference: {out['spots_per_s']:.0f} spots/s (loader {out['loader_ms_per_patch']:.2f} ms/patch, "
        f"model {out['model_ms_per_step']:.1f} ms/step)"
    )
    return out


def part_direct(dev: torch.device, s: dict, args, seconds: float) -> dict:
    from napari_mclstexp.data.augment import augment_batch
    from napari_mclstexp.model.mclstexp import build_model

    torch.backends.cudnn.benchmark = True
    cfg = our_config(s)
    n, g, b = s["direct_spots"], s["n_genes"], s["batch"]
    torch.manual_seed(0)
    model = build_model(cfg, g, (64, 64)).to(dev).train()
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        model.channels_last = True
    if args.compile:
        model.image_encoder = torch.compile(model.image_encoder)
    patches = torch.randint(0, 256, (n, s["patch_px"], s["patch_px"], 3), dtype=torch.uint8, device=dev)
    expr = torch.rand(n, g, device=dev)
    pos = torch.randint(0, 64, (n, 2), device=dev)
    opt = torch.optim.Adam(
        model.parameters(), lr=1e-4, weight_decay=1e-3, **({"fused": True} if dev.type == "cuda" else {})
    )

    def step() -> None:
        idx = torch.randint(0, n, (b,), device=dev)
        x = augment_batch(
            model.to_input(patches[idx]),
            flips=True,
            rot90=False,
            rotate_deg=cfg.rotate_deg,
            jitter=tuple(cfg.color_jitter),
        )
        with autocast(dev):
            img, spot = model(x, expr[idx], pos[idx])
        loss = model.loss(img, spot)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    sync(dev)
    t0, steps = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds or steps == 0:
        for _ in range(4):
            step()
        steps += 4
        sync(dev)
    rate = steps * b / (time.perf_counter() - t0)
    torch.backends.cudnn.benchmark = False
    log(f"  direct: {rate:.0f} spots/s")
    return {"spots_per_s": rate, "steps": steps, "cudnn_benchmark": True, "compile": bool(args.compile)}

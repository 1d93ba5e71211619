"""The ``vit`` part of ``gpu.py``: foundation-model-sized feature extraction, patches/s.

Two timm architectures with random weights (nothing is downloaded), the shapes of the pathology
foundation models users bring: ViT-L/16 (UNI) and ViT-g/14 with 4 register tokens (H-optimus-0), both at
224 px.  Forward only, weights and inputs in bf16, batched, the class token and the mean of the patch
tokens concatenated (the frozen-feature recipe).  Random weights cost the same time as trained ones.
"""

from __future__ import annotations

import time

import torch

#: (label, timm name, extra create_model arguments); tiny mode swaps in ViT-Tiny-sized stand-ins.
MODELS = {
    "full": [
        ("vit_large_patch16_224", "vit_large_patch16_224", dict(init_values=1e-5)),
        ("vit_giant_patch14_reg4_dinov2", "vit_giant_patch14_reg4_dinov2", dict(img_size=224, init_values=1e-5)),
    ],
    "tiny": [("vit_tiny_patch16_224", "vit_tiny_patch16_224", dict(img_size=32))],
}


def _embed(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    tokens = model.forward_features(x)
    skip = getattr(model, "num_prefix_tokens", 1)
    return torch.cat([tokens[:, 0], tokens[:, skip:].mean(1)], dim=1)


def part_vit(dev: torch.device, tiny: bool, seconds_each: float, log) -> dict:
    """Patches/s of frozen feature extraction for each model of the mode."""
    import timm

    out: dict = {"timm": timm.__version__, "models": {}}
    batch = 4 if tiny else 256
    px = 32 if tiny else 224
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    for label, name, kwargs in MODELS["tiny" if tiny else "full"]:
        t0 = time.perf_counter()
        with torch.device(dev):
            model = timm.create_model(name, pretrained=False, num_classes=0, **kwargs)
        model = model.to(dtype).eval()
        n_params = sum(p.numel() for p in model.parameters())
        x = torch.randn(batch, 3, px, px, device=dev, dtype=dtype)
        with torch.inference_mode():
            for _ in range(2):
                dim = _embed(model, x).shape[1]
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            n, t = 0, time.perf_counter()
            while time.perf_counter() - t < seconds_each:
                _embed(model, x)
                n += batch
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
            rate = n / (time.perf_counter() - t)
        out["models"][label] = {
            "patches_per_s": rate,
            "batch": batch,
            "input_px": px,
            "embed_dim": dim,
            "params_m": n_params / 1e6,
            "dtype": str(dtype).removeprefix("torch."),
            "setup_s": t - t0,
        }
        log(f"  vit {label}: {rate:.0f} patches/s at batch {batch}, {px} px ({n_params / 1e6:.0f} M params)")
        del model, x
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return out

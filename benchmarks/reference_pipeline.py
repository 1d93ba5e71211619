"""Re-creation of the reference mclSTExp code's training configuration, for speed comparisons.

What the reference trainer does every step, and what this module does the same way:

* a ``Dataset`` whose ``__getitem__`` crops one 224 px patch around the spot centre from the full
  slide held as a PIL image (``Image.crop``; zero padding outside), then applies torchvision's
  ``ColorJitter(0.5, 0.5, 0.5)``, ``RandomHorizontalFlip()``, ``RandomRotation(180)`` and
  ``ToTensor()`` (values in [0, 1], no mean/std) — per sample, in the main process
  (``DataLoader(num_workers=0)``);
* the ``paper`` preset's model (DenseNet-121 + 2-block spot Transformer over the whole batch as one
  sequence, two dense ``65,536 × n_genes`` position tables) in fp32, Adam (lr 1e-4, weight decay
  1e-3) over every parameter, ``loss.item()`` each step (the reference's loss meter).

Weights are random (``weights="none"``): speed does not depend on them and the benchmark machines
are offline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset


@dataclass
class ReferenceData:
    """One synthetic section in the reference code's in-memory layout.

    Attributes
    ----------
    image
        The full slide (PIL RGB image).
    xy
        (N, 2) int spot centres in pixels (x = column, y = row).
    expr
        (N, G) float32 normalised expression.
    pos
        (N, 2) int64 array coordinates (indices into the 65,536-row tables).
    """

    image: Image.Image
    xy: np.ndarray
    expr: np.ndarray
    pos: np.ndarray


def make_reference_data(n_spots: int, n_genes: int, image_px: int = 2048, seed: int = 0) -> ReferenceData:
    """Random H&E-coloured slide of ``image_px``² px with ``n_spots`` spots on a jittered grid.

    Parameters
    ----------
    n_spots, n_genes
        Spots and genes.
    image_px
        Slide edge (px).
    seed
        Random seed.
    """
    rng = np.random.default_rng(seed)
    # Low-frequency colour field + noise: colour jitter and rotation cost the same as on real tissue.
    small = rng.integers(120, 240, size=(image_px // 64 + 1, image_px // 64 + 1, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(small).resize((image_px, image_px), Image.BILINEAR), dtype=np.int16)
    noise = rng.integers(-20, 21, size=base.shape, dtype=np.int16)
    image = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    xy = rng.integers(0, image_px, size=(n_spots, 2))
    expr = np.log10(1 + rng.gamma(1.0, 20.0, size=(n_spots, n_genes))).astype(np.float32)
    pos = rng.integers(0, 64, size=(n_spots, 2)).astype(np.int64)
    return ReferenceData(image, xy, expr, pos)


def reference_transforms():
    """The reference code's training transforms (torchvision, PIL input)."""
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.ColorJitter(0.5, 0.5, 0.5),
            transforms.RandomHorizontalFlip(),
            transforms.RandomRotation(degrees=180),
            transforms.ToTensor(),
        ]
    )


class ReferenceDataset(Dataset):
    """Per-sample PIL crop + torchvision augmentation, as the reference ``__getitem__``.

    Parameters
    ----------
    data
        The section.
    patch_px
        Crop edge (px; reference: 224).
    """

    def __init__(self, data: ReferenceData, patch_px: int = 224) -> None:
        self.data = data
        self.half = patch_px // 2
        self.patch_px = patch_px
        self.transform = reference_transforms()

    def __len__(self) -> int:
        return len(self.data.xy)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x, y = (int(v) for v in self.data.xy[i])
        box = (x - self.half, y - self.half, x - self.half + self.patch_px, y - self.half + self.patch_px)
        patch = self.data.image.crop(box)
        return {
            "image": self.transform(patch),
            "expression": torch.from_numpy(self.data.expr[i]),
            "position": torch.from_numpy(self.data.pos[i]),
        }


def build_reference_model(n_genes: int, *, patch_px: int = 224, pos_rows: int = 65536):
    """The ``paper`` preset's model with random weights, 2 × ``pos_rows`` × ``n_genes`` tables, fp32."""
    from napari_mclstexp.model.mclstexp import build_model
    from napari_mclstexp.model.presets import get_preset

    config = get_preset("paper").replace(
        weights="none",
        patch_px=patch_px,
        input_px=patch_px,
        pos_table="fixed",
        pos_rows=pos_rows,
        precision="fp32",
        channels_last=False,
    )
    return build_model(config, n_genes, (pos_rows, pos_rows))


def _image_embeddings(model, images: torch.Tensor) -> torch.Tensor:
    """Float (B, 3, H, W) in [0, 1] → embeddings, through the model's float entry point."""
    if hasattr(model, "forward_images"):
        return model.forward_images(images)
    patches = (images * 255).round_().to(torch.uint8).permute(0, 2, 3, 1)  # pragma: no cover
    return model.encode_images(patches)  # pragma: no cover


def benchmark_reference(
    device: torch.device | str,
    *,
    n_genes: int = 785,
    batch_size: int = 128,
    patch_px: int = 224,
    pos_rows: int = 65536,
    seconds: float = 30.0,
    warmup_steps: int = 2,
    max_steps: int | None = None,
    n_spots: int | None = None,
    image_px: int = 2048,
    seed: int = 0,
    log=print,
) -> dict:
    """Train the reference configuration for about ``seconds`` s of steady state and time it.

    Parameters
    ----------
    device
        Where the model runs.
    n_genes, batch_size, patch_px, pos_rows
        Reference sizes (785 HER2+ genes, 128 spots, 224 px, 65,536 rows).
    seconds
        Timed wall-clock seconds after ``warmup_steps`` (the loop stops at the first step past it).
    max_steps
        Optional cap on timed steps.
    n_spots, image_px
        Synthetic section size (default: enough spots for the timed steps).
    log
        Progress printer.

    Returns
    -------
    dict
        ``spots_per_s`` (end to end), ``loader_ms_per_patch``, ``model_ms_per_step``, ``steps``,
        ``loss_first``/``loss_last``, ``n_params`` and the settings.
    """
    device = torch.device(device)
    warmup_steps = max(1, int(warmup_steps))
    torch.manual_seed(seed)
    if n_spots is None:
        n_spots = batch_size * (warmup_steps + 400)
    data = make_reference_data(n_spots, n_genes, image_px=image_px, seed=seed)
    model = build_reference_model(n_genes, patch_px=patch_px, pos_rows=pos_rows).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-3)
    loader = DataLoader(
        ReferenceDataset(data, patch_px), batch_size=batch_size, shuffle=True, num_workers=0, drop_last=True
    )
    loader_s = model_s = 0.0
    steps = timed = 0
    losses: list[float] = []
    t_start = None
    it = iter(loader)
    while True:
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        t1 = time.perf_counter()
        images = batch["image"].to(device)
        expr = batch["expression"].to(device)
        pos = batch["position"].to(device)
        img_emb = _image_embeddings(model, images)
        spot_emb = model.encode_spots(expr, pos, "batch")
        loss = model.loss(img_emb, spot_emb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())  # synchronises, as the reference's loss meter does
        t2 = time.perf_counter()
        steps += 1
        if steps == warmup_steps:
            t_start = t2
            continue
        if t_start is None:
            continue
        timed += 1
        loader_s += t1 - t0
        model_s += t2 - t1
        if timed % 10 == 0:
            log(f"  reference: {timed} steps, {timed * batch_size / (t2 - t_start):.0f} spots/s")
        if t2 - t_start >= seconds or (max_steps is not None and timed >= max_steps):
            break
    wall = time.perf_counter() - t_start
    return {
        "spots_per_s": timed * batch_size / wall,
        "loader_ms_per_patch": 1e3 * loader_s / (timed * batch_size),
        "model_ms_per_step": 1e3 * model_s / timed,
        "steps": timed,
        "seconds": wall,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "n_params": int(sum(p.numel() for p in model.parameters())),
        "settings": {
            "n_genes": n_genes,
            "batch_size": batch_size,
            "patch_px": patch_px,
            "pos_rows": pos_rows,
            "precision": "fp32",
            "num_workers": 0,
            "optimizer": "Adam(lr=1e-4, weight_decay=1e-3)",
        },
    }

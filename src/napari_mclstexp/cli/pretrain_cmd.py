"""``mclstexp pretrain SLIDE... --out encoder.safetensors``: self-supervised encoder pretraining (SimCLR)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._paths import check_output


def register(subparsers: Any) -> None:
    """Add the ``pretrain`` command."""
    p = subparsers.add_parser(
        "pretrain",
        help="experimental, measured not to help: pretrain the image encoder on your own slides (SimCLR)",
        description=(
            "Pretrain a preset's image encoder with SimCLR on tissue tiles of any slides you have\n"
            "(with or without spatial transcriptomics), then train from it with\n"
            "'mclstexp train ... --weights encoder.safetensors'.\n\n"
            "Experimental, measured not to help (docs/accuracy.md): on held-out HER2+ section C4 the quick\n"
            "preset trained from own-slide SimCLR weights reached ACG 0.182 against 0.192 from random\n"
            "weights (10 epochs, 2 seeds) and 0.205 against 0.207 (40 epochs, 1 seed)."
        ),
        epilog=(
            "examples:\n"
            "  mclstexp pretrain slides/*.svs --out encoder.safetensors\n"
            "  mclstexp pretrain B1.h5ad C1.h5ad extra.tif --out enc.safetensors --epochs 10 --tiles-per-slide 2000\n"
            "  mclstexp train B1.h5ad C1.h5ad --preset quick --weights enc.safetensors --out model.mclst\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("slides", nargs="+", metavar="SLIDE", help="image files or .h5ad samples with an image")
    p.add_argument("--out", required=True, metavar="FILE.safetensors", help="where to write the encoder weights")
    p.add_argument("--preset", default="quick", help="preset the weights are for (default quick: smallcnn, 64 px)")
    p.add_argument("--encoder", default=None, help="another encoder than the preset's (smallcnn, resnet18, ...)")
    p.add_argument("--epochs", type=int, default=None, help="passes over the tiles (default 3)")
    p.add_argument("--tiles-per-slide", type=int, default=None, help="tissue tiles drawn per slide (default 1000)")
    p.add_argument("--batch-size", type=int, default=64, help="tiles per step, two views each (default 64)")
    p.add_argument(
        "--init", default="none", help="starting weights: none (random, default), imagenet, or a weights file"
    )
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate, cosine decay (default 1e-3)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--device", default="auto", metavar="DEVICE", help="auto (default: cuda > mps > cpu), cpu, cuda, cuda:1, mps"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Pretrain, save the weights, print where they are and how to use them; returns 0."""
    from ..errors import InputError
    from ..progress import run_with_progress
    from ..workflows.pretrain import DEFAULT_EPOCHS, DEFAULT_TILES_PER_SLIDE, pretrain_and_save

    epochs = DEFAULT_EPOCHS if args.epochs is None else args.epochs
    tiles = DEFAULT_TILES_PER_SLIDE if args.tiles_per_slide is None else args.tiles_per_slide
    if epochs < 1 or tiles < 1 or args.batch_size < 2:
        raise InputError("--epochs and --tiles-per-slide must be at least 1 and --batch-size at least 2")
    check_output(args.out, args.slides, suffix=".safetensors")
    saved = run_with_progress(
        pretrain_and_save(
            args.slides,
            Path(args.out),
            preset=args.preset,
            encoder=args.encoder,
            epochs=epochs,
            tiles_per_slide=tiles,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            device=args.device,
            init=args.init,
        ),
        disable=bool(getattr(args, "quiet", False)),
    )
    res = saved.result
    last = res.history[-1]["loss"] if res.history else float("nan")
    print(
        f"saved {saved.path} ({res.encoder}, {res.n_tiles} tiles from {saved.n_slides} slide(s), "
        f"final loss {last:.3f}, {res.seconds:.0f} s)\n"
        f"use it: mclstexp train ... --preset {args.preset} --weights {saved.path}"
        + (f" --encoder {res.encoder}" if args.encoder else "")
    )
    return 0

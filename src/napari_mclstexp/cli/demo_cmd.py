"""``mclstexp demo``: the embedded default, fully offline."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HELP = "run the offline demo: predict genes on the held-out part of a bundled synthetic slide"

DESCRIPTION = """\
Run the whole method on the bundled synthetic H&E slide, offline, in under a minute on a laptop CPU
(retraining with --train takes minutes).

The slide's left two thirds trained the small bundled 'quick' model; the demo predicts the gene
expression of the right third from the image alone, compares it with the measured counts (ACG: mean
Pearson r over genes), clusters the predictions into tissue domains (ARI against the true regions)
and writes:

  predictions.h5ad            predicted expression at the held-out spots (AnnData)
  metrics.json                acg, heg50, hvg50, mse, mae, ari, nmi, ...
  measured_vs_predicted.png   measured vs predicted maps of the best-predicted genes
"""

EPILOG = """\
examples:
  mclstexp demo --out mclstexp-demo
  mclstexp demo --out mclstexp-demo --train --epochs 5      # retrain the model first
  mclstexp demo --out mclstexp-demo --napari                # then open napari with the results
"""


def register(subparsers) -> None:
    """Add the ``demo`` sub-command."""
    p = subparsers.add_parser(
        "demo",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out", default="mclstexp-demo", metavar="DIR", help="output folder (created; default: %(default)s)"
    )
    p.add_argument(
        "--train",
        action="store_true",
        help="train the 'quick' model again on the left two thirds instead of using the bundled one",
    )
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="training epochs with --train (default: 8)")
    p.add_argument(
        "--device", default="auto", metavar="DEVICE", help="auto (default: cuda > mps > cpu), cpu, cuda, cuda:1, mps"
    )
    p.add_argument(
        "--napari",
        action="store_true",
        help="afterwards open napari with the slide, the spots, the predicted gene and the plugin's widgets",
    )
    p.add_argument("--no-figure", dest="figure", action="store_false", help="skip the PNG figure")
    p.set_defaults(run=run)


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform in ("darwin", "win32")


def run(args: argparse.Namespace) -> int:
    """Run the demo; print the headline numbers and where the outputs are."""
    from ..progress import run_with_progress
    from ..workflows.demo import run_demo

    result = run_with_progress(
        run_demo(args.out, train=args.train, epochs=args.epochs, device=args.device, figure=args.figure),
        disable=getattr(args, "quiet", False),
    )
    m = result.metrics
    print(
        f"mclstexp demo: {m['test_spots']} held-out spots, {m['n_genes']} genes: "
        f"ACG {m['acg']:.3f} (image-driven genes {m['acg_image_genes']:.3f}), "
        f"domains ARI {m['ari']:.3f} (measured expression: {m['ari_measured']:.3f}), {m['seconds']:.0f} s"
    )
    print(f"outputs in {result.out_dir.resolve()}:")
    for path in (result.prediction_path, result.metrics_path, result.figure_path):
        if path is not None:
            print(f"  {path.name}")
    if m.get("trained_now") and m.get("bundle"):
        print(f"  {Path(m['bundle']).name} (the retrained model)")
    if args.napari:
        if not _has_display():
            print("no display found (DISPLAY is unset): not opening napari; the outputs above are complete")
            return 0
        from .._qt.launch import launch_demo

        launch_demo(result, block=True)
    return 0

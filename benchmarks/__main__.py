"""``python -m benchmarks [PART [args]]``: list the benchmark parts with their goals, or run one.

Run from the repository root.  Without a part (or with ``--list``) it prints each part, where it runs, whether
``make bench`` runs it, and the goal it measures; ``python -m benchmarks PART --help`` shows a part's options.
A part that needs a display is started again under ``xvfb-run -a`` when there is none.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    """One benchmark part: its name on the command line, its module, the goal it measures and where it runs."""

    name: str
    module: str
    goal: str
    runs_on: str = "CPU"
    standing: bool = False  # run by ``make bench``
    display: bool = False  # opens napari windows


PARTS = (
    Part(
        "cpu",
        "cpu",
        "CPU speed: patch pipeline against the reference code's loader, the quick preset's time to a model, "
        "whole-slide tiles/s (and the cost of TTA, context views and tissue descriptors: --parts), torch.compile",
        standing=True,
    ),
    Part(
        "region-read",
        "region_read",
        "slide region reads: the direct tile decoder faster than the zarr path and scaling with threads, same pixels",
        standing=True,
    ),
    Part(
        "stalls",
        "stalls",
        "no freeze in the pathologist's walk (open the panel, load her2st, train, predict at spots and over the "
        "slide, genes, side by side, domains, export, tissue), quiet and while the panel trains: median <= 250 ms, "
        "no run over 350 / 500 ms (fresh processes)",
        runs_on="CPU, display",
        standing=True,
        display=True,
    ),
    Part(
        "viewer",
        "viewer",
        "the viewer stays responsive: a gene switch on 100,000 spots (own work, napari, to frame) and the "
        "longest UI stall while training",
        runs_on="CPU, display",
        display=True,
    ),
    Part(
        "gpu",
        "gpu",
        "GPU training >= 2,200 spots/s and >= 85 % of the trunk, >= 5x the reference code, whole-slide "
        "inference >= 8,000 patches/s (gpu_check.sh runs it after the CUDA-only tests)",
        runs_on="GPU",
    ),
    Part(
        "visium-hd",
        "visium_hd",
        "Visium HD at full scale (~700,000 bins): import <= 60 s and <= 4 GB, gene switch <= 15 ms, bins/s "
        "predicted, training memory bounded by the bins per epoch",
    ),
    Part(
        "cohort",
        "cohort",
        "cohort prediction: a run killed halfway resumes with outputs equal to a clean run's; under torchrun "
        "each slide is predicted once",
    ),
    Part(
        "accuracy",
        "accuracy",
        "a preset's accuracy in slide-level CV on the HER2+ sections (ACG, HEG@50, HVG@50, MSE, MAE, domain "
        "ARI/NMI) beside the colour-histogram kNN",
        runs_on="CPU or GPU, her2st data",
    ),
    Part(
        "accuracy-levers",
        "accuracy_levers",
        "ACG >= 1.35x the colour-histogram kNN in CV and across patients: neighbour smoothing, context views "
        "(experimental), expression-only reference spots, seed ensembles",
        runs_on="CPU, her2st data",
    ),
    Part(
        "accuracy-descriptors",
        "accuracy_descriptors",
        "the same goal for the tissue descriptors the quick preset blends in",
        runs_on="CPU, her2st data",
    ),
    Part(
        "encoders",
        "encoders",
        "frozen encoders across patients beside ridge, the kNN and mean expression; frozen vs end-to-end "
        "seconds per epoch; feature extraction patches/s",
        runs_on="CPU, her2st data",
    ),
    Part(
        "stain",
        "stain",
        "another lab's stain: on stain-shifted copies of C4, normalisation to the model's reference recovers >= 80 % "
        "of the ACG each shift costs and loses <= one seed's sd on C4 as scanned; augmentation on/off; C -> B4; "
        "whole-slide cost per tile",
        runs_on="CPU, her2st data",
    ),
    Part(
        "pretrain",
        "pretrain",
        "own-slide SimCLR pretraining (experimental, CLI only) against random initialisation on a held-out "
        "section: it stays experimental until this measures a gain",
        runs_on="CPU, her2st data",
    ),
)
BY_NAME = {p.name: p for p in PARTS}


def listing(width: int = 100) -> str:
    """The parts, one block each: name, where it runs, ``make bench`` or not, and the goal it measures."""
    lines = ["usage: python -m benchmarks PART [args]   (PART --help for its options)", "", "parts:"]
    for p in PARTS:
        where = p.runs_on + (", make bench" if p.standing else "")
        lines.append(f"  {p.name:<22}[{where}]")
        lines += textwrap.wrap(p.goal, width, initial_indent=" " * 4, subsequent_indent=" " * 4, break_on_hyphens=False)
    lines += ["", "make bench runs the parts marked make bench; make bench PART=NAME runs one."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """List the parts (no argument, ``--list``, ``-h``) or run one; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("--list", "-h", "--help"):
        print(listing())
        return 0
    name, rest = argv[0], argv[1:]
    part = BY_NAME.get(name)
    if part is None:
        print(f"python -m benchmarks: unknown part {name!r}\n\n{listing()}", file=sys.stderr)
        return 2
    if part.display and not os.environ.get("DISPLAY") and shutil.which("xvfb-run"):
        os.execvp("xvfb-run", ["xvfb-run", "-a", sys.executable, "-m", "benchmarks", name, *rest])
    module = importlib.import_module(f"{__package__ or 'benchmarks'}.{part.module}")
    program, sys.argv[0] = sys.argv[0], f"python -m benchmarks {name}"  # the usage line of the part's --help
    try:
        return int(module.main(rest) or 0)
    finally:
        sys.argv[0] = program


if __name__ == "__main__":
    sys.exit(main())

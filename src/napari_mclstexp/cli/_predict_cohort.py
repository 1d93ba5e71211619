"""``mclstexp predict MODEL --image SLIDE... | --manifest CSV --out-dir DIR``: the cohort face of ``predict``."""

from __future__ import annotations

import argparse
import sys


def run_cohort(args: argparse.Namespace) -> int:
    """Parse the cohort options, run :func:`~napari_mclstexp.predict.cohort.predict_cohort` (spread over
    ``torchrun`` ranks when launched so) and print a summary; exit status 1 when any slide failed."""
    from ..bundle import load_bundle
    from ..errors import InputError
    from ..predict.cohort import predict_cohort, read_manifest, slides_from_paths
    from ..progress import run_with_progress
    from ..train.distributed import init_distributed

    if args.sample is not None:
        raise InputError("a cohort predicts whole slides: give --image SLIDE... or --manifest, not a SAMPLE.h5ad")
    if bool(args.image) == bool(args.manifest):
        raise InputError("give either --image SLIDE... or --manifest SLIDES.csv, not both or neither")
    if not args.out_dir:
        raise InputError("several slides need --out-dir DIR (one <name>.h5ad per slide)")
    if args.out:
        raise InputError("--out names one file; with --out-dir each slide gets <DIR>/<name>.h5ad")
    for name in ("k", "batch_size", "step_px"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, not {value}")
    from .predict_cmd import check_stain

    check_stain(args)
    slides = read_manifest(args.manifest) if args.manifest else slides_from_paths(args.image)
    dist = init_distributed(args.device)
    bundle = load_bundle(args.model)
    quiet = bool(getattr(args, "quiet", False)) or not dist.is_main
    gen = predict_cohort(
        bundle,
        slides,
        args.out_dir,
        step_px=args.step_px,
        min_tissue=args.min_tissue,
        device=args.device,
        dist=dist if dist.world_size > 1 else None,
        k=args.k,
        distance=args.distance,
        batch_size=args.batch_size,
        tta=getattr(args, "tta", None),
        smooth=getattr(args, "smooth", True),
        descriptors=getattr(args, "descriptors", True),
        stain=getattr(args, "stain", "auto"),
    )
    result = run_with_progress(gen, disable=quiet)
    if dist.is_main and not getattr(args, "quiet", False):
        print(
            f"{result.count('done')} slides predicted, {result.count('skipped')} already done, "
            f"{result.failed} failed → {args.out_dir} (summary: {result.summary_path})"
        )
    if dist.is_main:
        for row in result.rows:
            if row["status"] == "failed":
                print(f"mclstexp predict: {row['name']} failed: {row['error']}", file=sys.stderr)
    return 1 if result.failed else 0

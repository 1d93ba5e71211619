"""``mclstexp predict``: expression at a sample's spots, or over a whole slide without ST data."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ._paths import check_output

if TYPE_CHECKING:
    from ..predict.options import PredictOptions

HELP = "predict gene expression from H&E: at a sample's spots, or on a tile grid over a whole slide"

DESCRIPTION = """\
Predict spatial gene expression with a trained model bundle (.mclst).

At spots:     mclstexp predict MODEL.mclst SAMPLE.h5ad --out PRED.h5ad
Whole slide:  mclstexp predict MODEL.mclst --image SLIDE --out PRED.h5ad [--step-px N]
Cohort:       mclstexp predict MODEL.mclst --image SLIDE... | --manifest SLIDES.csv --out-dir DIR

Each spot's (or tile's) image patch is embedded and the k most similar training spots are
retrieved from the bundle's reference bank; the prediction is their expression weighted by 1/d².
The output AnnData holds the predicted normalised expression (X), the spot/tile centres
(obsm['spatial'], full-resolution px), a per-spot uncertainty (obs['uncertainty']: weighted std of
the neighbours' expression, averaged over genes) and provenance (uns['mclstexp']).  Whole-slide
predictions skip background (tissue detection) and record the tile grid in uns['mclstexp']['grid'].
Each slide's stain is estimated once from its tissue and compared with the training sections' stains
stored in the model (--stain auto): a slide stained within their spread is predicted as scanned, one
further away is first moved toward the nearest training section's stain (a model trained with
--stain-normalize: every slide mapped to its reference); recorded in uns['mclstexp']['stain'].
"""

EPILOG = """\
examples:
  mclstexp predict model.mclst B4.h5ad --out B4_pred.h5ad
  mclstexp predict model.mclst --image slide.ome.tif --out slide_pred.h5ad --step-px 112 --device cuda
  mclstexp predict model.mclst --manifest cohort.csv --out-dir preds/
      one preds/<name>.h5ad per slide (written atomically; a rerun skips finished slides), failures
      recorded in preds/cohort_summary.csv (exit status 1 when any slide failed).  CSV columns: image
      (required), name, mpp.  Under torchrun the slides are spread over the ranks:
  torchrun --nproc-per-node 4 -m napari_mclstexp.cli predict model.mclst --manifest c.csv --out-dir p/
"""


def register(subparsers) -> None:
    """Add the ``predict`` sub-command."""
    p = subparsers.add_parser(
        "predict",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL.mclst", help="trained model bundle")
    p.add_argument("sample", nargs="?", metavar="SAMPLE.h5ad", help="sample whose spots to predict")
    p.add_argument(
        "--image",
        metavar="SLIDE",
        nargs="+",
        help="whole-slide image(s) to predict on a tile grid (instead of a sample); several need --out-dir",
    )
    p.add_argument(
        "--manifest",
        metavar="SLIDES.csv",
        help="cohort: CSV of slides (column image, optional name and mpp); needs --out-dir",
    )
    p.add_argument("--out", metavar="PRED.h5ad", help="output AnnData (written atomically)")
    p.add_argument(
        "--out-dir",
        metavar="DIR",
        help="cohort: folder for one <name>.h5ad per slide and cohort_summary.csv (resumable)",
    )
    p.add_argument(
        "--step-px",
        type=int,
        default=None,
        metavar="N",
        help="whole slide: distance between tile centres in full-resolution px (default: the patch size)",
    )
    p.add_argument(
        "--min-tissue",
        type=float,
        default=0.25,
        metavar="F",
        help="whole slide: skip tiles with less tissue than this fraction (default: %(default)s)",
    )
    p.add_argument(
        "--device", default="auto", metavar="DEVICE", help="auto (default: cuda > mps > cpu), cpu, cuda, cuda:1, mps"
    )
    p.add_argument(
        "--k", type=int, default=None, metavar="K", help="neighbours retrieved (default: the model's preset)"
    )
    p.add_argument(
        "--distance",
        choices=("l1", "l2"),
        default=None,
        help="distance for the 1/d² weights (default: the model's preset)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="B",
        help="patches per forward pass (default: 256 on CUDA, 64 on CPU)",
    )
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="test-time augmentation: mean embedding over the 8 flips/90° rotations, 8× the encoder "
        "work (default: as the model was built; its reference bank used the same setting)",
    )
    p.add_argument(
        "--smooth",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="blend each spot's (or tile's) prediction with its neighbours' at the weight the model chose on "
        "held-out training data (default: on; --no-smooth: each spot on its own)",
    )
    p.add_argument(
        "--descriptors",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="blend in the model's tissue-descriptor predictions at the weight it chose on held-out training "
        "data (models trained with descriptors, e.g. quick; default: on; --no-descriptors: retrieval only)",
    )
    p.add_argument(
        "--stain",
        default="auto",
        metavar="auto|none|REFERENCE.json",
        help="auto (default): estimate each slide's stain once from its tissue; leave it as scanned when it lies "
        "within the spread of the training sections' stains, else move it toward the nearest training section's "
        "stain before patches reach the encoder and the descriptors (models trained with --stain-normalize: map "
        "every slide to their reference; models without stored stains predict as scanned); none: as scanned; a "
        "JSON file: map to that reference stain instead (a stain estimate, or a bundle's metadata.json)",
    )
    p.add_argument(
        "--encoder-weights",
        default=None,
        metavar="PATH",
        help="encoder weights file of a bundle that references them by hash (default: the path "
        "recorded at training); a file with another SHA-256 is refused",
    )
    p.set_defaults(run=run)


def _check_paths(args: argparse.Namespace) -> None:
    from ..errors import InputError

    if args.out is None:
        raise InputError("give --out PRED.h5ad (or --out-dir DIR for several slides)")
    if (args.sample is None) == (args.image is None):
        raise InputError(
            "give either a SAMPLE.h5ad (predict at its spots) or --image SLIDE (whole slide), not both or neither"
        )
    check_output(args.out, (args.model, args.sample, args.image), suffix=".h5ad")
    if args.step_px is not None and args.step_px < 1:
        raise InputError(f"--step-px must be at least 1, not {args.step_px}")


def predict_options(args: argparse.Namespace) -> PredictOptions:
    """The :class:`~napari_mclstexp.predict.options.PredictOptions` the arguments ask for (spots, bins, slides
    and cohorts alike); a bad value raises :class:`~napari_mclstexp.errors.InputError`."""
    from ..predict.options import PredictOptions

    return PredictOptions(
        device=args.device,
        k=args.k,
        distance=args.distance,
        batch_size=args.batch_size,
        tta=args.tta,
        smooth=args.smooth,
        descriptors=args.descriptors,
        stain=getattr(args, "stain", "auto"),
    )


def run(args: argparse.Namespace) -> int:
    """Load the bundle, predict, write the AnnData atomically; print a one-line summary."""
    from ..bundle import load_bundle
    from ..io.h5ad import read_sample, write_h5ad
    from ..progress import run_with_progress

    if args.out_dir or args.manifest or (args.image and len(args.image) > 1):
        from ._predict_cohort import run_cohort

        return run_cohort(args)
    args.image = args.image[0] if args.image else None
    _check_paths(args)
    options = predict_options(args)
    bundle = load_bundle(args.model)
    if getattr(args, "encoder_weights", None):
        bundle.encoder_weights = args.encoder_weights
    quiet = bool(getattr(args, "quiet", False))
    if args.image:
        from ..predict.slide import predict_whole_slide

        warn_inputs(bundle, image=args.image)
        gen = predict_whole_slide(bundle, args.image, options, step_px=args.step_px, min_tissue=args.min_tissue)
        what = "tiles"
    else:
        from ..predict.spots import predict_at_spots

        sample = read_sample(args.sample, require_image=True)
        warn_inputs(bundle, sample=sample)
        gen = predict_at_spots(bundle, sample, options)
        what = "spots"
        if "bin_grid" in sample.uns:  # Visium HD: every bin, in chunks (bounded memory)
            from ..predict.bins import predict_at_bins

            gen, what = predict_at_bins(bundle, sample, options), "bins"
    pred = run_with_progress(gen, disable=quiet)
    write_h5ad(pred, args.out)
    if not quiet:
        print(f"predicted {pred.n_vars} genes at {pred.n_obs} {what} → {args.out}")
    report_novelty(pred.uns.get("mclstexp", {}), quiet)
    return 0


def warn_inputs(bundle, sample=None, image=None) -> None:
    """The guards (:mod:`~napari_mclstexp.predict.guards`) as one warning line each, before predicting."""
    import warnings

    from ..predict.guards import input_warnings
    from ..sample import microns_per_pixel

    if sample is not None:
        lines = input_warnings(bundle, microns_per_pixel(sample), sample.var_names if sample.n_vars else ())
    else:
        from ..io.wsi import open_slide

        with open_slide(image) as slide:
            lines = input_warnings(bundle, slide.mpp)
    for line in lines:
        warnings.warn(line, UserWarning, stacklevel=2)


def report_novelty(info, quiet: bool) -> None:
    """Print the novel fraction (not with -q); warn above :data:`~napari_mclstexp.predict.novelty.WARN_FRACTION`."""
    import warnings

    from ..predict.novelty import WARN_FRACTION, novelty_message

    fraction = info.get("novel_fraction") if hasattr(info, "get") else None
    if fraction is None:
        if not quiet:
            print("novelty: not scored (bundle made before format 2; see mclstexp info)")
        return
    if not quiet:
        print(
            f"novel fraction {float(fraction):.3f} (share of {'tiles' if 'grid' in info else 'spots'} less typical "
            "than 99 % of held-out training spots; obs['novelty'])"
        )
    if float(fraction) > WARN_FRACTION:
        message = novelty_message(float(fraction)) + ": read these predictions with care"
        warnings.warn(message, UserWarning, stacklevel=2)

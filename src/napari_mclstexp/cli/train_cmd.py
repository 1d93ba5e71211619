"""``mclstexp train``: train an mclSTExp model on samples with images and save a model bundle."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._encoder_args import add_encoder_arguments, encoder_changes
from ._paths import check_output

#: Heading of the options kept for experiments only (see docs/accuracy.md).
EXPERIMENTAL = "experimental (measured not to help: see docs/accuracy.md)"

HELP = "train an mclSTExp model on spatial transcriptomics samples with H&E images"

DESCRIPTION = """\
Train the mclSTExp model (contrastive image/spot embeddings + retrieval) on one or more samples
(.h5ad with raw counts, spot centres and a source image) and save a shareable model bundle (.mclst)
holding the weights, all hyperparameters, the gene panel and the reference bank of training spots.

Presets: paper   (the published reference behaviour: DenseNet-121, 90 epochs; needs a GPU),
         default (our best: defects of the reference fixed; GPU recommended),
         quick   (small CNN from scratch on 64 px patches; a few minutes on a laptop CPU).
A checkpoint is written after every epoch (default MODEL.mclst.ckpt); --resume continues from it.
Under torchrun every process trains on its share of each batch (DDP).
"""

EPILOG = """\
examples:
  mclstexp train B4.h5ad C2.h5ad C3.h5ad --out her2st.mclst --preset quick --genes her_hvg_785.npy
  mclstexp train *.h5ad --out model.mclst --preset default --device cuda --epochs 30
  mclstexp train *.h5ad --out model.mclst --weights none --resume
  mclstexp train *.h5ad --out uni.mclst --encoder uni --weights ~/models/uni/pytorch_model.bin
  mclstexp train *.h5ad --out uni_ridge.mclst --encoder uni --weights uni.bin --head ridge
  torchrun --nproc-per-node 4 -m napari_mclstexp.cli train *.h5ad --out model.mclst
"""


def register(subparsers) -> None:
    """Add the ``train`` sub-command."""
    p = subparsers.add_parser(
        "train",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("samples", nargs="+", metavar="SAMPLE.h5ad", help="training samples with images")
    p.add_argument("--out", required=True, metavar="MODEL.mclst", help="model bundle to write (atomically)")
    p.add_argument(
        "--preset",
        choices=("paper", "default", "quick"),
        default="default",
        help="hyperparameter preset (default: %(default)s)",
    )
    p.add_argument(
        "--tissue",
        default=None,
        metavar="TEXT",
        help='what the training slides show, for the model card: organ, disease, stain (e.g. "breast, HER2+, H&E")',
    )
    p.add_argument(
        "--notes", default=None, metavar="TEXT", help="free notes for the model card (source, protocol, caveats)"
    )
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="epochs (default: the preset's)")
    p.add_argument(
        "--device", default="auto", metavar="DEVICE", help="auto (default: cuda > mps > cpu), cpu, cuda, cuda:1, mps"
    )
    p.add_argument(
        "--genes",
        default=None,
        metavar="FILE|hvg:N[+G1,G2]",
        help="gene panel: a list file (.npy/.txt/.csv), hvg:N, or hvg:N+ERBB2,CD74 (the N most variable genes "
        "plus markers; default: genes common to all samples, up to 2000)",
    )
    add_encoder_arguments(p)
    p.add_argument("--seed", type=int, default=None, metavar="S", help="random seed (default: the preset's)")
    p.add_argument(
        "--batch-size", type=int, default=None, metavar="B", help="global batch size (default: the preset's)"
    )
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument(
        "--no-cuda-graph",
        action="store_true",
        help="run every training step eagerly instead of replaying a captured CUDA graph",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the image encoder (minutes of compiling first; needs a C++ "
        "compiler, and Triton on CUDA; falls back to eager if compiling fails)",
    )
    p.add_argument(
        "--checkpoint", default=None, metavar="PATH", help="checkpoint written every epoch (default: MODEL.mclst.ckpt)"
    )
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint if it exists")
    p.add_argument(
        "--descriptors",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also predict from fixed tissue descriptors (stain, colour, texture of the spot and its "
        "surroundings), blended with the retrieval at a weight chosen on held-out training data "
        "(default: the preset's; on in quick)",
    )
    p.add_argument(
        "--bank-extra",
        nargs="+",
        default=[],
        metavar="SAMPLE.h5ad",
        help="expression-only sections (no image needed) added to the reference bank",
    )
    p.add_argument(
        "--bins-per-epoch",
        type=int,
        default=None,
        metavar="N",
        help="binned data (Visium HD): train each epoch on a fresh spatially stratified sample of N "
        "bins (patch memory bounded by N) with ~110 µm patches",
    )
    p.add_argument(
        "--bank-size",
        type=int,
        default=None,
        metavar="N",
        help="reference bank of at most N spots/bins (stratified subsample; default: all)",
    )
    p.add_argument(
        "--stain-normalize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="map every training section's stain to the reference measured from their pooled tissue, and every "
        "new slide to it when predicting (default: off: sections are trained as scanned; the model always stores "
        "the sections' stains, and predict --stain auto leaves slides stained within their spread as scanned and "
        "moves others toward the nearest section's stain; mapping everything cost 0.035-0.039 ACG on HER2+ C4 as "
        "scanned, quick preset; see docs/accuracy.md)",
    )
    p.add_argument(
        "--stain-augment",
        type=float,
        default=None,
        metavar="S",
        help="random stain perturbation while training: H, E, DAB amounts scaled by 1 ± S and shifted by ± S "
        "(default: the preset's, 0: off in every preset; its effect on accuracy is not measured yet)",
    )
    experimental = p.add_argument_group(EXPERIMENTAL)
    experimental.add_argument(
        "--context-scale",
        type=int,
        default=None,
        metavar="S",
        help="the image encoder also sees an S× wider view around each spot, fused with the spot patch "
        "(1: the spot only; default: the preset's). Measured with the quick preset on HER2+ section C2: "
        "ACG 0.194 with S = 3 vs 0.198 without, for 2.2× the training time and 1.6× per whole-slide tile",
    )
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace):
    """The preset with the command line's overrides applied (a :class:`TrainConfig`)."""
    from ..errors import InputError
    from ..model.presets import get_preset

    changes = {}
    for key in (
        "epochs",
        "weights",
        "seed",
        "batch_size",
        "context_scale",
        "descriptors",
        "stain_normalize",
        "stain_augment",
    ):
        value = getattr(args, key, None)
        if value is not None:
            changes[key] = value
    encoder_changes(args, changes)
    if getattr(args, "fp32", False):
        changes["precision"] = "fp32"
    if getattr(args, "no_cuda_graph", False):
        changes["cuda_graph"] = False
    if getattr(args, "compile", False):
        changes["compile"] = True
    if changes.get("epochs", 1) < 1:
        raise InputError(f"--epochs must be at least 1, not {changes['epochs']}")
    if changes.get("encoder") == "smallcnn" and "weights" not in changes:
        changes["weights"] = "none"  # no pretrained weights exist for it
    return get_preset(args.preset).replace(**changes)


def run(args: argparse.Namespace) -> int:
    """Train, build the bundle (model + reference bank) and save it."""
    from ..io.h5ad import read_sample
    from ..progress import run_with_progress
    from ..workflows.train import checkpoint_for, train_and_save

    out = Path(args.out).expanduser()
    checkpoint = Path(args.checkpoint).expanduser() if args.checkpoint else checkpoint_for(out)
    check_output(out, [*args.samples, *(getattr(args, "bank_extra", None) or [])], suffix=".mclst")
    check_output(checkpoint, args.samples)
    config = config_from_args(args)
    samples = [read_sample(p, require_image=True) for p in args.samples]
    extra = [read_sample(p) for p in getattr(args, "bank_extra", None) or []]
    quiet = bool(getattr(args, "quiet", False))
    saved = run_with_progress(
        train_and_save(
            samples,
            config,
            out,
            genes=args.genes,
            device=args.device,
            checkpoint=checkpoint,
            resume=args.resume,
            bins_per_epoch=getattr(args, "bins_per_epoch", None),
            bank_size=getattr(args, "bank_size", None),
            bank_extra=extra,
            tissue=getattr(args, "tissue", None),
            notes=getattr(args, "notes", None),
        ),
        disable=quiet,
    )
    if saved.bundle is None or quiet:  # non-zero ranks of torchrun write and print nothing
        return 0
    result = saved.result
    last = result.history[-1] if result.history else {}
    n_epochs = len(result.history)
    print(
        f"saved {out} ({len(result.genes)} genes, {sum(a.n_obs for a in samples)} training spots, "
        f"{n_epochs} epoch{'' if n_epochs == 1 else 's'}, final loss {last.get('loss', float('nan')):.4f}, "
        f"{result.train_seconds:.0f} s training)"
    )
    if checkpoint.is_file():
        print(
            f"checkpoint {checkpoint} ({checkpoint.stat().st_size / 1e6:.0f} MB) kept for --resume; "
            "delete it when no longer needed"
        )
    return 0

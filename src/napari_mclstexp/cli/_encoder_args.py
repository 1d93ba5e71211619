"""Command-line options for the image encoder, freezing and the head (shared by ``train`` and ``cv``)."""

from __future__ import annotations

import argparse
from typing import Any

ENCODER_HELP = (
    "image encoder: densenet121, resnet18, resnet50, smallcnn, timm:<architecture> (any timm model), or a "
    "pathology foundation model: uni, uni2-h, h-optimus-0, h-optimus-1, virchow2, phikon-v2, prov-gigapath "
    "(default: the preset's)"
)


def add_encoder_arguments(p: argparse.ArgumentParser, *, weights: bool = True) -> None:
    """Add ``--encoder``, ``--weights``, ``--freeze/--no-freeze``, ``--unfreeze-last``, ``--head``,
    ``--embed-encoder``."""
    p.add_argument("--encoder", default=None, metavar="NAME", help=ENCODER_HELP)
    if weights:
        p.add_argument(
            "--weights",
            default=None,
            metavar="imagenet|none|hub|PATH",
            help="encoder weights: a local .safetensors/.bin/.pth file, hub (download through timm), "
            "imagenet or none (default: the preset's; foundation models need PATH or hub)",
        )
    p.add_argument(
        "--freeze",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="frozen encoder: features computed once per patch (cached), only heads and the spot "
        "side train (default: on for foundation models)",
    )
    p.add_argument(
        "--unfreeze-last",
        type=int,
        default=None,
        metavar="N",
        help="with --freeze: fine-tune the encoder's last N blocks end to end (GPU)",
    )
    p.add_argument(
        "--head",
        choices=("contrastive", "ridge"),
        default=None,
        help="contrastive: mclSTExp retrieval (default); ridge: PCA 256 + ridge on frozen features",
    )
    p.add_argument(
        "--embed-encoder",
        action="store_true",
        help="copy encoder weights from a local file into the bundle (default: referenced by hash)",
    )


def encoder_changes(args: argparse.Namespace, changes: dict[str, Any]) -> dict[str, Any]:
    """Add the encoder options of ``args`` to ``changes`` (TrainConfig overrides), with registry defaults.

    A foundation model sets its input size, µm patch size and ``freeze=True`` unless overridden;
    ``--head ridge`` implies a frozen encoder.
    """
    from ..model.foundation import encoder_options

    return encoder_options(
        changes,
        encoder=getattr(args, "encoder", None),
        freeze=getattr(args, "freeze", None),
        unfreeze_last=getattr(args, "unfreeze_last", None),
        head=getattr(args, "head", None),
        embed_encoder=bool(getattr(args, "embed_encoder", False)),
    )

"""``mclstexp info``: a model bundle's card: what it was trained on and how far to trust it."""

from __future__ import annotations

import argparse
import json

HELP = "show a model bundle's card: training sections and patients, tissue, genes, scale, reliability, novelty"

DESCRIPTION = """\
Show what a model bundle (.mclst) knows about itself: its training sections with their patients and
spot counts, the tissue and notes given at training (train --tissue/--notes), the gene panel and the
markers asked for, preset, encoder and weights, µm/px and patch size, the held-out reliability summary,
the novelty calibration, the training stains (and whether they were normalised), library versions and date.
Bundles made before format 2 show what they know (and say that their predictions carry no novelty score).
"""


def register(subparsers) -> None:
    """Add the ``info`` sub-command."""
    p = subparsers.add_parser(
        "info", help=HELP, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("model", metavar="MODEL.mclst", help="trained model bundle")
    p.add_argument("--json", action="store_true", help="print the card as JSON (for scripts)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Load the bundle and print its card."""
    from ..bundle import load_bundle
    from ..model_card import card_text

    bundle = load_bundle(args.model)
    card = bundle.card
    if args.json:
        print(json.dumps(card, indent=1, ensure_ascii=False))
    else:
        print(card_text(card, str(args.model)))
    return 0

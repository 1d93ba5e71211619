"""The ``mclstexp`` command line: one parser, one module per command (``<name>_cmd.py``)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence

from .. import __version__
from ..errors import MclstexpError

#: Command modules, in the order ``--help`` lists them.
COMMANDS = ("import", "train", "predict", "evaluate", "domains", "regions", "export", "cv", "info", "demo", "pretrain")


def build_parser() -> argparse.ArgumentParser:
    """Build the ``mclstexp`` argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="mclstexp",
        description=(
            "Predict spatial gene expression from H&E images with mclSTExp: import spatial "
            "transcriptomics data, train a model, predict genes on new slides, evaluate and find "
            "tissue domains."
        ),
        epilog=(
            "experimental (measured not to help: see docs/accuracy.md): the pretrain command (own-slide "
            "SimCLR pretraining) and train --context-scale (context views)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"{__name__}.{name}_cmd")
        module.register(sub)
    _accept_quiet_anywhere(parser)
    return parser


def _accept_quiet_anywhere(parser: argparse.ArgumentParser) -> None:
    """Let ``-q`` also follow the command (``mclstexp train ... -q``), in every sub-command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if "-q" not in child._option_string_actions:
                    child.add_argument(
                        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars"
                    )
                _accept_quiet_anywhere(child)


def _one_line_warning(command: str):
    """A :func:`warnings.showwarning` printing ``mclstexp COMMAND: warning: MESSAGE`` for user warnings."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, UserWarning) and not issubclass(category, DeprecationWarning):
            print(f"mclstexp {command}: warning: {message}", file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status.

    Errors the engine raises on purpose (bad input, cancelled work) print one line, no traceback,
    and give exit status 2.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    warnings.simplefilter("default", UserWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():  # our own warnings as one line each, not source file and code line
            warnings.simplefilter("default", UserWarning)
            warnings.showwarning = _one_line_warning(args.command)
            return int(args.run(args) or 0)
    except MclstexpError as err:
        print(f"mclstexp {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mclstexp {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if "torch.distributed" in sys.modules:  # under torchrun: leave the process group cleanly
            from ..train.distributed import shutdown_distributed

            shutdown_distributed()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

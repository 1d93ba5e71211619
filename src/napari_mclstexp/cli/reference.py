"""The command-line reference (``docs/cli.md``), written from the parsers themselves.

``python -m napari_mclstexp.cli.reference docs/cli.md`` regenerates it; a test regenerates it and compares,
so the page cannot drift from ``mclstexp COMMAND --help``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

#: Help is wrapped at this width whatever the terminal, so the page is the same on every machine.
WIDTH = 100

HEADER = """# Command-line reference

Generated from the parsers by `python -m napari_mclstexp.cli.reference docs/cli.md` (a test checks that it
matches `mclstexp COMMAND --help`).
"""


def _subcommands(parser: argparse.ArgumentParser, prefix: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _subcommands(child, f"{prefix} {name}")


def render() -> str:
    """The whole reference page as Markdown: ``mclstexp --help`` then each (sub-)command's help."""
    from . import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)
    try:
        parts = [HEADER]
        for name, parser in _subcommands(build_parser(), "mclstexp"):
            parser.prog = name
            parts.append(f"\n## `{name}`\n\n```text\n{parser.format_help().rstrip()}\n```\n")
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Write the reference to the path given (``docs/cli.md``), or print it."""
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if args:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

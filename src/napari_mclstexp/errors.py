"""Exceptions raised by the engine.

Every problem with user input is an :class:`InputError` subclass whose message names the file
and the problem.  The CLI and the widgets each catch :class:`MclstexpError` in exactly one place.
"""

from __future__ import annotations

import os
from pathlib import Path


class MclstexpError(Exception):
    """Base class of every error the engine raises on purpose."""


class InputError(MclstexpError, ValueError):
    """Bad user input; ``str(err)`` is ``"<path>: <problem>"`` when a path is known.

    Parameters
    ----------
    problem
        What is wrong, in words a biologist understands.
    path
        The file or folder concerned, if any.
    """

    def __init__(self, problem: str, path: str | os.PathLike | None = None) -> None:
        self.problem = problem
        self.path = Path(path) if path is not None else None
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class MissingInputError(InputError, FileNotFoundError):
    """A file or folder that should exist does not."""


class ImageReadError(InputError):
    """An image is unreadable, truncated, or not an image."""


class CountsError(InputError):
    """Counts are malformed: NaN, negative, empty (header only), or unparsable."""


class SpotMatchError(InputError):
    """Spots and counts (or spots and image) do not match."""


class SampleFormatError(InputError):
    """An AnnData sample breaks the project's conventions (see DESIGN.md)."""


class GenePanelError(InputError):
    """A gene list is unreadable, empty, or shares no genes with the data."""


class BundleError(InputError):
    """A model bundle is unreadable, corrupt, or of an unknown format version."""


class WeightsUnavailableError(InputError):
    """Pretrained weights could not be obtained (e.g. offline)."""


class CheckpointMismatchError(InputError):
    """A training checkpoint written for other data or other options than the run resuming it."""


class OutputError(InputError):
    """An output path is unusable (e.g. it would overwrite an input)."""


class Cancelled(MclstexpError):
    """Long work was cancelled by the user between two steps."""

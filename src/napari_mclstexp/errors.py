"""Exceptions raised by the engine.

Every problem with user input is an :class:`InputError` subclass whose message names the file
and the problem.  The CLI and the widgets each catch :class:`MclstexpError` in exactly one place.
"""

from __future__ import annotations

import os
from pathlib import Path


def _rebuild(cls: type, args: tuple, state: dict, cause: BaseException | None = None) -> MclstexpError:
    """Unpickle an engine error: built from its message, then its attributes (``problem``, ``path``, …)
    set as they were (the classes' ``__init__`` parameters differ)."""
    try:
        err = cls(*args)
    except TypeError:
        err = cls.__new__(cls)
        Exception.__init__(err, *args)
    err.__dict__.update(state)
    err.__cause__ = cause
    return err


class MclstexpError(Exception):
    """Base class of every error the engine raises on purpose (pickled with its type, message and
    attributes: errors of a worker process come back as they were raised)."""

    def __reduce__(self):
        return (_rebuild, (type(self), self.args, self.__dict__, self.__cause__))


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

"""Output-path checks shared by every command: never overwrite what the user gave us."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import OutputError


def check_output(
    out: str | os.PathLike | None,
    inputs: Iterable[str | os.PathLike | None],
    *,
    overwrite: bool = True,
    suffix: str | None = None,
) -> Path | None:
    """Refuse an output path that is a folder, is one of the inputs, or exists without ``overwrite``.

    Parameters
    ----------
    out
        The output path (``None``: nothing to check).
    inputs
        Input paths; the same file reached through another name (symlink, hard link) counts too.
    overwrite
        Whether an existing output file may be replaced.
    suffix
        Expected file suffix, used only to word the folder error (e.g. ``".h5ad"``).

    Returns
    -------
    pathlib.Path or None
        ``out`` with ``~`` expanded.

    Raises
    ------
    OutputError
        Naming the output path and the problem.
    """
    if out is None:
        return None
    path = Path(out).expanduser()
    if path.is_dir():
        raise OutputError(f"output path is a folder; give a{' ' + suffix if suffix else ''} file name", path)
    for item in inputs:
        if item is None:
            continue
        src = Path(item).expanduser()
        same = path.resolve() == src.resolve()
        if not same and path.exists() and src.exists():
            same = os.path.samefile(path, src)
        if same:
            raise OutputError("the output would overwrite an input file; choose another --out", path)
    if path.exists() and not overwrite:
        raise OutputError("already exists (add --overwrite to replace it)", path)
    return path

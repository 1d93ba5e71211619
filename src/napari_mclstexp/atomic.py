"""Atomic file writes: never leave a half-written file where a user expects a good one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _current_umask() -> int:
    """The process umask, read without changing it where the OS allows (thread-safe on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block succeeds.

    Parameters
    ----------
    path
        Final destination.  Its folder is created if needed.
    suffix
        Suffix of the temporary file (defaults to the destination's, so writers that look at the
        extension behave).

    Notes
    -----
    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{dest.name}.",
        suffix=(suffix if suffix is not None else "".join(dest.suffixes)) + ".part",
        dir=dest.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600 files; give the result the permissions a plain open() would.
    os.chmod(tmp, 0o666 & ~_current_umask())
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def check_writable_folder(path: Path, what: str) -> None:
    """Create ``path``'s folder if needed and check a file can be written there, before long work starts.

    Raises :class:`~napari_mclstexp.errors.OutputError` naming ``path`` and ``what`` would be written.
    """
    from .errors import OutputError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as err:
        raise OutputError(f"cannot write {what} here ({err.strerror or err})", path) from err

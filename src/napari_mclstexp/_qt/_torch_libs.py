"""Load torch's shared libraries without holding the GIL, just before a worker thread first imports torch.

Importing torch in a napari worker thread froze the window for 0.24–0.36 s at a time (measured: the longest
gap between the ticks of a 1 ms loop in the main thread while a thread ran ``import torch``, 2-core
machine): the extension ``torch._C`` pulls in ``libtorch_cpu`` and friends with ``dlopen``, whose static
initialisers run for a third of a second while Python's import machinery holds the GIL.  The panel's training
(its checks and the saved bundle) and every prediction import torch in the viewer's process.

:func:`preload_torch_libraries` calls the C library's ``dlopen`` through :mod:`ctypes` (a foreign call: the
GIL is released) on the libraries ``import torch`` would load, with the flags torch and Python use
(``libtorch_global_deps`` global, as torch loads it first; ``libtorch_python`` and its dependencies local, as
Python loads an extension).  The ``import torch`` right after finds them loaded; its longest hold of the GIL
fell to 65–75 ms in the same measurement.  It is called in the worker, right before the import, not ahead of
time: a preload started when the widgets opened (in a thread of its own, GIL released) still slowed the opening
panel on 2 cores (longest gap 79 → 265 ms, 5 runs each).  Linux only; anywhere else, or when a library is missing
or fails to load, nothing is done and torch loads as usual.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from pathlib import Path

#: The libraries, in torch's own order, with their ``dlopen`` flags.
_LIBRARIES = (
    ("libtorch_global_deps.so", "RTLD_GLOBAL"),
    ("libtorch_python.so", "RTLD_LOCAL"),
)


def torch_lib_dir() -> Path | None:
    """``torch/lib`` of the installed torch, found without importing it (``None``: not installed)."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "lib"


def preload_torch_libraries() -> bool:
    """``dlopen`` torch's libraries with the GIL released; ``True`` when all of them are loaded.

    Does nothing (``False``) when torch is already imported, off Linux, or when a library is absent or cannot
    be loaded (``import torch`` then loads it as usual and says why, if it must).
    """
    if "torch" in sys.modules or not sys.platform.startswith("linux"):
        return False
    lib = torch_lib_dir()
    if lib is None:
        return False
    try:
        libc = ctypes.CDLL(None)
        dlopen = libc.dlopen
    except (OSError, AttributeError):  # a C library without dlopen (glibc < 2.34 keeps it in libdl)
        try:
            dlopen = ctypes.CDLL("libdl.so.2").dlopen
        except (OSError, AttributeError):
            return False
    dlopen.restype = ctypes.c_void_p
    dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    for name, scope in _LIBRARIES:
        path = lib / name
        if not path.is_file() or not dlopen(os.fsencode(path), os.RTLD_NOW | getattr(os, scope)):
            return False
    return True

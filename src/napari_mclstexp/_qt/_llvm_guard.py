"""Keep torch from loading Triton next to Mesa's LLVM (software OpenGL): the process would segfault.

``torch.optim`` imports ``torch._dynamo``, which probes ``import triton``; ``libtriton.so`` carries its
own LLVM whose static initialisers crash when Mesa's ``libLLVM`` (llvmpipe, used by napari's canvas on
machines without a GPU driver, e.g. under Xvfb) is already mapped.  Triton is only useful for
``torch.compile`` on CUDA, which the widgets never use, so it is hidden from torch in that case only.
"""

from __future__ import annotations

import sys


def mesa_llvm_loaded() -> bool:
    """Whether a system ``libLLVM`` is mapped into this process (Linux; ``False`` elsewhere)."""
    try:
        with open("/proc/self/maps") as maps:
            return any("libLLVM" in line for line in maps)
    except OSError:
        return False


def guard_triton() -> bool:
    """Hide Triton from torch when Mesa's LLVM is loaded and Triton is not yet; returns whether it did."""
    if "triton" in sys.modules or not mesa_llvm_loaded():
        return False
    sys.modules["triton"] = None  # ``import triton`` now raises ImportError: torch skips it
    return True

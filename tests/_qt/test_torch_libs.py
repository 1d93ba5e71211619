"""torch's shared libraries are loaded in the background without the GIL (issue 24: importing torch in a worker
thread held the GIL for 0.24–0.36 s, a freeze of the window), and torch works after it."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = r"""
import sys
from napari_mclstexp._qt._torch_libs import preload_torch_libraries
assert "torch" not in sys.modules
print("PRELOADED", preload_torch_libraries())
assert "torch" not in sys.modules, "the preload must not import torch"
maps = open("/proc/self/maps").read()
print("MAPPED", "libtorch_cpu.so" in maps)
import torch
x = torch.arange(6.0).reshape(2, 3)
print("SUM", float((x @ x.T).sum()))
print("AGAIN", preload_torch_libraries())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the preload is Linux-only")
def test_preload_maps_torch_without_importing_it_and_torch_then_works():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    assert lines["PRELOADED"] == "True" and lines["MAPPED"] == "True"
    assert float(lines["SUM"]) == 83.0  # [[0, 1, 2], [3, 4, 5]] times its transpose: 5 + 14 + 14 + 50
    assert lines["AGAIN"] == "False"  # once torch is imported there is nothing left to do

"""Benchmarks of napari-mclstexp: one entry, ``python -m benchmarks PART [args]`` from the repository root.

``python -m benchmarks`` lists the parts with the goal each one measures (``benchmarks/__main__.py``); every
part writes its figures as JSON into ``benchmarks/results/``.  What the figures were, when and on which
machine: ``docs/benchmarks.md`` (speed) and ``docs/accuracy.md`` (accuracy, and the finished one-time
studies whose scripts have left the tree).

Importing the package puts this checkout's ``src/`` first on ``sys.path``, so a benchmark measures the code
beside it rather than another installed copy.
"""

from __future__ import annotations

import sys
from pathlib import Path

_SRC = Path(__file__).resolve().parents[1] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

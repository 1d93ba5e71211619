"""Moved to :mod:`napari_mclstexp.layer_data` (no Qt in it; napari's readers use it too).  Kept so code
written against this path keeps importing; new code imports ``napari_mclstexp.layer_data``."""

from __future__ import annotations

from ..layer_data import *  # noqa: F403
from ..layer_data import __all__  # noqa: F401

"""Synthetic data made by the project's own code: slides, Visium HD folders, cohorts and SpatialData stores.

They serve the offline demo (``sample_data/``), the tests and the benchmarks; nothing in the engine's
prediction path imports them.  ``slides`` holds the H&E-like renderer the others build on.
"""

from __future__ import annotations

from .slides import make_demo_slide, make_synthetic_sample, region_map, render_he

__all__ = ["make_demo_slide", "make_synthetic_sample", "region_map", "render_he"]

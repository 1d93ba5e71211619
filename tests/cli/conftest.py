"""Fixtures for the command tests that predict."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_bundle(make_tiny_bundle):
    """A tiny untrained bundle built with the real model code (see ``make_tiny_bundle``)."""
    return make_tiny_bundle()

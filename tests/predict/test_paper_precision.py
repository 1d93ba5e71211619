"""Queries are embedded in the precision the model trained in: ``paper`` → fp32, as the reference."""

from __future__ import annotations

from types import SimpleNamespace

from napari_mclstexp.model.presets import get_preset
from napari_mclstexp.predict.spots import bundle_precision


def test_bundle_precision_follows_training():
    assert bundle_precision(SimpleNamespace(config=get_preset("paper").to_dict())) == "fp32"
    assert bundle_precision(SimpleNamespace(config=get_preset("default").to_dict())) == "bf16"
    old = {k: v for k, v in get_preset("default").to_dict().items() if k != "precision"}
    assert bundle_precision(SimpleNamespace(config=old)) == "bf16"

"""Presets: round trip, validation, and the paper preset's reference choices."""

from __future__ import annotations

import json

import pytest

from napari_mclstexp.errors import InputError
from napari_mclstexp.model.presets import PRESETS, TrainConfig, as_config, get_preset


@pytest.mark.parametrize("name", PRESETS)
def test_preset_round_trips_through_json(name):
    cfg = get_preset(name)
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert as_config(cfg.to_dict()) == cfg
    assert as_config(name) == cfg


def test_paper_preset_matches_reference_code():
    cfg = get_preset("paper")
    assert (cfg.encoder, cfg.weights, cfg.image_norm) == ("densenet121", "imagenet", "none")
    assert (cfg.pos_table, cfg.pos_rows, cfg.context, cfg.bank_chunk) == ("fixed", 65536, "batch", 32)
    assert (cfg.l2_normalize, cfg.temperature, cfg.learn_temperature, cfg.targets) == (False, 1.0, False, "hard")
    assert (cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.batch_size, cfg.epochs) == ("adam", 1e-4, 1e-3, 128, 90)
    assert (cfg.k, cfg.distance, cfg.normalization) == (200, "l1", "log10_1e4")
    assert cfg.color_jitter == (0.5, 0.5, 0.5) and cfg.rotate_deg == 180.0 and cfg.flips
    assert cfg.precision == "fp32" and cfg.embed_dim == 256


def test_default_and_quick_fix_reference_defects():
    for name in ("default", "quick"):
        cfg = get_preset(name)
        assert cfg.pos_table == "data" and cfg.context == "spot" and cfg.l2_normalize
    assert get_preset("default").image_norm == "imagenet"
    assert get_preset("quick").weights == "none" and get_preset("quick").input_px == 64


def test_bad_options_raise_input_error():
    with pytest.raises(InputError, match="unknown preset"):
        get_preset("fast")
    with pytest.raises(InputError, match="unknown training option"):
        TrainConfig.from_dict({"lr": 1e-3, "learning_rate": 1})
    with pytest.raises(InputError, match="distance"):
        get_preset("quick").replace(distance="cosine")
    with pytest.raises(InputError, match="batch_size"):
        get_preset("quick").replace(batch_size=0)

"""Default batch sizes: larger CPU batches for small model inputs, bounded by the pixels of 64 × 224 px."""

from types import SimpleNamespace

import pytest
import torch

from napari_mclstexp.predict.spots import DEFAULT_BATCH, default_batch


def _bundle(input_px: int, context_scale: int = 1) -> SimpleNamespace:
    return SimpleNamespace(config={"input_px": input_px, "context_scale": context_scale})


@pytest.mark.parametrize(
    ("input_px", "scale", "expected"),
    [(64, 1, 256), (112, 1, 256), (160, 1, 125), (224, 1, 64), (448, 1, 64), (64, 3, 87)],
)
def test_cpu_batches_grow_for_small_inputs_up_to_four_times(input_px, scale, expected):
    assert default_batch(torch.device("cpu"), _bundle(input_px, scale)) == expected


def test_other_devices_keep_their_default():
    assert default_batch(torch.device("cuda"), _bundle(64)) == DEFAULT_BATCH["cuda"]
    assert default_batch(torch.device("meta"), _bundle(64)) == 64

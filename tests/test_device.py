"""Device resolution."""

from __future__ import annotations

import pytest
import torch

from napari_mclstexp.device import available_devices, resolve_device
from napari_mclstexp.errors import InputError


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else available_devices()[0]
    assert resolve_device("auto").type == expected
    assert available_devices()[-1] == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA: checks the message of a machine without CUDA")
def test_missing_cuda_is_input_error():
    with pytest.raises(InputError, match="CUDA is not available"):
        resolve_device("cuda")


def test_unknown_device():
    with pytest.raises(InputError, match="device"):
        resolve_device("tpu-9000")


def test_release_gpu_memory_reports_what_it_did():
    import torch

    from napari_mclstexp.device import release_gpu_memory

    msg = release_gpu_memory()
    if torch.cuda.is_available():
        assert msg.startswith("released") and "MiB" in msg
    else:
        assert msg in ("no GPU here; caches cleared", "released MPS cache")

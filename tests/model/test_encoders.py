"""Image encoders: output sizes, local weight files, offline ImageNet weights."""

from __future__ import annotations

import urllib.error

import pytest
import torch

from napari_mclstexp.errors import InputError, MissingInputError, WeightsUnavailableError
from napari_mclstexp.model.encoders import make_image_encoder


@pytest.mark.parametrize("name,dim", [("resnet18", 512), ("smallcnn", 256)])
def test_encoder_output_size(name, dim):
    model, out_dim = make_image_encoder(name, "none")
    assert out_dim == dim
    with torch.no_grad():
        assert model.eval()(torch.rand(2, 3, 64, 64)).shape == (2, dim)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_weights_file_is_loaded(tmp_path, suffix):
    torch.manual_seed(3)
    source, _ = make_image_encoder("resnet18", "none")
    state = {f"module.{k}": v for k, v in source.state_dict().items()}  # DDP-style prefix
    path = tmp_path / f"w{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    torch.manual_seed(4)
    loaded, _ = make_image_encoder("resnet18", str(path))
    for key, value in source.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_bad_local_weights(tmp_path):
    with pytest.raises(MissingInputError):
        make_image_encoder("resnet18", str(tmp_path / "absent.pth"))
    other, _ = make_image_encoder("smallcnn", "none")
    path = tmp_path / "small.pth"
    torch.save(other.state_dict(), path)
    with pytest.raises(WeightsUnavailableError, match="do not fit"):
        make_image_encoder("resnet18", str(path))
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(WeightsUnavailableError, match="cannot read"):
        make_image_encoder("resnet18", str(tmp_path / "junk.pth"))


def test_imagenet_offline_gives_clear_error(tmp_path, monkeypatch):
    calls = []

    def offline(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty hub cache
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsUnavailableError, match="--weights PATH") as err:
        make_image_encoder("resnet18", "imagenet")
    assert "--weights none" in str(err.value)
    assert calls and calls[0].startswith("https://")
    with pytest.raises(WeightsUnavailableError):
        make_image_encoder("smallcnn", "imagenet")


def test_unknown_encoder():
    with pytest.raises(InputError, match="unknown image encoder"):
        make_image_encoder("vit_h", "none")

"""timm encoders and the pathology foundation-model registry: architectures, recipes, weights files, hub errors."""

from __future__ import annotations

import pytest
import torch

from napari_mclstexp.errors import InputError, WeightsUnavailableError
from napari_mclstexp.model.encoders import make_image_encoder
from napari_mclstexp.model.foundation import (
    REGISTRY,
    TimmEncoder,
    encoder_defaults,
    foundation_spec,
)

TINY = "timm:vit_tiny_patch16_224"


def _tiny_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    enc, _ = make_image_encoder(TINY, "none", input_px=32)
    return {k: v.clone() for k, v in enc.model.state_dict().items()}


def test_timm_name_builds_a_normalising_encoder():
    enc, dim = make_image_encoder(TINY, "none", input_px=32)
    assert isinstance(enc, TimmEncoder) and enc.normalises and dim == 192
    with torch.no_grad():
        assert enc.eval()(torch.rand(3, 3, 32, 32)).shape == (3, 192)
    # timm's own normalisation of this architecture (0.5/0.5), not ImageNet's
    assert torch.allclose(enc.mean.flatten(), torch.tensor([0.5, 0.5, 0.5]))


def test_unknown_timm_architecture():
    with pytest.raises(InputError, match="unknown timm architecture"):
        make_image_encoder("timm:no_such_net_xyz", "none")


@pytest.mark.parametrize(
    "name,dim,params_m", [("uni", 1024, 303.4), ("virchow2", 2560, 631.2), ("h-optimus-0", 1536, 1134.8)]
)
def test_registry_architectures_match_published_sizes(name, dim, params_m):
    # built on the meta device: no memory, no download; sizes are the model cards' (UNI 303 M, Virchow2 632 M,
    # H-optimus-0 1.1 B parameters)
    with torch.device("meta"):
        enc, out_dim = make_image_encoder(name, "none")
    assert out_dim == dim
    assert sum(p.numel() for p in enc.parameters()) / 1e6 == pytest.approx(params_m, rel=0.01)


def test_virchow2_recipe_concatenates_class_and_mean_patch_tokens():
    spec = foundation_spec("Virchow2")
    assert spec.recipe == "cls+mean" and spec.mpp == 0.5 and spec.input_px == 224
    import timm

    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, num_classes=0, reg_tokens=4, no_embed_class=True)
    enc = TimmEncoder(vit, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "cls+mean").eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        tokens = vit.forward_features(x)
        want = torch.cat([tokens[:, 0], tokens[:, 5:].mean(1)], dim=-1)
        torch.testing.assert_close(enc(x), want)
    assert enc.out_dim == 384


def test_registry_defaults_cut_patches_at_the_encoders_microns():
    assert encoder_defaults("uni") == {"input_px": 224, "patch_um": 112.0, "freeze": True}
    assert encoder_defaults("resnet18") == {}
    assert foundation_spec("H-OPTIMUS-1").mean[0] == pytest.approx(0.707223)
    assert {"uni", "uni2-h", "h-optimus-0", "h-optimus-1", "virchow2", "phikon-v2", "prov-gigapath"} <= set(REGISTRY)


def test_safetensors_and_prefixed_bin_weights_load(tmp_path):
    from safetensors.torch import save_file

    state = _tiny_state(seed=5)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "w.safetensors"))
    torch.save({"state_dict": {f"module.backbone.{k}": v for k, v in state.items()}}, tmp_path / "w.bin")
    for name in ("w.safetensors", "w.bin"):
        torch.manual_seed(99)
        enc, _ = make_image_encoder(TINY, str(tmp_path / name), input_px=32)
        for key, value in state.items():
            torch.testing.assert_close(enc.model.state_dict()[key], value)


def test_wrong_weights_file_names_keys(tmp_path):
    state = _tiny_state()
    state.pop("blocks.0.attn.qkv.weight")
    state["extra.layer.weight"] = torch.zeros(2)
    state["pos_embed"] = torch.zeros(1, 7, 192)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsUnavailableError) as info:
        make_image_encoder(TINY, str(tmp_path / "bad.pth"), input_px=32)
    msg = str(info.value)
    assert "blocks.0.attn.qkv.weight" in msg and "extra.layer.weight" in msg and "pos_embed" in msg
    assert "bad.pth" in msg


def test_hub_weights_offline_give_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache: nothing to fall back on
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(WeightsUnavailableError, match="MahmoodLab/UNI.*offline.*--weights PATH"):
        make_image_encoder("uni", "hub")
    with pytest.raises(WeightsUnavailableError, match="offline"):
        make_image_encoder(TINY, "hub", input_px=32)


def test_phikon_v2_from_hub_says_to_convert():
    with pytest.raises(WeightsUnavailableError, match="transformers"):
        make_image_encoder("phikon-v2", "hub")


def test_gated_hub_model_says_how_to_get_access(monkeypatch):
    import timm

    class GatedRepoError(Exception):  # what huggingface_hub raises without an accepted licence
        pass

    def refuse(*args, **kwargs):
        raise GatedRepoError("401 Client Error: access to model MahmoodLab/UNI is restricted")

    monkeypatch.setattr(timm, "create_model", refuse)
    with pytest.raises(WeightsUnavailableError, match="gated.*licence.*huggingface-cli login.*--weights PATH"):
        make_image_encoder("uni", "hub")

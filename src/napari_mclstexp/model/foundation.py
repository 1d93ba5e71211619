"""timm image encoders: any ``timm:<architecture>`` and a registry of pathology foundation models.

Each registry entry fixes what its model card publishes: the timm architecture and keyword arguments,
the input size (px), the normalisation (mean/std), the pixel size it was trained at (µm/px) and the
embedding recipe (``"token"``: the class token / timm's pooled output; ``"cls+mean"``: class token
concatenated with the mean of the patch tokens, as Virchow2's card prescribes).  Patches for these
encoders are cut at ``input_px × mpp`` µm around each spot and resampled to ``input_px``, whatever the
slide's µm/px (``encoder_defaults``).

Weights: ``"none"`` (random initialisation), a local file (``.safetensors``/``.bin``/``.pth``, see
:mod:`.weights`), or ``"hub"`` (downloaded through timm from the entry's hub id; ``"imagenet"`` is
timm's default pretrained tag for ``timm:`` names).  Downloading needs network access and, for gated
models, an accepted licence and a token; failing either raises one
:class:`~napari_mclstexp.errors.WeightsUnavailableError` saying what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import InputError, WeightsUnavailableError
from .weights import load_weights_file

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: H-optimus-0/1 normalisation (Bioptimus model card).
HOPTIMUS_MEAN = (0.707223, 0.578729, 0.703617)
HOPTIMUS_STD = (0.211883, 0.230117, 0.177517)
TIMM_PREFIX = "timm:"


@dataclass(frozen=True)
class FoundationModel:
    """A published pathology encoder.

    Attributes
    ----------
    arch
        timm architecture name.
    kwargs
        Keyword arguments for ``timm.create_model`` (besides ``num_classes=0``); callables are given
        as names (``"SwiGLUPacked"``, ``"SiLU"``) so the registry stays data.
    input_px
        Encoder input edge (px).
    mpp
        Pixel size the model was trained at (µm/px); patches span ``input_px × mpp`` µm.
    mean, std
        Input normalisation of [0, 1] RGB.
    recipe
        ``"token"`` or ``"cls+mean"``.
    dim
        Embedding size (features).
    hub
        Model-hub id (``hf-hub:...``) or None when the weights are not published in timm's format.
    note
        One line for users (licence, gating, conversion).
    """

    arch: str
    kwargs: dict[str, Any]
    input_px: int
    mpp: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    recipe: str
    dim: int
    hub: str | None
    note: str = ""
    aliases: tuple[str, ...] = field(default=())


_VIT_G14 = {"img_size": 224, "init_values": 1e-5, "dynamic_img_size": False}
_UNI2 = {
    "img_size": 224,
    "patch_size": 14,
    "depth": 24,
    "num_heads": 24,
    "init_values": 1e-5,
    "embed_dim": 1536,
    "mlp_ratio": 2.66667 * 2,
    "no_embed_class": True,
    "mlp_layer": "SwiGLUPacked",
    "act_layer": "SiLU",
    "reg_tokens": 8,
    "dynamic_img_size": True,
}
_VIRCHOW2 = {
    "img_size": 224,
    "init_values": 1e-5,
    "mlp_ratio": 5.3375,
    "global_pool": "",
    "dynamic_img_size": True,
    "mlp_layer": "SwiGLUPacked",
    "act_layer": "SiLU",
    "reg_tokens": 4,
    "no_embed_class": True,
}
_GIGAPATH = {
    "img_size": 224,
    "patch_size": 16,
    "embed_dim": 1536,
    "depth": 40,
    "num_heads": 24,
    "init_values": 1e-5,
    "mlp_ratio": 5.33334,
}

#: Pathology foundation models by name (lower case).
REGISTRY: dict[str, FoundationModel] = {
    "uni": FoundationModel(
        "vit_large_patch16_224",
        {"img_size": 224, "patch_size": 16, "init_values": 1e-5, "dynamic_img_size": True},
        224,
        0.5,
        IMAGENET_MEAN,
        IMAGENET_STD,
        "token",
        1024,
        "hf-hub:MahmoodLab/UNI",
        "UNI ViT-L/16 (Mahmood lab); gated on the hub: accept the licence, then log in",
        ("uni-v1",),
    ),
    "uni2-h": FoundationModel(
        "vit_giant_patch14_224",
        _UNI2,
        224,
        0.5,
        IMAGENET_MEAN,
        IMAGENET_STD,
        "token",
        1536,
        "hf-hub:MahmoodLab/UNI2-h",
        "UNI2-h ViT-H/14 with 8 register tokens; gated on the hub",
        ("uni2",),
    ),
    "h-optimus-0": FoundationModel(
        "vit_giant_patch14_reg4_dinov2",
        _VIT_G14,
        224,
        0.5,
        HOPTIMUS_MEAN,
        HOPTIMUS_STD,
        "token",
        1536,
        "hf-hub:bioptimus/H-optimus-0",
        "H-optimus-0 ViT-g/14 (Bioptimus)",
        ("hoptimus0",),
    ),
    "h-optimus-1": FoundationModel(
        "vit_giant_patch14_reg4_dinov2",
        _VIT_G14,
        224,
        0.5,
        HOPTIMUS_MEAN,
        HOPTIMUS_STD,
        "token",
        1536,
        "hf-hub:bioptimus/H-optimus-1",
        "H-optimus-1 ViT-g/14 (Bioptimus); gated on the hub",
        ("hoptimus1",),
    ),
    "virchow2": FoundationModel(
        "vit_huge_patch14_224",
        _VIRCHOW2,
        224,
        0.5,
        IMAGENET_MEAN,
        IMAGENET_STD,
        "cls+mean",
        2560,
        "hf-hub:paige-ai/Virchow2",
        "Virchow2 ViT-H/14 (Paige), class token + mean patch token; gated",
    ),
    "phikon-v2": FoundationModel(
        "vit_large_patch16_224",
        {"img_size": 224, "patch_size": 16, "init_values": 1e-5},
        224,
        0.5,
        IMAGENET_MEAN,
        IMAGENET_STD,
        "token",
        1024,
        None,
        "Phikon-v2 ViT-L/16 (Owkin) is published for HF transformers: pass a timm-converted file with --weights",
        ("phikon2",),
    ),
    "prov-gigapath": FoundationModel(
        "vit_giant_patch14_dinov2",
        _GIGAPATH,
        224,
        0.5,
        IMAGENET_MEAN,
        IMAGENET_STD,
        "token",
        1536,
        "hf-hub:prov-gigapath/prov-gigapath",
        "Prov-GigaPath tile encoder ViT-g (Microsoft/Providence); gated",
        ("gigapath",),
    ),
}


def foundation_spec(name: str) -> FoundationModel | None:
    """The registry entry for ``name`` (case-insensitive, aliases accepted), else None."""
    key = name.lower()
    if key in REGISTRY:
        return REGISTRY[key]
    for spec in REGISTRY.values():
        if key in spec.aliases:
            return spec
    return None


def is_timm_encoder(name: str) -> bool:
    """Whether ``name`` is served by this module (``timm:<arch>`` or a registry name)."""
    return name.startswith(TIMM_PREFIX) or foundation_spec(name) is not None


def _resolve_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    from timm.layers import SwiGLUPacked

    named = {"SwiGLUPacked": SwiGLUPacked, "SiLU": nn.SiLU, "GELU": nn.GELU}
    return {k: named.get(v, v) if isinstance(v, str) and k.endswith("_layer") else v for k, v in kwargs.items()}


class TimmEncoder(nn.Module):
    """A timm backbone mapping float (N, 3, H, W) images in [0, 1] to (N, out_dim) features.

    It applies its own normalisation (``normalises = True``: the mclSTExp model then skips its
    ImageNet one) and its embedding recipe.  State-dict keys are the timm model's under ``model.``.
    """

    normalises = True

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...], recipe: str) -> None:
        super().__init__()
        if recipe not in ("token", "cls+mean"):
            raise InputError(f"unknown embedding recipe {recipe!r} (token, cls+mean)")
        self.model = model
        self.recipe = recipe
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        width = int(getattr(model, "num_features", 0) or getattr(model, "embed_dim", 0))
        self.out_dim = 2 * width if recipe == "cls+mean" else width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        if self.recipe == "token":
            return self.model(x)
        tokens = self.model.forward_features(x)
        prefix = int(getattr(self.model, "num_prefix_tokens", 1))
        return torch.cat([tokens[:, 0], tokens[:, prefix:].mean(dim=1)], dim=-1)


def _hub_error(hub_id: str, err: Exception) -> WeightsUnavailableError:
    kind = type(err).__name__
    if "Gated" in kind or "401" in str(err) or "403" in str(err):
        what = (
            f"access to {hub_id} is gated: accept its licence on huggingface.co, run "
            "`huggingface-cli login`, or download the weights file and pass --weights PATH"
        )
    else:
        what = (
            f"cannot download {hub_id} ({kind}); you seem to be offline (or HF_HUB_OFFLINE is set): "
            "download the weights file elsewhere and pass --weights PATH, or --weights none"
        )
    return WeightsUnavailableError(what)


def make_timm_encoder(name: str, weights: str = "none", input_px: int | None = None) -> tuple[TimmEncoder, int]:
    """Build a timm encoder (``timm:<arch>`` or a registry name) with its weights.

    Parameters
    ----------
    name
        ``"timm:<architecture>"`` (any ``timm.list_models()`` name) or a :data:`REGISTRY` name.
    weights
        ``"none"``, ``"hub"``/``"imagenet"`` (download through timm), or a local file path.
    input_px
        Input edge (px) for ``timm:`` ViTs (``img_size``); registry models use their own.

    Returns
    -------
    (module, out_dim)
    """
    import timm

    spec = foundation_spec(name)
    if spec is not None:
        arch, kwargs = spec.arch, _resolve_kwargs(spec.kwargs)
        mean, std, recipe, hub = spec.mean, spec.std, spec.recipe, spec.hub
    else:
        arch = name[len(TIMM_PREFIX) :]
        if not arch or not timm.is_model(arch):
            raise InputError(f"unknown timm architecture {arch!r} (see timm.list_models())")
        kwargs = {"img_size": int(input_px)} if input_px and arch.startswith(("vit_", "deit", "eva")) else {}
        cfg = timm.models.get_pretrained_cfg(arch)
        mean = tuple(getattr(cfg, "mean", IMAGENET_MEAN) or IMAGENET_MEAN) if cfg else IMAGENET_MEAN
        std = tuple(getattr(cfg, "std", IMAGENET_STD) or IMAGENET_STD) if cfg else IMAGENET_STD
        recipe, hub = "token", None
    pretrained = weights in ("hub", "imagenet")
    try:
        if pretrained and spec is not None:
            if hub is None:
                raise WeightsUnavailableError(f"{name}: {spec.note}")
            model = timm.create_model(hub, pretrained=True, num_classes=0, **kwargs)
        else:
            model = timm.create_model(arch, pretrained=pretrained, num_classes=0, **kwargs)
    except WeightsUnavailableError:
        raise
    except Exception as err:  # offline, gated, HTTP, missing cache entries
        if not pretrained:
            raise InputError(f"cannot build timm model {arch!r}: {err}") from err
        raise _hub_error(hub or f"timm/{arch}", err) from err
    if not pretrained and weights != "none":
        load_weights_file(model, weights, name)
    enc = TimmEncoder(model, mean, std, recipe)
    return enc, enc.out_dim


def encoder_defaults(name: str) -> dict[str, Any]:
    """TrainConfig values a registry encoder imposes: ``input_px``, ``patch_um`` and ``freeze``.

    Empty for other encoders.
    """
    spec = foundation_spec(name)
    if spec is None:
        return {}
    return {"input_px": spec.input_px, "patch_um": float(spec.input_px * spec.mpp), "freeze": True}


def preprocessing(encoder: Any) -> dict[str, Any]:
    """JSON description of an encoder's input preprocessing (recorded in bundles)."""
    if isinstance(encoder, TimmEncoder):
        return {
            "mean": [float(v) for v in encoder.mean.flatten()],
            "std": [float(v) for v in encoder.std.flatten()],
            "recipe": encoder.recipe,
            "by": "encoder",
        }
    return {"by": "model"}


def encoder_options(
    changes: dict[str, Any],
    *,
    encoder: str | None = None,
    freeze: bool | None = None,
    unfreeze_last: int | None = None,
    head: str | None = None,
    embed_encoder: bool = False,
) -> dict[str, Any]:
    """Add encoder choices to ``changes`` (TrainConfig overrides), with the rules CLI and widget share.

    A foundation model sets its input size, µm patch size, ``freeze=True`` and ``weights="hub"``
    unless ``changes`` already has them; ``unfreeze_last`` implies ``freeze``; ``head="ridge"`` needs a
    frozen encoder.  Returns ``changes`` (modified in place).
    """
    if encoder:
        changes["encoder"] = encoder
        for key, value in encoder_defaults(encoder).items():
            changes.setdefault(key, value)
        if foundation_spec(encoder) is not None:
            changes.setdefault("weights", "hub")
    if freeze is not None:
        changes["freeze"] = bool(freeze)
    if unfreeze_last is not None:
        changes["unfreeze_last"] = int(unfreeze_last)
        if unfreeze_last > 0:
            changes["freeze"] = True
    if head:
        changes["head"] = head
        if head == "ridge":
            changes["freeze"] = True
    if embed_encoder:
        changes["embed_encoder"] = True
    return changes

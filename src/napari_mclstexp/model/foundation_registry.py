"""The registry of pathology foundation encoders and the TrainConfig rules they impose, without model code.

The widgets and the CLI read these (names, input sizes, µm/px, the options an encoder implies) in the GUI
process; importing them must not import torch (seconds of the GUI thread on the Train click, measured:
the Train widget's fields resolved their options through :mod:`.foundation`, which builds the models).
:mod:`.foundation` re-exports everything here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


def encoder_defaults(name: str) -> dict[str, Any]:
    """TrainConfig values a registry encoder imposes: ``input_px``, ``patch_um`` and ``freeze``.

    Empty for other encoders.
    """
    spec = foundation_spec(name)
    if spec is None:
        return {}
    return {"input_px": spec.input_px, "patch_um": float(spec.input_px * spec.mpp), "freeze": True}


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

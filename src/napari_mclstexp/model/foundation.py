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

from typing import Any

import torch
from torch import nn

from ..errors import InputError, WeightsUnavailableError
from .foundation_registry import (  # noqa: F401 - re-exported: the registry's home before the split
    HOPTIMUS_MEAN,
    HOPTIMUS_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    REGISTRY,
    TIMM_PREFIX,
    FoundationModel,
    encoder_defaults,
    encoder_options,
    foundation_spec,
    is_timm_encoder,
)
from .weights import load_weights_file


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

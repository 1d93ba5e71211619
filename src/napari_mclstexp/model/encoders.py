"""Image encoders: torchvision backbones (optionally ImageNet-initialised) and a small CNN.

Weights are ``"imagenet"`` (torchvision's weights API; downloads once into the torch hub cache),
``"none"`` (random initialisation) or a local state-dict file (``.pth``/``.pt`` or ``.safetensors``).
Offline, ``"imagenet"`` raises :class:`~napari_mclstexp.errors.WeightsUnavailableError`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import MissingInputError, WeightsUnavailableError

#: Encoder names and their output feature sizes.
ENCODERS = {"densenet121": 1024, "resnet18": 512, "resnet50": 2048, "smallcnn": 256}


class SmallCNN(nn.Module):
    """Conv stages (3×3 conv, BatchNorm, ReLU, 2× max-pool; 32-64-128-256 channels), one more
    3×3 conv at the coarsest scale, global mean → 256-d.

    About 70 M multiply-adds per 64 px image (forward), so it trains from scratch on a 2-core CPU
    in minutes (the ``quick`` preset).
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for cout in widths:
            layers += [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            cin = cout
        layers += [nn.Conv2d(cin, cin, 3, padding=1, bias=False), nn.BatchNorm2d(cin), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.out_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


def _torchvision_model(name: str) -> tuple[nn.Module, object]:
    from torchvision import models

    builders = {
        "densenet121": (models.densenet121, models.DenseNet121_Weights.IMAGENET1K_V1),
        "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1),
        "resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V2),
    }
    build, weights = builders[name]
    return build(weights=None), weights


def _strip_head(name: str, model: nn.Module) -> None:
    """Replace the classifier by identity so the forward pass ends at the pooled features."""
    if name == "densenet121":
        model.classifier = nn.Identity()
    else:
        model.fc = nn.Identity()


def _load_local(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise MissingInputError("weights file not found", path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt or not a state dict
        raise WeightsUnavailableError(f"cannot read weights ({err})", path) from err
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsUnavailableError("file holds no state dict", path)
    return state


def _normalise_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop DDP/wrapper prefixes and classifier weights so a state dict fits the stripped encoder."""
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "image_encoder.", "encoder.", "model."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        if key.startswith(("classifier.", "fc.")):
            continue
        out[key] = value
    return out


def make_image_encoder(name: str, weights: str = "none", input_px: int | None = None) -> tuple[nn.Module, int]:
    """Build an image encoder mapping (N, 3, H, W) float images to (N, out_dim) features.

    Parameters
    ----------
    name
        ``"densenet121"`` (1024-d), ``"resnet18"`` (512-d), ``"resnet50"`` (2048-d),
        ``"smallcnn"`` (256-d), ``"timm:<architecture>"`` or a pathology foundation model of
        :data:`~napari_mclstexp.model.foundation.REGISTRY` (see :mod:`.foundation`).
    weights
        ``"imagenet"``, ``"none"`` or a path to a ``.pth``/``.pt``/``.safetensors`` state dict (of the
        torchvision model, of this encoder, or of a wrapper with ``module.``/``encoder.`` prefixes).

    Returns
    -------
    (module, out_dim)

    Raises
    ------
    WeightsUnavailableError
        ImageNet weights cannot be downloaded, or a local file does not fit the encoder.
    """
    from .foundation import is_timm_encoder, make_timm_encoder

    if is_timm_encoder(name):
        return make_timm_encoder(name, weights, input_px)
    if name not in ENCODERS:
        from ..errors import InputError

        raise InputError(
            f"unknown image encoder {name!r}; choose one of {', '.join(ENCODERS)}, "
            "timm:<architecture> or a foundation model (uni, uni2-h, h-optimus-0, h-optimus-1, "
            "virchow2, phikon-v2, prov-gigapath)"
        )
    if name == "smallcnn":
        model: nn.Module = SmallCNN()
        if weights == "imagenet":
            raise WeightsUnavailableError(
                "no ImageNet weights exist for 'smallcnn'; use --weights none or --weights PATH"
            )
    else:
        model, tv_weights = _torchvision_model(name)
        if weights == "imagenet":
            try:
                state = tv_weights.get_state_dict(progress=False)
            except Exception as err:  # URLError, socket errors, HTTP errors, corrupt cache
                raise WeightsUnavailableError(
                    f"cannot download ImageNet weights for {name} ({type(err).__name__}: {err}); "
                    "you seem to be offline: pass --weights PATH (a local .pth/.safetensors file) "
                    "or --weights none (random initialisation)"
                ) from err
            model.load_state_dict(state)
        _strip_head(name, model)
    if weights not in ("imagenet", "none"):
        path = Path(weights)
        state = _normalise_keys(_load_local(path))
        result = model.load_state_dict(state, strict=False)
        if result.missing_keys:
            raise WeightsUnavailableError(
                f"weights do not fit encoder {name}: {len(result.missing_keys)} missing tensor(s), "
                f"e.g. {result.missing_keys[0]!r}",
                path,
            )
    return model, ENCODERS[name]


class PooledFeatures(nn.Module):
    """A torchvision DenseNet's ``features`` block (ending at norm5, **no** final ReLU), then mean-pooled.

    The reference code's image encoder (``Sequential(*densenet.children()[:-1])`` + adaptive average
    pool): features can be negative, unlike torchvision's forward, which applies a ReLU first.  The
    state-dict keys (``features.*``) are those of the stripped DenseNet, so weights load either way.
    """

    def __init__(self, densenet: nn.Module) -> None:
        super().__init__()
        self.features = densenet.features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(torch.nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)


def without_final_relu(name: str, model: nn.Module) -> nn.Module:
    """``model`` with torchvision's ReLU after DenseNet's norm5 removed (other encoders unchanged)."""
    return PooledFeatures(model) if name == "densenet121" else model

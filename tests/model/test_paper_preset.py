"""The ``paper`` preset as the reference code builds it (METHOD.md): a tested contract."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from napari_mclstexp.model.mclstexp import build_model
from napari_mclstexp.model.presets import TrainConfig, get_preset


def paper(**changes) -> TrainConfig:
    return get_preset("paper").replace(weights="none", input_px=32, patch_px=32, pos_rows=64, **changes)


def test_paper_preset_fields_match_the_reference():
    cfg = get_preset("paper")
    assert cfg.final_relu is False and cfg.head_dropout == 0.0 and cfg.drop_last is False
    assert cfg.rotate_mode == "nearest" and cfg.jitter_order == "random" and cfg.precision == "fp32"
    assert cfg.value_normalization == "log10_1e4_per_gene" and cfg.normalization == "log10_1e4"
    assert (cfg.k, cfg.distance, cfg.context, cfg.bank_chunk) == (200, "l1", "batch", 32)
    # the other presets keep their behaviour
    for name in ("default", "quick"):
        other = get_preset(name)
        assert other.final_relu and other.drop_last and other.value_normalization is None
        assert other.rotate_mode == "bilinear" and other.jitter_order == "fixed" and not other.test_augment


def test_paper_densenet_features_end_at_norm5_without_relu():
    torch.manual_seed(0)
    model = build_model(paper(), 5, (64, 64)).eval()
    with_relu = build_model(paper(final_relu=True), 5, (64, 64)).eval()
    # same parameters under the same names: bundles of either kind load into either
    assert model.state_dict().keys() == with_relu.state_dict().keys()
    with_relu.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.image_encoder(x)
        relu_feats = with_relu.image_encoder(x)
        reference = F.adaptive_avg_pool2d(model.image_encoder.features(x), (1, 1)).flatten(1)
    assert feats.shape == (2, 1024)
    assert float(feats.min()) < 0  # the reference's features reach negative values
    assert float(relu_feats.min()) >= 0  # torchvision's forward (ReLU first) does not
    torch.testing.assert_close(feats, reference)


def test_paper_heads_have_no_dropout():
    model = build_model(paper(), 5, (64, 64))
    assert model.image_head.dropout.p == 0.0 and model.spot_head.dropout.p == 0.0
    assert build_model(get_preset("quick").replace(weights="none"), 5, (8, 8)).image_head.dropout.p == 0.1


class _Capture(torch.nn.Module):
    """Stands in for the image encoder: records its input, returns 1024 zeros + the mean."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return torch.zeros(len(x), 1024) + x.mean()


def test_bgr255_images_reach_the_encoder_as_cv2_reads_them():
    model = build_model(paper(image_norm="bgr255"), 5, (64, 64)).eval()
    model.image_encoder = _Capture()
    patch = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    patch[..., 0], patch[..., 1], patch[..., 2] = 10, 20, 30  # R, G, B
    model.encode_images(patch)
    seen = model.image_encoder.seen[0]
    assert seen[0, :, 0, 0].tolist() == [30.0, 20.0, 10.0]  # B, G, R in 0–255, no ÷255


def test_test_augment_flips_or_rotates_queries_in_eval_mode_only():
    torch.manual_seed(1)
    model = build_model(paper(test_augment=True, flips=True, rot90=True, rotate_deg=0.0), 5, (64, 64)).eval()
    model.image_encoder = _Capture()
    patches = np.random.default_rng(0).integers(0, 255, (16, 32, 32, 3), dtype=np.uint8)
    model.encode_images(patches)
    seen = model.image_encoder.seen[-1]
    x = torch.as_tensor(patches).permute(0, 3, 1, 2).float() / 255
    views = [x.rot90(k, dims=(2, 3)) for k in range(4)]
    views += [v.flip(-1) for v in views]
    matches = [[bool(torch.allclose(seen[i], v[i])) for v in views] for i in range(16)]
    assert all(any(m) for m in matches)  # each query is one of the 8 symmetries of its patch
    assert sum(m[0] for m in matches) < 16  # and not all are left as they are
    no_aug = build_model(paper(), 5, (64, 64)).eval()
    no_aug.image_encoder = _Capture()
    no_aug.encode_images(patches)
    torch.testing.assert_close(no_aug.image_encoder.seen[0], x)

"""Folding batch norms into convolutions (and pooling before ReLU) keeps the image embeddings."""

import torch
from torch import nn

from napari_mclstexp.model.encoders import SmallCNN
from napari_mclstexp.predict.fuse import fold_for_inference


class _Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.image_encoder = nn.Sequential(SmallCNN(), nn.Sequential(nn.Identity()))


def _trained_like() -> _Model:
    torch.manual_seed(0)
    model = _Model()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):  # statistics and affine parameters far from the identity
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.2, 3.0)
            m.weight.data.uniform_(-2.0, 2.0)
            m.bias.data.uniform_(-1.0, 1.0)
    return model.eval()


def test_folded_encoder_gives_the_same_features_without_batch_norms():
    model = _trained_like()
    x = torch.rand(5, 3, 64, 64)
    with torch.no_grad():
        before = model.image_encoder(x)
        fold_for_inference(model)
        after = model.image_encoder(x)
    kinds = [type(m) for m in model.modules()]
    assert nn.BatchNorm2d not in kinds and kinds.count(nn.Conv2d) == 5
    pools = list(model.image_encoder[0].features)
    assert all(isinstance(b, nn.ReLU) for a, b in zip(pools, pools[1:], strict=False) if isinstance(a, nn.MaxPool2d))
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)
    assert before.abs().max() > 0.1  # not a trivially zero map


def test_a_model_in_training_mode_is_left_alone():
    model = _trained_like().train()
    fold_for_inference(model)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())

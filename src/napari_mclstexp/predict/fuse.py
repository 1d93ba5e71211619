"""Inference-only rewrites of a model's image encoder that give the same embeddings with less CPU work.

In eval mode a ``BatchNorm2d`` right after a ``Conv2d`` is an affine map per channel: it is folded into the
convolution's weights and bias (one pass over the activations instead of two), and a ``ReLU`` right before a
``MaxPool2d`` is moved after it (``max`` and ``relu`` commute, and the pooled map has a quarter of the
pixels).  The embeddings change only by float rounding.  On a 2-core CPU this takes about a third off the
``quick`` preset's small CNN (measured in ``benchmarks/cpu_descriptors.py``'s case); networks without these
patterns (DenseNet's pre-activation blocks) are left as they are.
"""

from __future__ import annotations

import torch
from torch import nn


def _fold(seq: nn.Sequential) -> nn.Sequential | None:
    """A rewritten copy of ``seq``'s children, or ``None`` when nothing in it folds or commutes."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    layers, out, changed = list(seq), [], False
    i = 0
    while i < len(layers):
        layer, nxt = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, nn.Conv2d) and isinstance(nxt, nn.BatchNorm2d) and nxt.track_running_stats:
            out.append(fuse_conv_bn_eval(layer, nxt))
            i, changed = i + 2, True
        elif isinstance(layer, nn.ReLU) and isinstance(nxt, nn.MaxPool2d) and not nxt.return_indices:
            out += [nxt, layer]
            i, changed = i + 2, True
        else:
            out.append(layer)
            i += 1
    return nn.Sequential(*out) if changed else None


def fold_for_inference(model: nn.Module) -> nn.Module:
    """Fold batch norms into the convolutions before them and pool before ReLU, in every ``nn.Sequential``
    of ``model.image_encoder`` (in place; ``model`` must be in eval mode and is returned)."""
    encoder = getattr(model, "image_encoder", None)
    if encoder is None or model.training:
        return model
    with torch.no_grad():
        for parent in reversed(list(encoder.modules())):  # children first: a parent folds their new copies
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Sequential):
                    folded = _fold(child)
                    if folded is not None:
                        setattr(parent, name, folded)
    return model

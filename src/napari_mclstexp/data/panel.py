"""Gene-panel guard for training (CLI ``train``/``cv``, the napari Train widget): no silent multi-gigabyte
default panel when no genes are chosen."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import GenePanelError

#: Largest panel the commands accept when ``--genes`` is not given (genes common to all samples).
MAX_DEFAULT_GENES = 2000


def training_memory_gb(n_genes: int, config: Any) -> float:
    """Rough training memory of the spot encoder, in GB (10⁹ bytes).

    The spot Transformer's width is the panel size, so its feed-forward layers hold
    ``2 · mlp_ratio · n_genes²`` weights per block; fp32 weights, gradients and the two Adam moments
    take 16 bytes per weight.  Activations and the image encoder come on top.

    Parameters
    ----------
    n_genes
        Panel size.
    config
        A :class:`~napari_mclstexp.model.presets.TrainConfig` (``spot_depth``, ``spot_mlp_ratio``).

    Returns
    -------
    float
        Memory in GB.
    """
    depth = int(getattr(config, "spot_depth", 2))
    ratio = float(getattr(config, "spot_mlp_ratio", 1.0))
    return 16.0 * depth * 2.0 * ratio * float(n_genes) ** 2 / 1e9


def check_default_panel(samples: Sequence[Any], genes: str | None, config: Any) -> None:
    """Refuse the default panel (all common genes) when it is too large to train.

    Parameters
    ----------
    samples
        The samples the panel is chosen from.
    genes
        The chosen panel (``--genes``, the widget's Genes field); anything but ``None`` is the user's
        explicit choice and passes.
    config
        The training configuration (for the memory estimate).

    Raises
    ------
    GenePanelError
        Naming the number of common genes, the memory it would need and the options to use instead.
    """
    if genes is not None or not samples:
        return
    from .genes import common_genes

    n = len(common_genes(list(samples)))
    if n <= MAX_DEFAULT_GENES:
        return
    raise GenePanelError(
        f"choose a gene panel (e.g. hvg:785, the most variable genes): the samples share {n} genes, "
        f"about {training_memory_gb(n, config):.0f} GB to train on all"
    )

"""The reference bank: spot embeddings of the training spots with their normalised expression.

Retrieval (:mod:`napari_mclstexp.predict.retrieval`) compares a new patch's image embedding with these
spot embeddings (keys) and averages the matching spots' expression (values).  Spot embeddings need
only expression and spot positions, so sections without images ("expression-only" extra samples) can
enlarge the bank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..sample import section_name


@dataclass
class ReferenceBank:
    """Keys and values for retrieval.

    Parameters
    ----------
    embeddings
        ``(M, D)`` spot embeddings (float32; float16 is accepted and kept, e.g. from a bundle).
    expression
        ``(M, G)`` float32 normalised expression in the order of ``genes``.
    genes
        Gene panel, length ``G``.
    sections
        ``(M,)`` str: the section each reference spot comes from.
    spot_ids
        ``(M,)`` str: the spot's ``obs_name`` in its section.
    """

    embeddings: np.ndarray
    expression: np.ndarray
    genes: list[str]
    sections: np.ndarray
    spot_ids: np.ndarray
    _cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        emb = np.asarray(self.embeddings)
        if emb.dtype not in (np.float16, np.float32):
            emb = emb.astype(np.float32)
        self.embeddings = emb
        self.expression = np.asarray(self.expression, dtype=np.float32)
        self.genes = [str(g) for g in self.genes]
        self.sections = np.asarray(self.sections, dtype=str)
        self.spot_ids = np.asarray(self.spot_ids, dtype=str)
        m = self.embeddings.shape[0]
        if self.embeddings.ndim != 2 or self.expression.ndim != 2:
            raise ValueError("bank embeddings and expression must be 2-D")
        if self.expression.shape[0] != m or len(self.sections) != m or len(self.spot_ids) != m:
            raise ValueError(
                f"bank rows disagree: embeddings {m}, expression {self.expression.shape[0]}, "
                f"sections {len(self.sections)}, spot ids {len(self.spot_ids)}"
            )
        if self.expression.shape[1] != len(self.genes):
            raise ValueError(f"bank expression has {self.expression.shape[1]} genes, panel has {len(self.genes)}")

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def dim(self) -> int:
        """Embedding dimension ``D``."""
        return int(self.embeddings.shape[1])

    def tensors(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(embeddings, expression)`` as float32 tensors on ``device`` (cached per device)."""
        key = str(torch.device(device))
        if key not in self._cache:
            emb = torch.from_numpy(np.ascontiguousarray(self.embeddings)).to(device=device, dtype=torch.float32)
            expr = torch.from_numpy(np.ascontiguousarray(self.expression)).to(device=device)
            self._cache[key] = (emb, expr)
        return self._cache[key]

    def subset(self, mask: np.ndarray) -> ReferenceBank:
        """A bank with the rows selected by a boolean mask or index array (e.g. leave a section out)."""
        return ReferenceBank(
            self.embeddings[mask], self.expression[mask], list(self.genes), self.sections[mask], self.spot_ids[mask]
        )

    @classmethod
    def concatenate(cls, banks: Sequence[ReferenceBank]) -> ReferenceBank:
        """Stack banks that share a gene panel."""
        if not banks:
            raise ValueError("no banks to concatenate")
        genes = banks[0].genes
        if any(b.genes != genes for b in banks[1:]):
            raise ValueError("banks have different gene panels")
        return cls(
            np.concatenate([b.embeddings.astype(np.float32) for b in banks]),
            np.concatenate([b.expression for b in banks]),
            list(genes),
            np.concatenate([b.sections for b in banks]),
            np.concatenate([b.spot_ids for b in banks]),
        )


@torch.inference_mode()
def build_bank(
    model: torch.nn.Module,
    samples: Sequence[Any],
    genes: Sequence[str],
    config: Any,
    device: torch.device | str,
    extra: Sequence[Any] = (),
) -> ReferenceBank:
    """Embed the spots of ``samples`` (and expression-only ``extra`` samples) into a reference bank.

    Parameters
    ----------
    model
        A trained :class:`~napari_mclstexp.model.mclstexp.MclSTExp` (put in eval mode here).
    samples
        Training sections (AnnData, raw counts in ``X``).
    genes
        The model's gene panel (order matters).
    config
        The training configuration (``TrainConfig`` or its dict): its ``normalization`` normalises the
        counts the spot encoder embeds, its value normalisation
        (:func:`~napari_mclstexp.data.scales.value_normalization`: ``paper`` → the reference's per-gene
        scale) the bank's expression values; the spot encoder's attention context follows the preset
        (:func:`~napari_mclstexp.model.mclstexp.encode_spot_bank`).  With context ``"batch"`` the
        chunks of consecutive spots run over all sections concatenated, as the reference's loader does.
    device
        Where to run the spot encoder.
    extra
        Sections without images; only expression and spot positions are used.

    Returns
    -------
    ReferenceBank
        float32 spot embeddings and normalised expression, with each spot's section and ``obs_name``.
    """
    from ..data.genes import expression_matrix
    from ..data.scales import value_normalization
    from .mclstexp import encode_spot_bank, spot_positions

    normalization = config["normalization"] if isinstance(config, dict) else config.normalization
    values_norm = value_normalization(config)
    context = config.get("context") if isinstance(config, dict) else getattr(config, "context", None)
    model.eval()
    inputs, values, positions, sections, spot_ids = [], [], [], [], []
    for i, adata in enumerate([*samples, *extra]):
        expr = np.asarray(expression_matrix(adata, list(genes), normalization), dtype=np.float32)
        inputs.append(expr)
        values.append(
            expr
            if values_norm == normalization
            else np.asarray(expression_matrix(adata, list(genes), values_norm), dtype=np.float32)
        )
        positions.append(np.asarray(spot_positions(adata, config), dtype=np.int64))
        sections.append(np.full(len(expr), section_name(adata, i)))
        spot_ids.append(np.asarray(adata.obs_names, str))
    if not inputs:
        raise ValueError("no samples to build a reference bank from")
    if context == "batch":  # one run of chunks over the sections concatenated (reference code)
        emb_parts = [encode_spot_bank(model, np.concatenate(inputs), np.concatenate(positions), config, device)]
    else:
        emb_parts = [encode_spot_bank(model, e, p, config, device) for e, p in zip(inputs, positions, strict=True)]
    emb = np.concatenate(
        [t.detach().float().cpu().numpy() if torch.is_tensor(t) else np.asarray(t, np.float32) for t in emb_parts]
    )
    return ReferenceBank(emb, np.concatenate(values), list(genes), np.concatenate(sections), np.concatenate(spot_ids))

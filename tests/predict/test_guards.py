"""Guards before predicting: µm/px known on one side only, too few of the model's genes measured."""

from __future__ import annotations

import copy

from napari_mclstexp.predict.guards import gene_warning, input_warnings, scale_warning


def test_scale_known_on_one_side_only(tiny_bundle):
    assert tiny_bundle.metadata["training_mpp"] == 1.0
    assert scale_warning(tiny_bundle, 0.5) is None  # both known: patches are cut at the trained µm
    assert "this slide's µm/px is unknown but the model was trained at 1 µm/px" in scale_warning(tiny_bundle, None)
    unknown = copy.copy(tiny_bundle)
    unknown.metadata = {**tiny_bundle.metadata, "training_mpp": None}
    assert "the model's training µm/px is unknown but this slide is 0.5 µm/px" in scale_warning(unknown, 0.5)
    assert scale_warning(unknown, None) is None


def test_gene_overlap_under_half(tiny_bundle):
    genes = list(tiny_bundle.genes)
    assert gene_warning(tiny_bundle, genes[: len(genes) // 2]) is None  # half is enough
    line = gene_warning(tiny_bundle, genes[:2] + ["OTHER"])
    assert line.startswith(f"only 2 of the model's {len(genes)} genes are measured in this sample")
    assert gene_warning(tiny_bundle, []) is None  # nothing measured: nothing to compare
    assert len(input_warnings(tiny_bundle, None, ["X"])) == 2

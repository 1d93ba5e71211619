"""Training helps on real data: HER2+ sections B4, C2, C3 train ``quick`` briefly, C4 is predicted.

Patient C is in training (C2, C3 are serial sections of C4's tumour), so the numbers are optimistic for new
patients; the point here is the comparison within one run.  The 50 most variable genes of the training
sections (``hvg:50``), retrieval alone (no descriptor blend, no smoothing), k = 200 (the preset's) for the
model and for the colour-histogram kNN on the same 224 px crops.

Measured (2 shared CPU cores under heavy load, one torch thread; training seed 0, 1, 2), ACG over the 50
genes on C4:

=================  =======  =======  =======
ACG                seed 0   seed 1   seed 2
=================  =======  =======  =======
trained, 6 epochs  0.2135   0.2056   0.2213
untrained          -0.0277  -0.0264  -0.0727
histogram kNN      0.2161   0.2161   0.2161
=================  =======  =======  =======

Training gains 0.23–0.29 (asserted: 0.15); the kNN leads by 0.003 and 0.011 or trails by 0.005 (asserted:
at most 0.03 behind).  With k = 50 the picture is the same (trained 0.228, 0.207, 0.240; kNN 0.235).
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.progress import run

EPOCHS = 6
#: Trained minus untrained ACG: measured 0.241, 0.232, 0.294 (seeds 0-2).
MIN_GAIN = 0.15
#: Histogram kNN minus trained ACG: measured 0.003, 0.011, -0.005 (seeds 0-2).
MAX_BEHIND_HISTOGRAM = 0.03
K = 200


@pytest.fixture(scope="module")
def her2st_sections(her2st_dir):
    from napari_mclstexp.io.her2st import read_her2st_section

    return [read_her2st_section(her2st_dir, s) for s in ("B4", "C2", "C3")], read_her2st_section(her2st_dir, "C4")


def _bundle(train_sections, epochs: int, cache):
    from napari_mclstexp.bundle import make_bundle
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.train.trainer import train

    cfg = get_preset("quick").replace(epochs=epochs, seed=0, k=K)
    result = run(train(train_sections, cfg, genes="hvg:50", device="cpu", patch_cache=cache))
    return make_bundle(result, train_sections, "cpu")


def _acg(bundle, test, cache) -> tuple[float, object]:
    from napari_mclstexp.analysis.metrics import evaluate
    from napari_mclstexp.predict.spots import predict_at_spots

    pred = run(
        predict_at_spots(bundle, test, PredictOptions(device="cpu", smooth=False, descriptors=False), patch_cache=cache)
    )
    return float(evaluate(pred, test)["per_gene"]["r"].mean()), pred


def test_quick_trained_on_three_sections_predicts_the_fourth(her2st_sections, tmp_path):
    from napari_mclstexp.analysis.metrics import evaluate
    from napari_mclstexp.data.genes import expression_matrix
    from napari_mclstexp.data.patches import PatchCache, sample_patches
    from napari_mclstexp.predict.baseline import histogram_knn_predict

    train_sections, test = her2st_sections
    cache = PatchCache(tmp_path / "cache")
    trained = _bundle(train_sections, EPOCHS, cache)
    untrained = _bundle(train_sections, 0, cache)
    assert len(trained.genes) == 50 and trained.genes == untrained.genes
    acg, pred = _acg(trained, test, cache)
    acg_untrained, _ = _acg(untrained, test, cache)
    cfg = trained.config
    genes = list(trained.genes)
    train_x = np.concatenate([expression_matrix(a, genes, "log10_1e4") for a in train_sections])
    train_p = np.concatenate([sample_patches(a, cfg["patch_px"], cfg["input_px"], cache) for a in train_sections])
    knn = pred.copy()
    knn.X = histogram_knn_predict(train_p, train_x, sample_patches(test, cfg["patch_px"], cfg["input_px"], cache), K)
    acg_knn = float(evaluate(knn, test)["per_gene"]["r"].mean())
    assert acg > acg_untrained + MIN_GAIN, (acg, acg_untrained)
    assert acg > acg_knn - MAX_BEHIND_HISTOGRAM, (acg, acg_knn)

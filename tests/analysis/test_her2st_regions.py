"""HER2+ C4: its reference clusters as QuPath annotations, region statistics of a prediction of C4 by a model
trained on B4/C2/C3 (patient C is in training: C2, C3 are serial sections of C4) beside the same statistics of
C4's measured counts (skipped without ../shared/data; trains a brief quick model, minutes on a CPU)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.predict.options import PredictOptions

pytestmark = [pytest.mark.shared_data, pytest.mark.slow, pytest.mark.timeout(1800)]  # training: minutes on a busy CPU
TOP = 20
#: Bounds of the total top-20 agreement over the 7 clusters, ranked by the log2 fold change.  Measured
#: (3 epochs, training seeds 0/1/2, 2-core CPU): 22, 22, 21; the shuffled-spot control's mean 8.0, 8.7, 7.7.
#: The other statistics on the same runs, printed by the test, not chosen from: difference 41, 40, 41
#: (control 9.7, 9.3, 9.7), z 21, 23, 26 (control 9.0, 9.7, 9.3).  The measured counts' top 20 by log2
#: fold change are lowly expressed genes (mean 2.6 per 10⁴ outside vs 34 for the other two rankings and 12.7
#: over all genes): their noisy ratios are what the smooth predictions do not reproduce.
AGREE_MIN, CONTROL_MAX = 16, 12


@pytest.fixture(scope="module")
def her2st_c4(her2st_bc):
    from napari_mclstexp.data.genes import expression_matrix
    from napari_mclstexp.progress import run
    from napari_mclstexp.workflows.predict import predict_and_score

    sections, saved = her2st_bc  # quick, 3 epochs, seed 0, 785 genes: the statistics are under test, not the model
    c4 = sections["C4"]
    pred = run(predict_and_score(saved.bundle, c4, PredictOptions(device="cpu")))
    measured = c4[:, list(pred.var_names)].copy()
    measured.X = expression_matrix(c4, list(pred.var_names), "log10_1e4")
    measured.uns["mclstexp"] = {"normalization": "log10_1e4"}
    return c4, pred, measured


def test_c4_clusters_as_annotations_predicted_vs_measured(her2st_c4, tmp_path):
    from napari_mclstexp.analysis.label_regions import labels_to_annotations
    from napari_mclstexp.analysis.region_stats import RANK_BY, region_statistics, top_gene_agreement
    from napari_mclstexp.io.annotations import read_annotations, write_annotations

    c4, pred, measured = her2st_c4
    labels = c4.obs["cluster_ref"].astype(str).to_numpy()
    classes = labels_to_annotations(c4.obsm["spatial"], labels, prefix="cluster ")
    path = write_annotations(classes, tmp_path / "c4.geojson")
    ann = read_annotations(path)
    assert len(ann.classes) == len(set(labels) - {"undetermined", "nan"})
    for cls in ann.classes:  # the polygons hold exactly the cluster's spots
        assert np.array_equal(cls.contains(c4.obsm["spatial"]), labels == cls.name.removeprefix("cluster "))
    on_pred = region_statistics(pred, ann, seed=0)
    on_measured = region_statistics(measured, ann, seed=0)
    assert on_pred["class"].unique().tolist() == on_measured["class"].unique().tolist()
    assert (on_pred.groupby("class")["n_inside"].first() == on_measured.groupby("class")["n_inside"].first()).all()
    assert on_pred["reliability_r"].notna().mean() > 0.9  # the bundle's held-out per-gene r travels along
    # the ranking statistic (log2 fold change of the back-transformed means) was fixed before this figure
    # was recomputed (region_stats' docstring says why); the other two are printed beside it, not chosen from
    for by in RANK_BY:
        other = top_gene_agreement(on_pred, on_measured, TOP, by=by)
        print(f"top-{TOP} agreement by {by}:", other, "total", sum(other.values()))
    agree = top_gene_agreement(on_pred, on_measured, TOP)
    # chance: 20 · 20 / 785 ≈ 0.5 genes per class
    assert sum(agree.values()) >= AGREE_MIN
    # control: the same prediction with its spots shuffled (3 times) agrees far less: the test can fail
    totals: dict[str, list[int]] = {by: [] for by in RANK_BY}
    for seed in range(3):
        shuffled = pred.copy()
        shuffled.X = np.asarray(pred.X)[np.random.default_rng(seed).permutation(pred.n_obs)]
        on_shuffled = region_statistics(shuffled, ann, seed=0, n_placements=20)
        for by in RANK_BY:
            totals[by].append(sum(top_gene_agreement(on_shuffled, on_measured, TOP, by=by).values()))
    print("shuffled-spot control totals:", totals)
    assert np.mean(totals[RANK_BY[0]]) <= CONTROL_MAX

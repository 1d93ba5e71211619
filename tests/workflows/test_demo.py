"""`mclstexp demo`: offline, end to end, on the bundled slide and model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_mclstexp.cli import main
from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.workflows import demo


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    code = main(["-q", "demo", "--out", str(out)])
    assert code == 0
    return out


def test_demo_writes_outputs(demo_out, capsys):
    for name in ("predictions.h5ad", "metrics.json", "measured_vs_predicted.png"):
        assert (demo_out / name).is_file(), name
    assert (demo_out / "measured_vs_predicted.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_metrics(demo_out):
    metrics = json.loads((demo_out / "metrics.json").read_text())
    assert metrics["acg"] > 0.2
    assert metrics["acg_image_genes"] > metrics["acg"] > metrics["acg_noise_genes"]
    assert abs(metrics["acg_noise_genes"]) < 0.15  # noise genes are not predictable from the image
    assert metrics["ari"] > 0.5  # domains of predicted expression recover the true regions
    assert metrics["n_genes"] == 33 and metrics["test_spots"] == metrics["n_spots"]
    assert metrics["train_spots"] + metrics["test_spots"] == 1265
    assert not metrics["trained_now"]
    for key in ("heg50", "hvg50", "mse", "mae", "nmi", "ari_measured", "per_gene_r", "seconds"):
        assert key in metrics


def test_demo_predictions_are_the_held_out_spots(demo_out):
    import anndata as ad

    pred = ad.read_h5ad(demo_out / "predictions.h5ad")
    sample = demo.load_demo_sample()
    _, test = demo.split_demo_sample(sample)
    assert list(pred.obs_names) == list(test.obs_names)
    assert pred.X.shape == (test.n_obs, 33)
    assert np.allclose(pred.obsm["spatial"], test.obsm["spatial"])
    assert set(pred.obs["domain"]) <= {str(i) for i in range(5)}
    assert "uncertainty" in pred.obs


def test_demo_missing_sample_is_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "_candidate_dirs", lambda: [tmp_path / "nowhere"])
    assert main(["-q", "demo", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "make_sample_data.py" in err[0]


#: Epochs of the retraining test (the shipped model had :data:`demo.DEMO_EPOCHS`).
TRAIN_EPOCHS = 3
#: How far below the shipped bundle the retrained one may score (ACG over all genes, and over the image-driven
#: genes by retrieval alone).  Measured with 3 epochs (seeds 0 and 1 of ``demo_config``; 2 shared CPU cores
#: under load, one torch thread): retrieval-only image-gene ACG 0.710 and 0.700 against the shipped bundle's
#: 0.717.  The demo's own numbers (ACG 0.482, image genes 0.726, against the shipped 0.463 and 0.717) were the
#: same for both seeds: the retrained bundle's held-out descriptor blend weight is 1.0, so what the demo
#: reports comes from the descriptor trees alone, and only the retrieval-only comparison sees the training.
MAX_BELOW_SHIPPED = 0.05


def retrieval_only_image_acg(bundle, test) -> float:
    """Image-driven genes' ACG of ``bundle``'s retrieval alone (no descriptor blend, no smoothing)."""
    from napari_mclstexp.analysis.metrics import evaluate
    from napari_mclstexp.predict.spots import predict_at_spots
    from napari_mclstexp.progress import run

    pred = run(predict_at_spots(bundle, test, PredictOptions(device="cpu", smooth=False, descriptors=False)))
    r = evaluate(pred, test)["per_gene"]["r"]
    return float(r[demo.image_driven_genes(list(r.index))].mean())


def test_demo_train_reaches_the_shipped_model(demo_out, tmp_path):
    """`--train` retrains the demo's model on the left two thirds of the slide; a few epochs reach the
    shipped bundle's accuracy on the held-out third.  Retrieval alone is compared too: the descriptor blend
    and the smoothing would otherwise hide a model that learned nothing."""
    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.progress import run

    shipped = json.loads((demo_out / "metrics.json").read_text())
    events = []
    out = tmp_path / "out"
    result = run(demo.run_demo(out, train=True, epochs=TRAIN_EPOCHS, device="cpu", figure=False), events.append)
    m = result.metrics
    assert (out / "model.mclst").is_file() and m["bundle"] == str(out / "model.mclst")
    assert m["trained_now"] and result.figure_path is None
    sample = demo.load_demo_sample()
    train_part, test_part = demo.split_demo_sample(sample)
    assert m["train_spots"] == train_part.n_obs and m["test_spots"] == test_part.n_obs
    assert {"train", "demo"} <= {e.stage for e in events}
    trained = load_bundle(out / "model.mclst")
    assert len(trained.metadata["history"]) == TRAIN_EPOCHS
    assert m["acg"] > shipped["acg"] - MAX_BELOW_SHIPPED, (m["acg"], shipped["acg"])
    assert m["acg_image_genes"] > shipped["acg_image_genes"] - MAX_BELOW_SHIPPED
    assert abs(m["acg_noise_genes"]) < 0.15
    ours = retrieval_only_image_acg(trained, test_part)
    theirs = retrieval_only_image_acg(demo.load_demo_bundle(demo.sample_data_dir() / demo.SAMPLE_BUNDLE), test_part)
    assert ours > theirs - MAX_BELOW_SHIPPED, (ours, theirs)


def test_stale_demo_model_says_how_to_retrain(monkeypatch):
    from napari_mclstexp.bundle import Bundle
    from napari_mclstexp.errors import BundleError

    def stale(self, device="cpu"):
        raise BundleError("weights do not fit the model described by the metadata: size mismatch ...")

    monkeypatch.setattr(Bundle, "build_model", stale)
    with pytest.raises(BundleError, match="make_sample_data.py --model-only"):
        demo.load_demo_bundle(demo.sample_data_dir() / demo.SAMPLE_BUNDLE)

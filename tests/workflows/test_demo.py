"""`mclstexp demo`: offline, end to end, on the bundled slide and model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_mclstexp.cli import main
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


def test_demo_train_path_on_a_tiny_slide(tmp_path):
    """`--train` retrains and bundles a model (tiny slide, one epoch: checks plumbing, not accuracy)."""
    from napari_mclstexp.io.wsi_write import write_pyramid_tiff
    from napari_mclstexp.progress import run
    from napari_mclstexp.synthetic import make_demo_slide

    folder = tmp_path / "sample"
    folder.mkdir()
    image, adata = make_demo_slide(image_px=(640, 640), spot_spacing_px=40.0, n_regions=3, seed=2)
    write_pyramid_tiff(folder / demo.SAMPLE_IMAGE, image, mpp=1.0)
    adata.write_h5ad(folder / demo.SAMPLE_H5AD)
    events = []
    result = run(demo.run_demo(tmp_path / "out", train=True, epochs=1, folder=folder, figure=False), events.append)
    assert (tmp_path / "out" / "model.mclst").is_file()
    assert result.metrics["trained_now"] and result.figure_path is None
    assert result.metrics["train_spots"] == int((adata.obs["demo_split"] == "train").sum())
    assert {"train", "demo"} <= {e.stage for e in events}
    assert np.isfinite(result.metrics["mse"])


def test_stale_demo_model_says_how_to_retrain(monkeypatch):
    from napari_mclstexp.bundle import Bundle
    from napari_mclstexp.errors import BundleError

    def stale(self, device="cpu"):
        raise BundleError("weights do not fit the model described by the metadata: size mismatch ...")

    monkeypatch.setattr(Bundle, "build_model", stale)
    with pytest.raises(BundleError, match="make_sample_data.py --model-only"):
        demo.load_demo_bundle(demo.sample_data_dir() / demo.SAMPLE_BUNDLE)

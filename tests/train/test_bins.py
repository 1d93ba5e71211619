"""Training on Visium HD bins (fresh stratified sample per epoch, bounded bank) and chunked prediction."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.io.visium_hd import read_visium_hd
from napari_mclstexp.model.presets import get_preset
from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.progress import run
from napari_mclstexp.synthetic.visium_hd import HDGeometry, write_visium_hd
from napari_mclstexp.train.bins import (
    bank_samples,
    stratified_subsample,
    subsample_samples,
    train_on_bins,
)


@pytest.fixture(scope="module")
def hd_sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("hd") / "HDT"
    write_visium_hd(
        root,
        n_rows=24,
        n_cols=24,
        bins=(8,),
        n_genes=9,
        geometry=HDGeometry(1.0, (60.0, 60.0), 0.0),
        image=True,
        image_margin_px=60,
        tissue_cover=0.9,
        seed=4,
    )
    return read_visium_hd(root, 8)


def test_stratified_subsample_covers_the_grid_evenly(hd_sample):
    idx = stratified_subsample(hd_sample, 100, seed=1)
    assert len(idx) == 100 and len(np.unique(idx)) == 100 and np.all(np.diff(idx) > 0)
    rows, cols = hd_sample.obs["array_row"].to_numpy(), hd_sample.obs["array_col"].to_numpy()
    assert rows.argmax() in idx and cols.argmax() in idx  # anchors keep position tables one size
    # quadrants get shares in proportion to their bins (± a few), unlike what chance alone guarantees
    quad = (rows >= 12) * 2 + (cols >= 12)
    expected = np.bincount(quad) / len(quad) * 100
    assert np.abs(np.bincount(quad[idx], minlength=4) - expected).max() <= 4
    assert not np.array_equal(idx, stratified_subsample(hd_sample, 100, seed=2))
    np.testing.assert_array_equal(idx, stratified_subsample(hd_sample, 100, seed=1))
    assert len(stratified_subsample(hd_sample, 10**6)) == hd_sample.n_obs


def test_bank_is_bounded(hd_sample):
    assert sum(a.n_obs for a in bank_samples([hd_sample, hd_sample], 150)) == 150
    assert bank_samples([hd_sample], None)[0] is hd_sample
    assert [a.n_obs for a in subsample_samples([hd_sample, hd_sample[:100]], 60)] == [50, 10]


def test_train_on_bins_then_predict_every_bin(hd_sample, tmp_path, monkeypatch):
    from napari_mclstexp.bundle import make_bundle
    from napari_mclstexp.predict.bins import predict_at_bins
    from napari_mclstexp.predict.spots import predict_at_spots
    from napari_mclstexp.train import trainer

    seen = []
    real_train = trainer.train

    def spy(samples, *args, **kwargs):
        seen.append(set(samples[0].obs_names))
        return (yield from real_train(samples, *args, **kwargs))

    monkeypatch.setattr(trainer, "train", spy)
    cfg = get_preset("quick").replace(epochs=2, batch_size=32, encoder="smallcnn", weights="none", seed=0)
    result = run(train_on_bins([hd_sample], cfg, bins_per_epoch=96, device="cpu", patch_um=40.0))
    assert [len(s) for s in seen] == [96, 96] and seen[0] != seen[1]  # a fresh sample each epoch
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert result.config.patch_px == 40  # 40 µm at 1 µm/px
    bank = bank_samples([hd_sample], 120)
    bundle = make_bundle(result, bank, "cpu")
    assert len(bundle.bank) == 120
    part = hd_sample[::4].copy()  # every 4th bin: blocks of scattered bins, fewer encoder passes
    pred = run(
        predict_at_bins(bundle, part, PredictOptions(device="cpu", precision="fp32"), use_pyramid=False, block_bins=4)
    )
    assert list(pred.obs_names) == list(part.obs_names) and pred.shape == (part.n_obs, 9)
    np.testing.assert_allclose(pred.uns["bin_grid"]["affine"], hd_sample.uns["bin_grid"]["affine"])
    whole = run(predict_at_spots(bundle, part, PredictOptions(device="cpu", precision="fp32")))
    np.testing.assert_allclose(pred.X, whole.X, rtol=1e-4, atol=1e-5)  # block reads = one patch at a time
    fast = run(predict_at_bins(bundle, part, PredictOptions(device="cpu", precision="fp32")))  # from the pyramid
    assert np.corrcoef(fast.X.ravel(), whole.X.ravel())[0, 1] > 0.9
    # with tissue descriptors blended in, bins still predict as spots do (before neighbour smoothing)
    from napari_mclstexp.workflows.reliability import iter_finish_bundle

    run(iter_finish_bundle(bundle, bank, device="cpu"))
    bundle.metadata["descriptors"]["weight"] = 0.5
    blended = run(
        predict_at_bins(bundle, part, PredictOptions(device="cpu", precision="fp32"), use_pyramid=False, block_bins=4)
    )
    at_spots = run(predict_at_spots(bundle, part, PredictOptions(device="cpu", precision="fp32", smooth=False)))
    assert blended.uns["mclstexp"]["descriptor_weight"] == 0.5
    # bins whose reads lie whole descriptor px apart are described from one resampled block (its border pixels
    # resample a little differently from a lone read), the others read by read as spots
    np.testing.assert_allclose(blended.X, at_spots.X, atol=0.02)
    assert np.mean(np.abs(blended.X - at_spots.X) < 1e-4) > 0.95
    assert np.abs(blended.X - pred.X).max() > 1e-4


def test_cli_trains_on_bins_and_predicts_every_bin(hd_sample, tmp_path, capsys):
    import anndata as ad

    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.cli import main
    from napari_mclstexp.io.h5ad import write_h5ad

    sample = write_h5ad(hd_sample, tmp_path / "hd.h5ad")
    model = tmp_path / "hd.mclst"
    assert (
        main(
            [
                "train",
                str(sample),
                "--out",
                str(model),
                "--preset",
                "quick",
                "--encoder",
                "smallcnn",
                "--epochs",
                "1",
                "--bins-per-epoch",
                "64",
                "--bank-size",
                "80",
                "--device",
                "cpu",
                "-q",
            ]
        )
        == 0
    )
    assert len(load_bundle(model).bank) == 80
    assert main(["predict", str(model), str(sample), "--out", str(tmp_path / "p.h5ad"), "--device", "cpu"]) == 0
    assert f"at {hd_sample.n_obs} bins" in capsys.readouterr().out
    assert "bin_grid" in ad.read_h5ad(tmp_path / "p.h5ad").uns
    assert main(["train", str(sample), "--out", str(tmp_path / "x.mclst"), "--bank-size", "0"]) == 2

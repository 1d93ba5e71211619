"""``pretrain_and_save``: tissue tiles of image files and samples → a .safetensors that ``--weights`` loads."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from napari_mclstexp.errors import InputError, MissingInputError, OutputError, WeightsUnavailableError
from napari_mclstexp.io.wsi import open_slide
from napari_mclstexp.predict.tissue import slide_tissue_mask, tile_tissue_fraction
from napari_mclstexp.progress import run
from napari_mclstexp.sample import image_path
from napari_mclstexp.workflows.pretrain import pretrain_and_save, pretrain_output
from napari_mclstexp.workflows.pretrain_tiles import iter_collect_tiles, resolve_slides, tissue_tile_centres

FAST = {"epochs": 1, "tiles_per_slide": 8, "batch_size": 8, "device": "cpu", "threads": 1}


@pytest.fixture(scope="module")
def pretrained(synthetic_samples, tmp_path_factory):
    """Weights pretrained on one sample (AnnData) and one bare image file (no ST data)."""
    out = tmp_path_factory.mktemp("pretrain") / "enc"
    slides = [synthetic_samples[0], image_path(synthetic_samples[1])]
    return run(pretrain_and_save(slides, out, **FAST))


def test_writes_safetensors_that_fit_the_quick_encoder(pretrained):
    from safetensors import safe_open

    from napari_mclstexp.model.encoders import make_image_encoder
    from napari_mclstexp.model.weights import load_weights_file

    assert pretrained.path.name == "enc.safetensors" and pretrained.path.is_file()
    assert pretrained.result.n_tiles == 16 and pretrained.n_slides == 2
    umask = os.umask(0)
    os.umask(umask)
    assert pretrained.path.stat().st_mode & 0o777 == 0o666 & ~umask  # as a plain open() would make it
    with safe_open(str(pretrained.path), "pt") as fh:
        meta = fh.metadata()
    assert (meta["objective"], meta["encoder"], meta["input_px"], meta["preset"]) == (
        "simclr",
        "smallcnn",
        "64",
        "quick",
    )
    enc, _ = make_image_encoder("smallcnn", "none", 64)
    load_weights_file(enc, pretrained.path)  # strict: every key, every shape
    saved = pretrained.result.state_dict["features.0.weight"]
    assert torch.equal(enc.state_dict()["features.0.weight"], saved)


def test_weights_train_a_bundle(pretrained, synthetic_samples, tmp_path):
    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.workflows.train import train_and_save

    cfg = get_preset("quick").replace(weights=str(pretrained.path), epochs=1, batch_size=64)
    saved = run(train_and_save(synthetic_samples[:2], cfg, tmp_path / "m.mclst", genes="hvg:8", device="cpu"))
    bundle = load_bundle(saved.path)
    info = bundle.metadata["encoder_weights"]
    assert info["sha256"] and info["file"] == str(pretrained.path.resolve())  # provenance: the pretrained file
    # the encoder trained end to end from the file: the bundle carries the fine-tuned weights, not the file's
    assert info["embedded"] is True
    model = bundle.build_model("cpu")
    tuned = saved.result.model.image_encoder.state_dict()
    for key, value in model.image_encoder.state_dict().items():
        assert torch.equal(value.cpu(), tuned[key].cpu()), key
    assert not torch.equal(tuned["features.0.weight"].cpu(), pretrained.result.state_dict["features.0.weight"])
    assert model.encode_images(np.zeros((2, 64, 64, 3), np.uint8)).shape == (2, cfg.embed_dim)


def test_weights_of_another_architecture_are_refused(pretrained):
    from napari_mclstexp.model.encoders import make_image_encoder

    with pytest.raises(WeightsUnavailableError, match="resnet18") as err:
        make_image_encoder("resnet18", str(pretrained.path), 64)
    assert str(pretrained.path) in str(err.value)


def test_tiles_are_tissue_and_seeded(synthetic_samples):
    img = image_path(synthetic_samples[0])
    a = run(iter_collect_tiles([img], tiles_per_slide=6, patch_px=64, store_px=24, seed=1))
    b = run(iter_collect_tiles([img], tiles_per_slide=6, patch_px=64, store_px=24, seed=1))
    assert a.shape == (6, 24, 24, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    with open_slide(img) as slide:
        mask, scale = slide_tissue_mask(slide)
    xy = tissue_tile_centres(mask, scale, 50, 64, np.random.default_rng(0), min_tissue=0.6)
    assert len(xy) > 0 and (tile_tissue_fraction(mask, scale, xy, 64) >= 0.6).all()
    assert tissue_tile_centres(np.zeros((8, 8), bool), 1.0, 5, 4, np.random.default_rng(0)).shape == (0, 2)


def test_bad_slides_give_one_clear_error(tmp_path, synthetic_samples):
    missing = tmp_path / "nope.svs"
    with pytest.raises(MissingInputError, match="slide not found") as err:
        run(pretrain_and_save([missing], tmp_path / "e.safetensors", **FAST))
    assert str(missing) in str(err.value)
    no_image = synthetic_samples[0].copy()
    no_image.uns["spatial"][next(iter(no_image.uns["spatial"]))]["metadata"].pop("source_image_path")
    with pytest.raises(InputError, match="names no image"):
        resolve_slides([no_image])
    with pytest.raises(InputError, match="no slides"):
        resolve_slides([])
    assert not (tmp_path / "e.safetensors").exists()


def test_output_checks(tmp_path):
    assert pretrain_output(tmp_path / "x") == tmp_path / "x.safetensors"
    with pytest.raises(OutputError, match="safetensors"):
        pretrain_output(tmp_path / "x.pth")
    with pytest.raises(OutputError, match="folder"):
        pretrain_output(tmp_path)

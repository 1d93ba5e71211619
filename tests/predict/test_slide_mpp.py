"""Whole-slide prediction on a slide whose file does not record its pixel size (JPEG/PNG, many
Visium full-resolution images): the caller's µm/px sets the patch size, as it does at spots."""

from __future__ import annotations

import numpy as np
from PIL import Image

from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.predict.slide import predict_whole_slide
from napari_mclstexp.predict.spots import patch_px_for
from napari_mclstexp.progress import run
from napari_mclstexp.synthetic import region_map, render_he


def test_mpp_given_for_a_slide_without_one(tiny_bundle, tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "flat.png"
    Image.fromarray(render_he(region_map((256, 256), 3, rng, smooth_px=64), rng)).save(path)
    assert tiny_bundle.patch_um  # trained at a known pixel size
    mpp = tiny_bundle.patch_um / (2 * tiny_bundle.patch_px)  # a slide scanned at twice the resolution
    pred = run(predict_whole_slide(tiny_bundle, path, PredictOptions(device="cpu"), detect_tissue=False, mpp=mpp))
    grid = pred.uns["mclstexp"]["grid"]
    assert int(grid["patch_px"]) == patch_px_for(tiny_bundle, mpp) == 2 * tiny_bundle.patch_px
    lib = next(iter(pred.uns["spatial"]))
    assert pred.uns["spatial"][lib]["metadata"]["microns_per_pixel"] == mpp
    plain = run(predict_whole_slide(tiny_bundle, path, PredictOptions(device="cpu"), detect_tissue=False))
    assert int(plain.uns["mclstexp"]["grid"]["patch_px"]) == tiny_bundle.patch_px  # unchanged without

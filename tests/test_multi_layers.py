"""Several genes, several slides (Qt-free): the composite's channels, grid cells, shared limits."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

from napari_mclstexp.layer_data import multi


def make_prediction(n: int = 400, genes: int = 12, *, seed: int = 0, tiles: bool = False, name: str = "P1"):
    """A synthetic prediction: spots on a jittered lattice (or whole-slide tiles on a grid)."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    rows, cols = np.divmod(np.arange(n), side)
    x = rng.normal(size=(n, genes)).astype(np.float32) + np.arange(genes, dtype=np.float32)
    obs = {"array_row": rows, "array_col": cols} if tiles else {}
    adata = ad.AnnData(x, obs=obs)
    adata.obs_names = [f"s{i}" for i in range(n)]
    adata.var_names = [f"G{j}" for j in range(genes)]
    adata.obsm["spatial"] = np.stack([100.0 + 20.0 * cols, 50.0 + 20.0 * rows], axis=1)
    meta = {"reliability": {"genes": list(adata.var_names), "r": list(np.linspace(0.9, 0.1, genes))}}
    if tiles:
        meta["grid"] = {"step_px": 20.0, "origin_xy": [100.0, 50.0], "shape": [side, side]}
    adata.uns["mclstexp"] = meta
    adata.uns["spatial"] = {name: {"metadata": {"microns_per_pixel": 0.5}}}
    return adata


def test_composite_channels_carry_the_three_genes_scaled():
    pred = make_prediction()
    comp = multi.composite(pred, ["G1", "G4", "G7"])
    for k, gene in enumerate(["G1", "G4", "G7"]):
        values = pred[:, gene].X.ravel()
        lo, hi = np.percentile(values, [2, 98])
        assert comp.limits[k] == pytest.approx((lo, hi), rel=1e-5)
        expected = np.clip((values - lo) / (hi - lo), 0, 1)
        np.testing.assert_allclose(comp.rgba[:, k], expected, atol=1e-5)
    assert (comp.rgba[:, 3] == 1).all()
    # magenta/cyan/yellow is additive too: red = G1 + G7 (clipped)
    cmy = multi.composite(pred, ["G1", "G4", "G7"], "magenta/cyan/yellow")
    np.testing.assert_allclose(cmy.rgba[:, 0], np.clip(comp.scaled[:, 0] + comp.scaled[:, 2], 0, 1), atol=1e-6)
    names, colors, _ = cmy.legend
    assert names[0].startswith("G1 (") and colors.tolist()[0] == [255, 0, 255]


def test_composite_refuses_bad_input():
    pred = make_prediction()
    with pytest.raises(ValueError, match="1 to 3"):
        multi.composite(pred, ["G0", "G1", "G2", "G3"])
    with pytest.raises(ValueError, match="NOPE not in"):
        multi.composite(pred, ["G0", "NOPE"])


def test_composite_of_tiles_is_an_rgba_image_on_the_grid():
    pred = make_prediction(n=100, tiles=True)
    comp = multi.composite(pred, ["G0", "G2"])
    image, kwargs, kind = multi.composite_layer(pred, comp)
    assert kind == "image" and kwargs["rgb"] and image.shape == (10, 10, 4)
    r, c = pred.obs["array_row"].to_numpy(), pred.obs["array_col"].to_numpy()
    np.testing.assert_allclose(image[r, c, 0], comp.scaled[:, 0])
    np.testing.assert_allclose(image[r, c, 1], comp.scaled[:, 1])
    # the raster lies on the tiles: tile (0, 0) at its centre (y0, x0) in µm
    np.testing.assert_allclose(kwargs["affine"][:2, 2], [50.0 * 0.5, 100.0 * 0.5])


def test_spots_beyond_the_limit_become_a_raster(monkeypatch):
    pred = make_prediction(n=900)
    assert multi.gene_layer(pred, "G0", (0, 1))[2] == "points"
    monkeypatch.setattr(multi, "RASTER_SPOTS", 500)
    image, kwargs, kind = multi.gene_layer(pred, "G0", (0.0, 1.0))
    assert kind == "image" and kwargs["contrast_limits"] == (0.0, 1.0)
    raster = kwargs["metadata"]["mclstexp"]["raster"]
    np.testing.assert_allclose(image[raster.rows, raster.cols], pred[:, "G0"].X.ravel())  # no spot lost
    assert np.isfinite(image).sum() == pred.n_obs


def test_shared_limits_span_every_slide(tmp_path):
    a, b = make_prediction(seed=1), make_prediction(seed=2)
    b.X = b.X + 5.0
    lo, hi = multi.shared_limits([a, b], "G3")
    both = np.concatenate([a[:, "G3"].X.ravel(), b[:, "G3"].X.ravel()])
    assert (lo, hi) == pytest.approx(tuple(np.percentile(both, [1, 99])), rel=1e-5)
    assert multi.common_genes([a, b[:, ["G2", "G1"]]]) == ["G1", "G2"]
    a.write_h5ad(tmp_path / "A.h5ad")
    b.write_h5ad(tmp_path / "B.h5ad")
    read = multi.read_prediction_folder(tmp_path)
    assert [r.n_obs for r in read] == [a.n_obs, b.n_obs]
    from napari_mclstexp.errors import InputError

    with pytest.raises(InputError, match="no .h5ad"):
        multi.read_prediction_folder(tmp_path / "missing")

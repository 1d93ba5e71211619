"""Visium HD bins in the viewer: a raster (one pixel per bin, µm, NaN outside tissue), gene switch swaps it."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.progress import run


@pytest.fixture
def hd_folder(tmp_path):
    from napari_mclstexp.synthetic.visium_hd import HDGeometry, write_visium_hd

    write_visium_hd(
        tmp_path / "HDV", n_rows=40, n_cols=48, bins=(2, 8), geometry=HDGeometry(0.5, (40.0, 30.0)), image=True, seed=6
    )
    return tmp_path / "HDV"


def test_load_visium_hd_folder_as_raster_and_switch_genes(make_napari_viewer, hd_folder):
    from napari.layers import Image

    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp._qt.load import load_layers

    viewer = make_napari_viewer()
    layers = add_layer_tuples(viewer, run(load_layers(None, str(hd_folder))))
    slide, bins = layers
    assert isinstance(bins, Image) and bins.metadata["mclstexp"]["role"] == "spots"
    adata = bins.metadata["mclstexp"]["adata"]
    assert bins.data.shape == (10, 12) and np.isnan(bins.data).sum() == bins.data.size - adata.n_obs
    # bin s_008um_00005_00007-1 is centred on full-res px (x 158, y 116): world µm = px × 0.5, same as the slide
    i = adata.obs_names.get_loc("s_008um_00005_00007-1")
    raster = bins.metadata["mclstexp"]["raster"]
    world = bins.data_to_world((raster.rows[i], raster.cols[i]))
    np.testing.assert_allclose(world, [58.0, 79.0])
    np.testing.assert_allclose(slide.data_to_world((116, 158)), [58.0, 79.0])

    explore = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Explore")[1]
    explore.target.select(bins)
    gene = str(adata.var_names[2])
    ms = explore.set_gene(gene)
    counts = adata[:, gene].X.toarray().ravel()
    assert np.isfinite(ms)
    shown = bins.data[raster.rows, raster.cols]
    np.testing.assert_array_equal(shown > shown.min(), counts > 0)  # normalised, but zero stays lowest
    assert np.isnan(bins.data).sum() == bins.data.size - adata.n_obs


def test_domains_of_binned_predictions_are_a_labels_raster(make_napari_viewer, qtbot, hd_folder):
    import anndata as ad
    from napari.layers import Labels

    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.io.visium_hd import read_visium_hd
    from napari_mclstexp.layer_data import data_layer

    hd = read_visium_hd(hd_folder, 8)
    rng = np.random.default_rng(0)
    # predictions as predict_at_bins writes them: dense X over the bins, the bin grid kept
    pred = ad.AnnData(
        np.log1p(hd.X.toarray()).astype(np.float32) + rng.normal(0, 0.01, hd.shape).astype(np.float32),
        obs=hd.obs.copy(),
        var=hd.var.copy(),
    )
    pred.obsm["spatial"] = hd.obsm["spatial"]
    pred.uns.update(
        spatial=hd.uns["spatial"],
        bin_grid=hd.uns["bin_grid"],
        mclstexp={"bundle": {"genes": list(hd.var_names)}, "mode": "bins"},
    )
    viewer = make_napari_viewer()
    (layer,) = add_layer_tuples(viewer, [data_layer(pred, 0.5)])
    assert layer.metadata["mclstexp"]["role"] == "predicted" and layer.data.shape == (10, 12)
    domains = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Domains")[1]
    domains.target.select(layer)
    domains.k.setValue(3)
    with qtbot.waitSignal(domains.task.finished, timeout=60_000) as blocker:
        domains.run()
    labels, _ = blocker.args[0]
    (domain_map,) = [lyr for lyr in viewer.layers if isinstance(lyr, Labels)]
    raster = layer.metadata["mclstexp"]["raster"]
    assert np.array_equal(domain_map.data[raster.rows, raster.cols], labels + 1)
    assert (domain_map.data > 0).sum() == pred.n_obs
    np.testing.assert_allclose(domain_map.affine.affine_matrix, layer.affine.affine_matrix)
    # Export writes rasters from their AnnData: one row per bin, with the domains of the map
    import pandas as pd

    export = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Export")[1]
    export.layer.select(domain_map)
    table = pd.read_csv(export.export(".csv", str(hd_folder / "bins.csv")))
    assert len(table) == pred.n_obs and table["domain"].tolist() == labels.tolist()


def test_region_review_on_a_raster(make_napari_viewer, qtbot, hd_folder):
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.io.visium_hd import read_visium_hd
    from napari_mclstexp.layer_data import data_layer

    hd = read_visium_hd(hd_folder, 8)
    viewer = make_napari_viewer()
    (layer,) = add_layer_tuples(viewer, [data_layer(hd, 0.5)])
    explore = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Explore")[1]
    explore.target.select(layer)
    explore.regions.draw_region()
    # a rectangle in world µm: y 40–80, x 50–100 (full-res px y 80–160, x 100–200)
    viewer.layers["region"].add_polygons([np.array([[40, 50], [40, 100], [80, 100], [80, 50]], float)])
    with qtbot.waitSignal(explore.regions.task.finished, timeout=60_000) as blocker:
        explore.regions.rank()
    table = blocker.args[0]
    xy = hd.obsm["spatial"]
    expected = (xy[:, 0] > 100) & (xy[:, 0] < 200) & (xy[:, 1] > 80) & (xy[:, 1] < 160)
    assert table is not None and expected.sum() > 0
    assert explore.regions.summary.text().startswith(f"{int(expected.sum())} spots inside")

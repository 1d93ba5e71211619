"""Annotations in the viewer: Load adds one Shapes layer per class, Explore reviews every region, Export
writes every shape back (same classes, colours, vertices within 1 px)."""

from __future__ import annotations

import json

import numpy as np
import pytest

MPP = 0.5
TUMOUR = [[25, 25], [255, 25], [255, 255], [25, 255], [25, 25]]  # spots sit at 20 + 40 k px: none on an edge
HOLE = [[90, 90], [150, 90], [150, 150], [90, 150], [90, 90]]
STROMA = [[265, 5], [505, 5], [505, 505], [265, 505], [265, 5]]


def _geojson(path):
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [TUMOUR, HOLE]},
            "properties": {"objectType": "annotation", "classification": {"name": "Tumor", "color": [200, 0, 0]}},
        },
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [STROMA]},
            "properties": {"objectType": "annotation", "classification": {"name": "Stroma", "colorRGB": -16744448}},
        },
    ] + [
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[i, i], [i + 5, i], [i, i + 5], [i, i]]]},
            "properties": {"objectType": "detection"},
        }
        for i in range(30)
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_annotations_load_review_export(make_napari_viewer, qtbot, synthetic_sample, tmp_path):
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.io.annotations import read_annotations
    from napari_mclstexp.layer_data import data_layer
    from napari_mclstexp.sample import library_id

    synthetic_sample.uns["spatial"][library_id(synthetic_sample)]["metadata"]["microns_per_pixel"] = MPP
    viewer = make_napari_viewer()
    (spots,) = add_layer_tuples(viewer, [data_layer(synthetic_sample, MPP)])
    load = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Load")[1]
    tumour, stroma = load.annotations.add(str(_geojson(tmp_path / "qupath.geojson")))
    assert (tumour.name, stroma.name) == ("Tumor", "Stroma")
    assert np.allclose(tumour.scale, spots.scale) and np.allclose(tumour.scale, [MPP, MPP])
    assert np.allclose(tumour.edge_color[0][:3], [200 / 255, 0, 0])
    assert np.allclose(stroma.edge_color[0][:3], [0, 128 / 255, 0])  # -16744448 = ARGB 0xFF008000
    assert len(tumour.data) == 2 and "30 detections/cells skipped" in load.annotations.info.text()
    # world position of a vertex: (row, col) px × µm per px — the same place as the spots there
    assert np.allclose(tumour.data_to_world(tumour.data[0][1]), spots.data_to_world([25.0, 255.0]))

    explore = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Explore")[1]
    explore.target.select(spots)
    explore.regions.draw_region()
    viewer.layers["region"].add_polygons([np.array([[290, 0], [290, 210], [490, 210], [490, 0]], float)])
    with qtbot.waitSignal(explore.regions.task.finished, timeout=60_000) as blocker:
        explore.regions.rank()
    table = blocker.args[0]
    assert table is explore.regions.table and table["class"].unique().tolist() == ["Tumor", "Stroma", "region"]
    xy = synthetic_sample.obsm["spatial"]
    x, y = xy.T
    expected = {
        "Tumor": (x > 25) & (x < 255) & (y > 25) & (y < 255) & ~((x > 90) & (x < 150) & (y > 90) & (y < 150)),
        "Stroma": (x > 265) & (x < 505) & (y > 5) & (y < 505),
        "region": (x < 210) & (y > 290) & (y < 490),
    }
    for name, inside in expected.items():
        assert table.loc[table["class"] == name, "n_inside"].iloc[0] == inside.sum(), name
    assert "Tumor:" in explore.regions.summary.text() and explore.regions.table_widget.rowCount() > 3

    export = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Export")[1]
    out = export.annotations(str(tmp_path / "all.geojson"))
    back = read_annotations(out)
    assert [(c.name, c.color) for c in back.classes] == [
        ("Tumor", (200, 0, 0)),
        ("Stroma", (0, 128, 0)),
        *[("region", back.classes[2].color)],
    ]
    ring = back.classes[0].regions[0]
    assert np.abs(ring.exterior - np.array(TUMOUR[:-1], float)).max() <= 1.0
    assert np.abs(ring.holes[0] - np.array(HOLE[:-1], float)).max() <= 1.0
    assert np.allclose(back.classes[2].regions[0].exterior[2], [210.0, 490.0], atol=1.0)  # drawn (row, col) → (x, y)


def test_geojson_opens_through_the_npe2_reader(make_napari_viewer, synthetic_sample, tmp_path):
    """File > Open / drag and drop: napari finds our reader for .geojson; the classes land on the µm scale
    of the spots already open (px, scale 1, in a viewer without them)."""
    import npe2
    from napari.layers import Shapes

    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.layer_data import data_layer
    from napari_mclstexp.sample import library_id

    path = _geojson(tmp_path / "qupath.geojson")
    viewer = make_napari_viewer()  # napari's plugin manager has discovered the plugins
    readers = [r.command for r in npe2.PluginManager.instance().iter_compatible_readers([str(path)])]
    assert "napari-mclstexp.get_annotations_reader" in readers
    tumour, stroma = viewer.open(str(path), plugin="napari-mclstexp")
    assert isinstance(tumour, Shapes) and (tumour.name, stroma.name) == ("Tumor", "Stroma")
    assert np.allclose(tumour.scale, [1.0, 1.0]) and len(tumour.data) == 2  # the outer ring and its hole
    assert np.allclose(tumour.data[0][:, ::-1], np.array(TUMOUR[:-1], float))  # (row, col) = (y, x) px
    assert np.allclose(stroma.edge_color[0][:3], [0, 128 / 255, 0])
    assert "30 detections/cells skipped" in tumour.metadata["mclstexp"]["summary"]

    viewer.layers.clear()
    synthetic_sample.uns["spatial"][library_id(synthetic_sample)]["metadata"]["microns_per_pixel"] = MPP
    (spots,) = add_layer_tuples(viewer, [data_layer(synthetic_sample, MPP)])
    tumour, _ = viewer.open(str(path), plugin="napari-mclstexp")
    assert np.allclose(tumour.scale, [MPP, MPP])
    assert np.allclose(tumour.data_to_world(tumour.data[0][1]), spots.data_to_world([25.0, 255.0]))


def test_geojson_of_detections_only_says_so(make_napari_viewer, tmp_path):
    from napari_mclstexp._reader import get_annotations_reader, read_annotation_layers

    detections = [
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [5, 0], [0, 5], [0, 0]]]},
            "properties": {"objectType": "detection"},
        }
    ] * 12
    path = tmp_path / "cells.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": detections}))
    assert get_annotations_reader(str(path)) is read_annotation_layers
    assert get_annotations_reader(str(tmp_path / "spots.h5ad")) is None
    viewer = make_napari_viewer()
    with pytest.raises(Exception, match="no annotation polygons in the file .12 detections/cells skipped") as info:
        viewer.open(str(path), plugin="napari-mclstexp")
    assert str(path) in str(info.value) and not viewer.layers

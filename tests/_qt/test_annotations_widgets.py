"""Annotations in the viewer: Load adds one Shapes layer per class, Explore reviews every region, Export
writes every shape back (same classes, colours, vertices within 1 px)."""

from __future__ import annotations

import json

import numpy as np

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

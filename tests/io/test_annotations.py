"""QuPath GeoJSON annotations: read (classes, colours, holes, detections skipped), write, round trip."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from napari_mclstexp.errors import InputError
from napari_mclstexp.io.annotations import (
    AnnotationClass,
    Region,
    parse_color,
    read_annotations,
    write_annotations,
)
from napari_mclstexp.io.export import spots_to_geojson

SQUARE = [[0, 0], [100, 0], [100, 100], [0, 100], [0, 0]]
HOLE = [[40, 40], [60, 40], [60, 60], [40, 60], [40, 40]]


def _qupath_file(tmp_path):
    """A file as QuPath 0.4 writes it: annotations (int and list colours, a hole, a MultiPolygon) + cells."""
    features = [
        {
            "type": "Feature",
            "id": "a1",
            "geometry": {"type": "Polygon", "coordinates": [SQUARE, HOLE]},
            "properties": {"objectType": "annotation", "classification": {"name": "Tumor", "color": [200, 0, 0]}},
        },
        {
            "type": "Feature",
            "geometry": {
                "type": "MultiPolygon",
                "coordinates": [[[[200, 0], [300, 0], [300, 50], [200, 0]]], [[[400, 400], [450, 400], [450, 450]]]],
            },
            # QuPath 0.2 packs ARGB into one signed int: 0xFF00FF00 = green
            "properties": {"objectType": "annotation", "classification": {"name": "Stroma", "colorRGB": -16711936}},
        },
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[500, 500], [510, 500], [510, 510], [500, 500]]]},
            "properties": {"objectType": "annotation", "name": "loose"},
        },
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 5]}, "properties": {}},
    ]
    for i in range(50):  # cell detections: not annotations
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[[i, i], [i + 1, i], [i + 1, i + 1], [i, i]]]},
                "properties": {"objectType": "cell", "classification": {"name": "Tumor", "color": [200, 0, 0]}},
            }
        )
    path = tmp_path / "qupath.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_reads_classes_colours_holes_and_skips_detections(tmp_path):
    ann = read_annotations(_qupath_file(tmp_path))
    assert [c.name for c in ann.classes] == ["Tumor", "Stroma", "Unclassified"]
    assert ann.classes[0].color == (200, 0, 0) and ann.classes[1].color == (0, 255, 0)
    assert ann.n_detections_skipped == 50 and ann.n_other_skipped == 1
    assert "50 detections" in ann.summary()
    tumor = ann.classes[0]
    assert len(tumor.regions) == 1 and len(tumor.regions[0].holes) == 1
    assert tumor.regions[0].exterior.shape == (4, 2)  # closing vertex dropped
    inside = tumor.contains(np.array([[10.0, 10.0], [50.0, 50.0], [150.0, 50.0]]))
    assert inside.tolist() == [True, False, False]  # the hole is outside
    assert len(ann.classes[1].regions) == 2
    assert ann.classes[2].regions[0].name == "loose"


def test_round_trip_keeps_classes_colours_and_vertices(tmp_path):
    first = read_annotations(_qupath_file(tmp_path))
    out = write_annotations(first, tmp_path / "out.geojson")
    doc = json.loads(out.read_text())
    assert all(f["properties"]["objectType"] == "annotation" for f in doc["features"])
    second = read_annotations(out)
    assert [(c.name, c.color, len(c.regions)) for c in second.classes] == [
        (c.name, c.color, len(c.regions)) for c in first.classes
    ]
    for a, b in zip(first.classes, second.classes, strict=True):
        for ra, rb in zip(a.regions, b.regions, strict=True):
            assert np.abs(ra.exterior - rb.exterior).max() <= 1.0
            assert len(ra.holes) == len(rb.holes)
            for ha, hb in zip(ra.holes, rb.holes, strict=True):
                assert np.abs(ha - hb).max() <= 1.0


def test_written_file_is_what_qupath_expects(tmp_path):
    cls = AnnotationClass("Immune", (10, 20, 30), [Region(np.array([[1.23456, 2.0], [5.0, 2.0], [5.0, 7.0]]))])
    doc = json.loads(write_annotations([cls], tmp_path / "a.geojson").read_text())
    feature = doc["features"][0]
    ring = feature["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] == [1.235, 2.0] and len(ring) == 4
    assert feature["properties"]["classification"] == {"name": "Immune", "color": [10, 20, 30]}


def test_our_spot_export_is_detections_only(tmp_path):
    a = ad.AnnData(np.ones((4, 2), np.float32), var=pd.DataFrame(index=["G1", "G2"]))
    a.obs_names = [f"s{i}" for i in range(4)]
    a.obsm["spatial"] = np.array([[10.0, 10.0], [30.0, 10.0], [10.0, 30.0], [30.0, 30.0]])
    path = spots_to_geojson(a, tmp_path / "spots.geojson", domains=np.array([0, 1, 0, 1]), spot_diameter_px=8.0)
    with pytest.raises(InputError, match=r"spots.geojson: no annotation polygons.*4 detections"):
        read_annotations(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ('{"type": "Topology"}', "not GeoJSON"),
        ('{"type": "FeatureCollection", "features": 3}', "without a 'features' list"),
        (
            '{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[["a", 1]]]}}',
            "polygon ring",
        ),
        ('{"type": "FeatureCollection", "features": []}', "no annotation polygons"),
    ],
)
def test_broken_files_name_the_file(tmp_path, text, match):
    path = tmp_path / "broken.geojson"
    path.write_text(text)
    with pytest.raises(InputError, match=match) as err:
        read_annotations(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_annotations(tmp_path / "nope.geojson")


def test_parse_color_forms():
    assert parse_color([1, 2, 3]) == (1, 2, 3)
    assert parse_color(0xFF8040) == (255, 128, 64)
    assert parse_color(-65536) == (255, 0, 0)  # ARGB red as Java's signed int
    assert parse_color("red") is None and parse_color([300, 0, 0]) is None and parse_color(True) is None

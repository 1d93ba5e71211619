"""Annotation classes ↔ Shapes layers (one per class; holes as unfilled polygons), without a viewer."""

from __future__ import annotations

import numpy as np
from napari.layers import Layer

from napari_mclstexp.io.annotations import AnnotationClass, Region
from napari_mclstexp.layer_data.annotations import annotation_layers, layers_to_annotations

MPP = 0.5


def _classes():
    outer = np.array([[100.0, 100.0], [900.0, 100.0], [900.0, 700.0], [100.0, 700.0]])
    hole = np.array([[400.0, 300.0], [600.0, 300.0], [500.0, 500.0]])
    tumour = AnnotationClass("Tumor", (200, 0, 0), [Region(outer, [hole], "T1"), Region(outer + 1000)])
    stroma = AnnotationClass("Stroma", (0, 150, 0), [Region(outer[:3] + [0, 2000])])
    return [tumour, stroma]


def test_layers_carry_class_colour_scale_and_holes():
    layers = annotation_layers(_classes(), MPP)
    assert [kw["name"] for _, kw, kind in layers] == ["Tumor", "Stroma"] and layers[0][2] == "shapes"
    data, kw, _ = layers[0]
    assert len(data) == 3 and kw["scale"] == (MPP, MPP)
    assert np.allclose(data[0][0], [100.0, 100.0]) and np.allclose(data[1][2], [500.0, 500.0])  # (row, col)
    assert kw["features"]["hole"].tolist() == [False, True, False]
    assert kw["features"]["region"].tolist() == [0, 0, 1]
    assert kw["face_color"][1][3] == 0.0 and kw["face_color"][0][3] > 0  # holes unfilled
    assert np.allclose(kw["edge_color"][:3], [200 / 255, 0, 0])


def test_layers_back_to_classes_with_drawn_shapes():
    layers = [Layer.create(d, dict(kw), t) for d, kw, t in annotation_layers(_classes(), MPP)]
    tumour = layers[0]
    # a rectangle and an ellipse drawn later, in the layer's data (px) coordinates
    tumour.add_rectangles([np.array([[3000.0, 3000.0], [3000.0, 3100.0], [3100.0, 3100.0], [3100.0, 3000.0]])])
    tumour.add_ellipses([np.array([[4000.0, 4000.0], [4000.0, 4200.0], [4100.0, 4200.0], [4100.0, 4000.0]])])
    tumour.add_lines([np.array([[0.0, 0.0], [10.0, 10.0]])])
    back = layers_to_annotations(layers)
    assert [(c.name, c.color) for c in back.classes] == [("Tumor", (200, 0, 0)), ("Stroma", (0, 150, 0))]
    regions = back.classes[0].regions
    assert len(regions) == 4 and len(regions[0].holes) == 1 and regions[0].name == "T1"
    original = _classes()[0].regions
    assert np.abs(regions[0].exterior - original[0].exterior).max() < 1e-6
    assert np.abs(regions[0].holes[0] - original[0].holes[0]).max() < 1e-6
    assert np.allclose(regions[2].exterior.min(axis=0), [3000.0, 3000.0])  # (x, y)
    ellipse = regions[3]
    assert len(ellipse.exterior) == 64 and np.allclose(ellipse.exterior.mean(axis=0), [4100.0, 4050.0])
    assert ellipse.contains(np.array([[4100.0, 4050.0], [4001.0, 4001.0]])).tolist() == [True, False]


def test_a_layer_in_world_units_without_recorded_pixel_size():
    triangle = [np.array([[10.0, 20.0], [10.0, 40.0], [30.0, 40.0]])]
    layer = Layer.create(triangle, {"scale": (2.0, 2.0), "shape_type": "polygon"}, "shapes")
    (cls,) = layers_to_annotations([layer], mpp=0.5).classes  # world µm / 0.5 µm per px
    assert cls.name == layer.name and np.allclose(cls.regions[0].exterior[0], [80.0, 40.0])

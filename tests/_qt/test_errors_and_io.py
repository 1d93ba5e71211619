"""Readers, writers and bad input: errors reach the user as notifications, never as exceptions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from napari_mclstexp import _reader, _writer
from napari_mclstexp.errors import ImageReadError, InputError


def test_get_reader_dispatch(tmp_path, h5ad_paths):
    assert _reader.get_reader(str(h5ad_paths[0])) is _reader.read_h5ad_layers
    assert _reader.get_reader(str(tmp_path / "x.ome.tif")) is _reader.read_slide_layers
    assert _reader.get_reader(str(tmp_path / "x.SVS")) is _reader.read_slide_layers
    assert _reader.get_reader(str(tmp_path / "notes.txt")) is None
    assert _reader.get_reader([str(h5ad_paths[0]), str(h5ad_paths[1])]) is None
    (tmp_path / "her" / "ST-cnts").mkdir(parents=True)
    assert _reader.get_folder_reader(str(tmp_path / "her")) is _reader.read_her2st_layers
    (tmp_path / "vis" / "spatial").mkdir(parents=True)
    (tmp_path / "vis" / "filtered_feature_bc_matrix.h5").write_bytes(b"")
    assert _reader.get_folder_reader(str(tmp_path / "vis")) is _reader.read_visium_layers
    assert _reader.get_folder_reader(str(tmp_path / "x.ome.tif")) is None


def test_h5ad_reader_layers(h5ad_paths, synthetic_samples):
    image, points = _reader.read_h5ad_layers(str(h5ad_paths[0]))
    assert image[2] == "image" and image[1]["rgb"] and image[1]["scale"] == (1.0, 1.0)
    assert points[2] == "points"
    xy = synthetic_samples[0].obsm["spatial"]
    assert np.allclose(points[0], xy[:, ::-1])
    assert points[1]["size"] == pytest.approx(22.0)


def test_corrupt_files_raise_typed_errors(tmp_path):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(ImageReadError, match="broken.tif"):
        _reader.read_slide_layers(str(bad))
    bad_h5 = tmp_path / "broken.h5ad"
    bad_h5.write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="broken.h5ad"):
        _reader.read_h5ad_layers(str(bad_h5))


def test_corrupt_file_in_load_widget_gives_notification(make_napari_viewer, qtbot, tmp_path, notes):
    viewer = make_napari_viewer()
    widget = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Load")[1]
    bad = tmp_path / "broken.svs"
    bad.write_bytes(b"II*\x00" + bytes(100))
    with qtbot.waitSignal(widget.task.finished, timeout=30_000) as blocker:
        widget.load(slide=str(bad), spots="")
    assert blocker.args == [None] and len(viewer.layers) == 0
    errors = [n for n in notes if str(getattr(n, "severity", "")).lower().endswith("error")]
    assert errors and "broken.svs" in str(errors[-1].message)
    # missing input and a bundle that is not a bundle: notifications too, the viewer survives
    with qtbot.waitSignal(widget.task.finished, timeout=30_000):
        widget.load(slide="", spots=str(tmp_path / "missing.h5ad"))
    assert "missing.h5ad" in str(notes[-1].message)
    predict = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Predict")[1]
    fake = tmp_path / "model.mclst"
    fake.write_bytes(b"PK\x03\x04 not really a zip")
    predict.bundle_path.setText(str(fake))
    assert predict.predict() is None
    assert "model.mclst" in str(notes[-1].message)


def test_writers_from_foreign_points_layer(tmp_path):
    data = np.array([[10.0, 20.0], [30.0, 40.0]])  # (row, col)
    meta = {
        "features": pd.DataFrame({"GENE": [1.5, 2.5], "domain": ["a", "b"]}),
        "size": np.array([4.0, 4.0]),
        "metadata": {},
    }
    geo = _writer.write_geojson(str(tmp_path / "f.geojson"), data, meta)[0]
    feats = json.loads(open(geo).read())["features"]
    ring = np.array(feats[1]["geometry"]["coordinates"][0])
    assert np.allclose(ring[:-1].mean(axis=0), [40.0, 30.0], atol=1e-3)  # (x, y) = (col, row)
    assert feats[1]["properties"]["classification"]["name"] == "Domain b"
    assert feats[0]["properties"]["measurements"]["GENE"] == 1.5
    csv = pd.read_csv(_writer.write_csv(str(tmp_path / "f.csv"), data, meta)[0])
    assert csv[["x", "y"]].to_numpy().tolist() == [[20.0, 10.0], [40.0, 30.0]]
    assert csv["domain"].tolist() == ["a", "b"]


@pytest.mark.shared_data
def test_visium_folder_reader(visium_tiny_dir):
    folder = visium_tiny_dir / "1.0.0"
    reader = _reader.get_folder_reader(str(folder))
    assert reader is _reader.read_visium_layers
    layers = reader(str(folder))
    points = [t for t in layers if t[2] == "points"][0]
    assert points[0].shape == (100, 2) and points[1]["size"] > 0
    adata = points[1]["metadata"]["mclstexp"]["adata"]
    assert np.allclose(points[0], adata.obsm["spatial"][:, ::-1])


@pytest.mark.shared_data
def test_her2st_sections_with_images(her2st_dir):
    from napari_mclstexp.io.spots import her2st_sections_with_images

    assert _reader.get_folder_reader(str(her2st_dir)) is _reader.read_her2st_layers
    assert her2st_sections_with_images(her2st_dir) == ["B4", "C2", "C3", "C4"]


def test_train_without_sections_or_output_notifies(make_napari_viewer, qtbot, notes, tmp_path):
    viewer = make_napari_viewer()
    train = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Train")[1]
    train.out.setText(str(tmp_path / "m.mclst"))
    with qtbot.waitSignal(train.task.finished, timeout=30_000) as blocker:
        train.train()
    assert blocker.args == [None] and "tick at least one section" in str(notes[-1].message)
    train.files.setText(str(tmp_path / "missing.h5ad"))
    train._add_file()
    assert train.selected_samples() == [str(tmp_path / "missing.h5ad")]
    with qtbot.waitSignal(train.task.finished, timeout=30_000):
        train.train()
    assert "missing.h5ad" in str(notes[-1].message)
    assert not (tmp_path / "m.mclst").exists()

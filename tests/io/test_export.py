"""QuPath GeoJSON and CSV export of predictions."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from napari_mclstexp.errors import InputError, OutputError
from napari_mclstexp.io.export import predictions_to_csv, spots_to_geojson, table_to_csv


@pytest.fixture
def preds():
    rng = np.random.default_rng(0)
    a = ad.AnnData(
        X=rng.random((5, 3)).astype(np.float32),
        obs=pd.DataFrame({"uncertainty": [0.1, 0.2, np.nan, 0.4, 0.5]}, index=[f"s{i}" for i in range(5)]),
        var=pd.DataFrame(index=["G1", "G2", "G3"]),
    )
    a.obsm["spatial"] = np.array([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0], [70.0, 80.0], [90.0, 100.0]])
    return a


def test_geojson_is_qupath_detections(preds, tmp_path):
    out = spots_to_geojson(
        preds, tmp_path / "spots.geojson", domains=np.array([0, 1, 0, 2, 1]), spot_diameter_px=10.0, n_vertices=8
    )
    data = json.loads(out.read_text())
    assert data["type"] == "FeatureCollection" and len(data["features"]) == 5
    f = data["features"][1]
    assert f["geometry"]["type"] == "Polygon"
    ring = np.array(f["geometry"]["coordinates"][0])
    assert ring.shape == (9, 2) and np.allclose(ring[0], ring[-1])
    assert np.allclose(ring[:-1].mean(axis=0), [30.0, 40.0], atol=1e-3)  # (x, y) centre
    assert np.allclose(np.hypot(*(ring - [30, 40]).T), 5.0, atol=1e-2)  # radius = diameter / 2
    props = f["properties"]
    assert props["objectType"] == "detection" and props["name"] == "s1"
    assert props["measurements"]["G2"] == pytest.approx(float(preds.X[1, 1]), rel=1e-6)
    assert props["measurements"]["uncertainty"] == pytest.approx(0.2)
    assert data["features"][2]["properties"]["measurements"]["uncertainty"] is None  # NaN → null
    names = [g["properties"]["classification"]["name"] for g in data["features"]]
    assert names == ["Domain 0", "Domain 1", "Domain 0", "Domain 2", "Domain 1"]
    colors = {
        g["properties"]["classification"]["name"]: tuple(g["properties"]["classification"]["color"])
        for g in data["features"]
    }
    assert len(set(colors.values())) == 3


def test_geojson_points_and_obs_domains(preds, tmp_path):
    preds.obs["dom"] = ["a", "b", "a", "a", "b"]
    out = spots_to_geojson(preds, tmp_path / "p.geojson", genes=["G3"], domains="dom", spot_diameter_px=0)
    f = json.loads(out.read_text())["features"][0]
    assert f["geometry"] == {"type": "Point", "coordinates": [10.0, 20.0]}
    assert set(f["properties"]["measurements"]) == {"G3", "uncertainty"}
    with pytest.raises(InputError, match="not in the predictions"):
        spots_to_geojson(preds, tmp_path / "x.geojson", genes=["NOPE"], spot_diameter_px=1)
    with pytest.raises(OutputError):
        spots_to_geojson(preds, tmp_path, spot_diameter_px=1)


def test_csv_round_trip(preds, tmp_path):
    out = predictions_to_csv(preds, tmp_path / "pred.csv", domains=np.array([3, 3, 1, 1, 2]))
    back = pd.read_csv(out)
    assert back.columns.tolist() == ["spot", "x", "y", "uncertainty", "domain", "G1", "G2", "G3"]
    assert np.allclose(back[["G1", "G2", "G3"]].to_numpy(), preds.X, rtol=1e-5)
    assert back["domain"].tolist() == [3, 3, 1, 1, 2]
    t = table_to_csv(pd.DataFrame({"gene": ["A"], "difference": [1.5]}), tmp_path / "t.csv")
    assert pd.read_csv(t)["difference"].iloc[0] == 1.5


def test_csv_carries_novelty_and_the_model_card(preds, tmp_path):
    preds.obs["novelty"] = np.linspace(0, 1, 5, dtype=np.float32)
    card = {"sections": {"B4": {"patient": "B", "n_spots": 10}}, "patients": ["B"], "n_genes": 3}
    preds.uns["mclstexp"] = {"model_card": card}
    preds.write_h5ad(tmp_path / "p.h5ad")  # as it comes back from a file: arrays, not lists
    back = ad.read_h5ad(tmp_path / "p.h5ad")
    predictions_to_csv(back, tmp_path / "p.csv")
    table = pd.read_csv(tmp_path / "p.csv")
    np.testing.assert_allclose(table["novelty"], preds.obs["novelty"], rtol=1e-6)
    assert json.loads((tmp_path / "p.model_card.json").read_text()) == card

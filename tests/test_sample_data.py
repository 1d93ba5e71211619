"""The bundled sample folder, its resolver, and the npe2 sample-data contributions (never downloads)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest

from napari_mclstexp import _sample_data
from napari_mclstexp.errors import MissingInputError
from napari_mclstexp.workflows import demo

REPO = Path(__file__).resolve().parents[1]


def test_sample_data_dir_finds_the_source_tree():
    folder = demo.sample_data_dir()
    assert (folder / demo.SAMPLE_H5AD).is_file()
    assert (folder / demo.SAMPLE_IMAGE).is_file()
    assert (folder / demo.SAMPLE_BUNDLE).is_file()


def test_sample_data_dir_prefers_the_installed_copy(tmp_path, monkeypatch):
    installed = tmp_path / "site-packages" / "napari_mclstexp" / "sample_data"
    installed.mkdir(parents=True)
    (installed / demo.SAMPLE_H5AD).write_bytes(b"x")
    monkeypatch.setattr(demo, "_candidate_dirs", lambda: [installed, REPO / "sample_data"])
    assert demo.sample_data_dir() == installed


def test_sample_data_dir_missing_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "_candidate_dirs", lambda: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(MissingInputError, match="make_sample_data.py"):
        demo.sample_data_dir()


def test_sample_data_fits_the_budget():
    total = sum(p.stat().st_size for p in demo.sample_data_dir().iterdir() if p.is_file())
    assert total <= 30e6


def test_wheel_maps_sample_data_into_the_package():
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert include["sample_data"] == "napari_mclstexp/sample_data"


def test_demo_sample_image_path_is_relative_on_disk_and_resolved_on_load(tmp_path):
    import anndata as ad

    src = demo.sample_data_dir()
    raw = ad.read_h5ad(src / demo.SAMPLE_H5AD)
    assert raw.uns["spatial"]["DEMO1"]["metadata"]["source_image_path"] == demo.SAMPLE_IMAGE
    # a copy of the folder elsewhere (another machine) still finds its image
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in (demo.SAMPLE_H5AD, demo.SAMPLE_IMAGE):
        shutil.copy(src / name, moved / name)
    adata = demo.load_demo_sample(moved)
    path = Path(adata.uns["spatial"]["DEMO1"]["metadata"]["source_image_path"])
    assert path == (moved / demo.SAMPLE_IMAGE).resolve()
    train, test = demo.split_demo_sample(adata)
    assert train.n_obs + test.n_obs == adata.n_obs
    assert train.obsm["spatial"][:, 0].max() < test.obsm["spatial"][:, 0].min()
    assert set(test.obs["annotation"]) == set(adata.obs["annotation"])  # every region is held out too


def test_demo_sample_missing_image_is_a_clear_error(tmp_path):
    shutil.copy(demo.sample_data_dir() / demo.SAMPLE_H5AD, tmp_path / demo.SAMPLE_H5AD)
    with pytest.raises(MissingInputError, match="image"):
        demo.load_demo_sample(tmp_path)


def test_demo_slide_is_a_pyramid_with_its_pixel_size():
    from napari_mclstexp.io.wsi import open_slide

    with open_slide(demo.sample_data_dir() / demo.SAMPLE_IMAGE) as slide:
        assert slide.shape == (4096, 4096)
        assert slide.mpp == pytest.approx(1.0)
        assert len(slide.levels) >= 4 and slide.downsamples[1] == pytest.approx(2.0)
        assert slide.read_region(0, 0, 8, 8).mean() > 230  # glass in the corner


def test_make_demo_sample_layers():
    layers = _sample_data.make_demo_sample()
    kinds = [kind for _, _, kind in layers]
    assert kinds == ["image", "points"]
    image, kwargs, _ = layers[0]
    assert kwargs["multiscale"] and kwargs["rgb"]
    assert image[0].shape[:2] == (4096, 4096)
    points, pkw, _ = layers[1]
    assert points.shape[1] == 2 and len(points) > 1000
    assert pkw["size"] == pytest.approx(55.0)
    assert pkw["face_color"].shape == (len(points), 4)
    regions = pkw["features"]["annotation"]
    # spots of the same region share a colour, different regions differ
    first = {r: tuple(pkw["face_color"][np.flatnonzero(regions == r)[0]]) for r in set(regions)}
    assert len(set(first.values())) == len(first)


def test_her2st_sample_offline_is_one_clear_error(tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(_sample_data, "urlopen", offline)
    monkeypatch.setenv("MCLSTEXP_CACHE", str(tmp_path / "cache"))
    with pytest.raises(MissingInputError, match="offline") as info:
        _sample_data.her2st_sample()
    message = info.value.problem
    assert message.startswith("could not download") and "github.com/almaan/her2st" in message
    assert "https://" not in message and str(tmp_path) not in message  # the folder is the path, not the text
    leftovers = list((tmp_path / "cache").rglob("*")) if (tmp_path / "cache").exists() else []
    assert not [p for p in leftovers if p.is_file()]


def test_her2st_download_uses_cache_and_follows_lfs_pointers(tmp_path, monkeypatch):
    calls = []

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def fake(url, timeout=None):
        calls.append(url)
        if "raw.githubusercontent" in url and url.endswith(".jpg"):
            return Response(b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 3\n")
        return Response(b"payload " + url.encode())

    monkeypatch.setattr(_sample_data, "urlopen", fake)
    root = _sample_data.download_her2st_section(tmp_path / "her2st")
    jpg = root / "ST-imgs/B/B4/BT10737_D2_HE.jpg"
    assert jpg.read_bytes().startswith(b"payload https://media.githubusercontent.com/media/almaan/her2st/")
    assert (root / "ST-cnts/B4.tsv.gz").is_file() and (root / "ST-spotfiles/B4_selection.tsv").is_file()
    n = len(calls)
    assert n == 4  # three files, one of them through the LFS URL
    _sample_data.download_her2st_section(tmp_path / "her2st")
    assert len(calls) == n  # cached: nothing downloaded again


def test_cache_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MCLSTEXP_CACHE", str(tmp_path / "c"))
    assert _sample_data.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("MCLSTEXP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert _sample_data.cache_dir() == tmp_path / "x" / "napari-mclstexp"


def test_her2st_sample_from_a_filled_cache(her2st_dir, tmp_path, monkeypatch):
    """With the files already cached (here: links to the shared data), nothing is downloaded."""
    root = tmp_path / "cache" / "her2st"
    for local in _sample_data.HER2ST_FILES:
        (root / local).parent.mkdir(parents=True, exist_ok=True)
        (root / local).symlink_to(her2st_dir / local)

    def no_network(url, timeout=None):
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(_sample_data, "urlopen", no_network)
    monkeypatch.setenv("MCLSTEXP_CACHE", str(tmp_path / "cache"))
    layers = _sample_data.her2st_sample()
    assert [kind for _, _, kind in layers] == ["image", "points"]
    points, kwargs, _ = layers[1]
    assert len(points) == 283  # B4's spots under tissue
    assert kwargs["name"] == "her2st B4 spots"

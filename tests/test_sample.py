"""Sample accessors and validation (napari_mclstexp.sample)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.errors import CountsError, MissingInputError, SampleFormatError, SpotMatchError
from napari_mclstexp.sample import (
    drop_spots_outside,
    image_path,
    library_id,
    make_var_names_unique,
    microns_per_pixel,
    spatial_uns,
    spot_diameter_px,
    spot_xy,
    validate_sample,
)


def test_accessors_read_conventions(synthetic_sample):
    a = synthetic_sample
    assert library_id(a) == "SYN1"
    assert image_path(a).name == "SYN1.png" and image_path(a).is_absolute()
    assert microns_per_pixel(a) == 1.0
    assert spot_diameter_px(a) == pytest.approx(22.0)
    xy = spot_xy(a)
    assert xy.dtype == np.float64 and xy.shape == (a.n_obs, 2)
    xy[0] = -1
    assert a.obsm["spatial"][0, 0] != -1  # a copy
    validate_sample(a, require_image=True)


def test_accessors_when_unknown(synthetic_sample):
    a = synthetic_sample
    a.uns["spatial"] = spatial_uns("SYN1")
    assert image_path(a) is None and microns_per_pixel(a) is None and spot_diameter_px(a) is None
    del a.uns["spatial"]
    assert library_id(a) == "SYN1"
    with pytest.raises(SampleFormatError, match="source_image_path"):
        validate_sample(a, "x.h5ad", require_image=True)


def test_spatial_uns_resolves_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uns = spatial_uns("L", source_image_path="img.png", microns_per_pixel=0.5, scalefactors={"a": 1})
    assert uns["L"]["metadata"] == {"source_image_path": str(tmp_path / "img.png"), "microns_per_pixel": 0.5}
    assert uns["L"]["scalefactors"] == {"a": 1}


def test_validate_reports_each_problem(synthetic_sample):
    a = synthetic_sample.copy()
    del a.obsm["spatial"]
    with pytest.raises(SampleFormatError, match=r"s\.h5ad: missing obsm\['spatial'\]"):
        validate_sample(a, "s.h5ad")
    a = synthetic_sample.copy()
    a.obsm["spatial"][3] = np.nan
    with pytest.raises(SampleFormatError, match="1 spots with NaN"):
        validate_sample(a)
    a = synthetic_sample.copy()
    a.X = a.X.toarray()
    a.X[0, 0] = -2
    with pytest.raises(CountsError, match="1 negative"):
        validate_sample(a)
    a = synthetic_sample.copy()
    a.var_names = ["G"] * a.n_vars
    with pytest.raises(SampleFormatError, match="duplicate gene names"):
        validate_sample(a)
    a = synthetic_sample[:0].copy()
    with pytest.raises(CountsError, match="empty"):
        validate_sample(a)
    a = synthetic_sample.copy()
    a.uns["spatial"]["SYN1"]["metadata"]["source_image_path"] = "/no/such/image.png"
    with pytest.raises(MissingInputError, match="image.png"):
        validate_sample(a, require_image=True)


def test_make_var_names_unique_warns(synthetic_sample):
    a = synthetic_sample
    a.var_names = ["G1", "G1", "G2"] + list(a.var_names[3:])
    with pytest.warns(UserWarning, match="1 duplicate gene names"):
        assert make_var_names_unique(a, "f.h5") == 1
    assert list(a.var_names[:3]) == ["G1", "G1-1", "G2"]


def test_drop_spots_outside(synthetic_sample):
    a = synthetic_sample
    n = a.n_obs
    a.obsm["spatial"][:2] = [[-5, 10], [10, 600]]
    with pytest.warns(UserWarning, match=f"2 of {n} spots lie outside"):
        kept = drop_spots_outside(a, (512, 512), "img.png")
    assert kept.n_obs == n - 2
    assert drop_spots_outside(kept, (512, 512)) is kept
    with pytest.raises(SpotMatchError, match="none of the"):
        drop_spots_outside(a, (1, 1))


def test_library_id_refuses_to_guess_between_libraries(synthetic_sample):
    """Several uns['spatial'] libraries and no obs['section'] naming one: a clear error, not the first key."""
    import pytest

    from napari_mclstexp.errors import SampleFormatError
    from napari_mclstexp.sample import library_id, section_name

    lib = library_id(synthetic_sample)
    assert section_name(synthetic_sample) == "SYN1"
    synthetic_sample.uns["spatial"]["OTHER"] = dict(synthetic_sample.uns["spatial"][lib])
    assert library_id(synthetic_sample) == lib  # obs['section'] names one of the two
    synthetic_sample.obs["section"] = "SYN9"
    with pytest.raises(SampleFormatError, match="2 libraries.*names none"):
        library_id(synthetic_sample)
    assert section_name(synthetic_sample, 3) == "SYN9"
    del synthetic_sample.obs["section"]
    assert section_name(synthetic_sample, 3) == "sample3"


def test_image_path_is_stored_absolute_relative_to_the_h5ad(synthetic_sample, tmp_path):
    """One setter for the slide path: a relative name is resolved against the .h5ad's folder."""
    from napari_mclstexp.io.h5ad import read_sample, write_h5ad
    from napari_mclstexp.sample import image_path, set_image_path

    slide = image_path(synthetic_sample)
    (tmp_path / "sub").mkdir()
    moved = tmp_path / "sub" / slide.name
    moved.write_bytes(slide.read_bytes())
    assert set_image_path(synthetic_sample, slide.name, relative_to=tmp_path / "sub") == moved
    assert image_path(synthetic_sample) == moved
    # a file that names its slide relative to itself reads back with the absolute path
    synthetic_sample.uns["spatial"][next(iter(synthetic_sample.uns["spatial"]))]["metadata"]["source_image_path"] = (
        "sub/" + slide.name
    )
    write_h5ad(synthetic_sample, tmp_path / "s.h5ad")
    assert image_path(read_sample(tmp_path / "s.h5ad")) == moved

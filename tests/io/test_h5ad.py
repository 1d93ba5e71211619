"""Validated .h5ad reading and atomic writing."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.errors import CountsError, MissingInputError, OutputError, SampleFormatError
from napari_mclstexp.io.h5ad import read_sample, write_h5ad
from napari_mclstexp.sample import image_path


def test_round_trip(synthetic_sample, tmp_path):
    path = write_h5ad(synthetic_sample, tmp_path / "s.h5ad")
    back = read_sample(path, require_image=True)
    np.testing.assert_array_equal(back.obsm["spatial"], synthetic_sample.obsm["spatial"])
    np.testing.assert_array_equal(back.X.toarray(), synthetic_sample.X.toarray())
    assert image_path(back) == image_path(synthetic_sample)
    assert list(back.obs["annotation"]) == list(synthetic_sample.obs["annotation"])
    assert not list(tmp_path.glob("*.part"))


def test_relative_image_path_resolved_next_to_file(synthetic_sample, tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "img.png")
    synthetic_sample.uns["spatial"]["SYN1"]["metadata"]["source_image_path"] = "img.png"
    write_h5ad(synthetic_sample, tmp_path / "s.h5ad")
    back = read_sample(tmp_path / "s.h5ad", require_image=True)
    assert image_path(back) == (tmp_path / "img.png").resolve()


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(MissingInputError, match="x.h5ad"):
        read_sample(tmp_path / "x.h5ad")
    (tmp_path / "y.h5ad").write_text("hello")
    with pytest.raises(SampleFormatError, match="y.h5ad: not a readable AnnData"):
        read_sample(tmp_path / "y.h5ad")


def test_convention_breaks_named(synthetic_sample, tmp_path):
    a = synthetic_sample.copy()
    del a.obsm["spatial"]
    a.write_h5ad(tmp_path / "nospatial.h5ad")
    with pytest.raises(SampleFormatError, match=r"nospatial.h5ad: missing obsm\['spatial'\]"):
        read_sample(tmp_path / "nospatial.h5ad")
    b = synthetic_sample.copy()
    b.X = b.X.toarray()
    b.X[2, 2] = np.nan
    b.write_h5ad(tmp_path / "nan.h5ad")
    with pytest.raises(CountsError, match="nan.h5ad: counts contain 1 NaN"):
        read_sample(tmp_path / "nan.h5ad")
    c = synthetic_sample.copy()
    c.uns["spatial"]["SYN1"]["metadata"]["source_image_path"] = str(tmp_path / "gone.png")
    c.write_h5ad(tmp_path / "noimg.h5ad")
    assert read_sample(tmp_path / "noimg.h5ad").n_obs == c.n_obs
    with pytest.raises(MissingInputError, match="gone.png"):
        read_sample(tmp_path / "noimg.h5ad", require_image=True)


def test_duplicate_genes_made_unique_on_read(synthetic_sample, tmp_path):
    import warnings

    a = synthetic_sample.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.var_names = ["G"] * 2 + list(a.var_names[2:])
        a.write_h5ad(tmp_path / "dup.h5ad")
    with pytest.warns(UserWarning, match="1 duplicate gene names"):
        back = read_sample(tmp_path / "dup.h5ad")
    assert list(back.var_names[:2]) == ["G", "G-1"]


def test_write_refuses_bad_targets(synthetic_sample, tmp_path):
    with pytest.raises(OutputError, match="own image"):
        write_h5ad(synthetic_sample, image_path(synthetic_sample))
    with pytest.raises(OutputError, match="folder"):
        write_h5ad(synthetic_sample, tmp_path)

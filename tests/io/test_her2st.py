"""her2st legacy ST reader: real data (skipped when absent) and tiny synthetic folders with bad input."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_mclstexp.errors import CountsError, ImageReadError, MissingInputError, SpotMatchError
from napari_mclstexp.io.her2st import list_her2st_sections, read_her2st, read_her2st_section
from napari_mclstexp.sample import image_path, microns_per_pixel, spot_diameter_px, validate_sample

IMAGE_SECTIONS = {"B4", "C2", "C3", "C4"}


# --- real data -------------------------------------------------------------------------------


def test_real_her2st_has_34_sections(her2st_all, her2st_dir):
    assert len(her2st_all) == 34
    assert list(her2st_all) == list_her2st_sections(her2st_dir)
    for name, adata in her2st_all.items():
        validate_sample(adata, name)
        assert set(adata.obs["section"]) == {name} and set(adata.obs["patient"]) == {name[0]}
        assert adata.n_vars > 10_000 and adata.X.dtype == np.int32


def test_real_b4_spots_equal_spot_file(her2st_all, her2st_dir):
    b4 = her2st_all["B4"]
    assert b4.n_obs == 283
    spots = pd.read_csv(her2st_dir / "ST-spotfiles" / "B4_selection.tsv", sep="\t")
    spots.index = [f"{round(x)}x{round(y)}" for x, y in zip(spots.x, spots.y, strict=True)]
    keys = [name.split("_", 1)[1] for name in b4.obs_names]
    np.testing.assert_array_equal(b4.obsm["spatial"], spots.loc[keys, ["pixel_x", "pixel_y"]].to_numpy())
    np.testing.assert_array_equal(b4.obs["array_col"], np.rint(spots.loc[keys, "x"]).astype(int))


def test_real_images_found_for_b4_c2_c3_c4_only(her2st_all):
    with_image = {name for name, a in her2st_all.items() if image_path(a) is not None}
    assert with_image == IMAGE_SECTIONS
    for name in IMAGE_SECTIONS:
        path = image_path(her2st_all[name])
        assert path.is_file() and path.suffix == ".jpg" and path.parent.name == name


def test_real_pixel_size_from_spot_spacing(her2st_all):
    b4 = her2st_all["B4"]
    # Legacy ST: 200 µm spacing; her2st images are about 0.7 µm/px.
    assert 0.6 < microns_per_pixel(b4) < 0.8
    assert spot_diameter_px(b4) == pytest.approx(100 / microns_per_pixel(b4))


def test_real_labels_and_clusters(her2st_all):
    a1 = her2st_all["A1"]
    counts = a1.obs["annotation"].value_counts()
    assert counts["invasive cancer"] > 200 and "undetermined" in counts.index
    assert a1.obs["annotation"].notna().mean() > 0.95
    assert all("cluster_ref" in a.obs for a in her2st_all.values())
    assert "annotation" not in her2st_all["B4"].obs


def test_real_paper_gene_panel_is_in_every_section(her2st_all, her2st_dir):
    from napari_mclstexp.data.genes import select_genes

    panel = select_genes(her2st_all, str(her2st_dir / "her_hvg_785.npy"))
    assert len(panel) == 785
    missing = [name for name, a in her2st_all.items() if not set(panel) <= set(a.var_names)]
    assert len(missing) < 34


def test_real_b4_patches(her2st_all):
    from napari_mclstexp.data.patches import sample_patches

    patches = sample_patches(her2st_all["B4"][:3], size_px=224)
    assert patches.shape == (3, 224, 224, 3)
    assert patches.mean() > 60 and patches.std() > 10  # H&E tissue, not padding


# --- synthetic folders -----------------------------------------------------------------------


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_tiny_read_matches_files(her2st_tiny):
    before = _digest(her2st_tiny)
    samples = read_her2st(her2st_tiny)
    assert list(samples) == ["A1", "A2", "B1"]
    a2 = samples["A2"]
    spots = pd.read_csv(her2st_tiny / "ST-spotfiles" / "A2_selection.tsv", sep="\t")
    np.testing.assert_allclose(a2.obsm["spatial"], spots[["pixel_x", "pixel_y"]].to_numpy())
    assert microns_per_pixel(a2) == pytest.approx(200 / 50, rel=0.02)
    assert spot_diameter_px(a2) == pytest.approx(25, rel=0.02)
    assert image_path(a2).name == "HE_A2.jpg" and image_path(samples["A1"]) is None
    assert list(a2.obs["annotation"].astype(str)) == list(np.where(a2.obs["array_col"] < 4, "tumour", "stroma"))
    assert list(a2.obs["cluster_ref"].astype(int)) == list(a2.obs["array_row"] % 2)
    assert samples["B1"].obs["patient"].iloc[0] == "B"
    counts = pd.read_csv(her2st_tiny / "ST-cnts" / "A2.tsv.gz", sep="\t", index_col=0)
    np.testing.assert_array_equal(a2.X.toarray(), counts.to_numpy())
    assert _digest(her2st_tiny) == before  # inputs never modified


def test_missing_folder_and_section(tmp_path, her2st_tiny):
    with pytest.raises(MissingInputError, match="not found"):
        read_her2st(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingInputError, match="ST-cnts"):
        list_her2st_sections(tmp_path / "empty")
    with pytest.raises(MissingInputError, match="Z9"):
        read_her2st(her2st_tiny, ["A1", "Z9"])
    (her2st_tiny / "ST-spotfiles" / "B1_selection.tsv").unlink()
    with pytest.raises(MissingInputError, match="B1_selection.tsv"):
        read_her2st_section(her2st_tiny, "B1")


def _rewrite_counts(root: Path, section: str, edit) -> Path:
    path = root / "ST-cnts" / f"{section}.tsv.gz"
    table = pd.read_csv(path, sep="\t", index_col=0)
    with gzip.open(path, "wt") as fh:
        fh.write(edit(table))
    return path


def test_nan_negative_and_header_only_counts(her2st_tiny):
    def nan(t):
        t = t.astype(float)
        t.iloc[0, 0] = np.nan
        return t.to_csv(sep="\t")

    _rewrite_counts(her2st_tiny, "A1", nan)
    with pytest.raises(CountsError, match=r"A1\.tsv\.gz: counts contain 1 NaN"):
        read_her2st_section(her2st_tiny, "A1")

    def negative(t):
        t.iloc[1, 2] = -3
        return t.to_csv(sep="\t")

    _rewrite_counts(her2st_tiny, "A2", negative)
    with pytest.raises(CountsError, match="1 negative"):
        read_her2st_section(her2st_tiny, "A2")
    _rewrite_counts(her2st_tiny, "B1", lambda t: t.iloc[:0].to_csv(sep="\t"))
    with pytest.raises(CountsError, match="header but no spots"):
        read_her2st_section(her2st_tiny, "B1")


def test_text_in_counts(her2st_tiny):
    def text(t):
        t = t.astype(object)
        t.iloc[0, 1] = "many"
        return t.to_csv(sep="\t")

    _rewrite_counts(her2st_tiny, "A1", text)
    with pytest.raises(CountsError, match="not numbers"):
        read_her2st_section(her2st_tiny, "A1")


def test_duplicate_gene_names_made_unique(her2st_tiny):
    _rewrite_counts(her2st_tiny, "A1", lambda t: t.rename(columns={"GENE1": "GENE0"}).to_csv(sep="\t"))
    with pytest.warns(UserWarning, match="1 duplicate gene names"):
        a1 = read_her2st_section(her2st_tiny, "A1")
    assert list(a1.var_names[:2]) == ["GENE0", "GENE0-1"] and a1.var_names.is_unique


def test_counts_and_spots_partially_or_not_matching(her2st_tiny):
    path = _rewrite_counts(
        her2st_tiny, "A1", lambda t: t.rename(index={t.index[0]: "99x99", t.index[1]: "98x98"}).to_csv(sep="\t")
    )
    with pytest.warns(UserWarning, match="10 of 12 count rows match"):
        a1 = read_her2st_section(her2st_tiny, "A1")
    assert a1.n_obs == 10
    _rewrite_counts(her2st_tiny, "A2", lambda t: t.set_axis([f"{i}x0" for i in range(90, 102)]).to_csv(sep="\t"))
    with pytest.raises(SpotMatchError, match="none of the 12 count rows"):
        read_her2st_section(her2st_tiny, "A2")
    assert path.exists()


def test_spots_outside_image_dropped(her2st_tiny):
    spot_file = her2st_tiny / "ST-spotfiles" / "A2_selection.tsv"
    spots = pd.read_csv(spot_file, sep="\t")
    spots.loc[:2, "pixel_x"] = 5000.0
    spots.to_csv(spot_file, sep="\t", index=False)
    with pytest.warns(UserWarning, match="3 of 12 spots lie outside"):
        a2 = read_her2st_section(her2st_tiny, "A2")
    assert a2.n_obs == 9 and (a2.obsm["spatial"][:, 0] < 360).all()
    spots["pixel_x"] = 5000.0
    spots.to_csv(spot_file, sep="\t", index=False)
    with pytest.raises(SpotMatchError, match="none of the 12 spots"):
        read_her2st_section(her2st_tiny, "A2")


def test_image_that_is_not_an_image(her2st_tiny):
    image = next((her2st_tiny / "ST-imgs" / "A" / "A2").glob("*.jpg"))
    image.write_text("<html>404 not found</html>")
    with pytest.raises(ImageReadError, match="HE_A2.jpg"):
        read_her2st_section(her2st_tiny, "A2")

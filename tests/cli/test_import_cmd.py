"""``mclstexp import her2st|visium``: files written, one-line errors, inputs untouched."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import napari_mclstexp.cli as cli
from napari_mclstexp.io.h5ad import read_sample
from napari_mclstexp.sample import image_path

_spec = importlib.util.spec_from_file_location("_io_builders", Path(__file__).parents[1] / "io" / "conftest.py")
builders = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(builders)


@pytest.fixture
def main(monkeypatch):
    """``cli.main`` with only the import command registered (independent of the other commands)."""
    monkeypatch.setattr(cli, "COMMANDS", ("import",))
    return cli.main


def _digest(root: Path) -> dict[str, str]:
    return {str(p): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_import_her2st_writes_one_file_per_section(main, tmp_path, capsys):
    src = builders.write_her2st_dir(tmp_path / "her2st")
    before = _digest(src)
    assert main(["-q", "import", "her2st", str(src), "--out", str(tmp_path / "out")]) == 0
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["A1.h5ad", "A2.h5ad", "B1.h5ad"]
    a2 = read_sample(tmp_path / "out" / "A2.h5ad", require_image=True)
    assert a2.n_obs == 12 and image_path(a2).name == "HE_A2.jpg"
    assert image_path(read_sample(tmp_path / "out" / "A1.h5ad")) is None
    assert _digest(src) == before


def test_import_her2st_selected_sections_and_summary(main, tmp_path, capsys):
    src = builders.write_her2st_dir(tmp_path / "her2st")
    assert main(["import", "her2st", str(src), "--sections", "B1", "--out", str(tmp_path / "o")]) == 0
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["B1.h5ad"]
    assert "B1: 12 spots × 6 genes, expression only" in capsys.readouterr().out


def test_import_visium(main, tmp_path, capsys):
    src = builders.write_visium_dir(tmp_path / "v")
    out = tmp_path / "v.h5ad"
    assert main(["import", "visium", str(src), "--out", str(out)]) == 0
    adata = read_sample(out)
    assert adata.shape == (12, 5)
    assert np.array_equal(adata.obsm["spatial"][0], [60, 100])
    assert "tinylib: 12 spots × 5 genes" in capsys.readouterr().out


def test_import_visium_with_image(main, tmp_path):
    from PIL import Image

    src = builders.write_visium_dir(tmp_path / "v")
    Image.fromarray(np.zeros((500, 500, 3), np.uint8)).save(tmp_path / "full.png")
    out = tmp_path / "v.h5ad"
    assert main(["-q", "import", "visium", str(src), "--out", str(out), "--image", str(tmp_path / "full.png")]) == 0
    assert image_path(read_sample(out, require_image=True)) == (tmp_path / "full.png").resolve()


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def test_errors_are_one_line(main, tmp_path, capsys):
    assert main(["import", "her2st", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, "missing", "not found")
    src = builders.write_visium_dir(tmp_path / "v")
    assert main(["import", "visium", str(src), "--out", str(tmp_path / "v.txt")]) == 2
    _one_line_error(capsys, "v.txt", ".h5ad")
    (tmp_path / "v.h5ad").write_text("keep me")
    assert main(["import", "visium", str(src), "--out", str(tmp_path / "v.h5ad")]) == 2
    _one_line_error(capsys, "already exists", "--overwrite")
    assert (tmp_path / "v.h5ad").read_text() == "keep me"
    assert main(["-q", "import", "visium", str(src), "--out", str(tmp_path / "v.h5ad"), "--overwrite"]) == 0


def test_bad_counts_reported_with_file(main, tmp_path, capsys):
    src = builders.write_her2st_dir(tmp_path / "her2st", sections=("A1",), image_sections=())
    (src / "ST-cnts" / "A1.tsv.gz").write_bytes(b"\x1f\x8b\x08garbage")
    assert main(["-q", "import", "her2st", str(src), "--out", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, "A1.tsv.gz", "counts")
    assert not (tmp_path / "o" / "A1.h5ad").exists()


def test_help_speaks_biology(main, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["import", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "H&E" in text and "never changed" in text and "her2st" in text and "visium" in text


def test_import_real_her2st_b4(main, her2st_dir, tmp_path):
    assert main(["-q", "import", "her2st", str(her2st_dir), "--sections", "B4", "--out", str(tmp_path)]) == 0
    b4 = read_sample(tmp_path / "B4.h5ad", require_image=True)
    assert b4.n_obs == 283 and b4.obs["patient"].iloc[0] == "B"

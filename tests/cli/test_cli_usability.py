"""What a new user trips over on the command line: each test fails without its fix."""

from __future__ import annotations

import pytest

from napari_mclstexp.cli import main


@pytest.fixture
def sample_files(synthetic_samples, tmp_path, monkeypatch):
    from napari_mclstexp.io.h5ad import write_h5ad

    monkeypatch.setenv("MCLSTEXP_CACHE", str(tmp_path / "cache"))
    paths = []
    for s in synthetic_samples:
        p = tmp_path / f"{s.obs['section'].iloc[0]}.h5ad"
        write_h5ad(s, p)
        paths.append(str(p))
    return paths


@pytest.mark.parametrize("command", ["train", "cv"])
def test_large_default_gene_panel_is_refused_before_training(command, sample_files, tmp_path, monkeypatch, capsys):
    # real data shares ~15,000 genes: the spot encoder (width = panel size) then needs ~16 GB and the
    # process was killed by the OOM killer; here the limit is lowered below the synthetic panel (33 genes)
    monkeypatch.setattr("napari_mclstexp.cli._genes.MAX_DEFAULT_GENES", 10)
    out = tmp_path / ("m.mclst" if command == "train" else "cv.json")
    extra = ["--scheme", "slide"] if command == "cv" else []
    code = main(["-q", command, *sample_files, "--out", str(out), "--preset", "quick", "--epochs", "1",
                 "--device", "cpu", *extra])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    n_common = len(set.intersection(*(set(map(str, s.var_names)) for s in _read(sample_files))))
    assert f"share {n_common} genes" in err and "--genes hvg:" in err
    assert not out.exists()


def _read(paths):
    import anndata as ad

    return [ad.read_h5ad(p) for p in paths]

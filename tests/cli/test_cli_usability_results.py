"""What a new user trips over when evaluating, clustering and exporting predictions on the command line:
each test fails without its fix."""

from __future__ import annotations

import pytest

from napari_mclstexp.cli import main


@pytest.fixture
def marker_pred(synthetic_sample, tmp_path):
    """A prediction/measurement pair whose panel holds known markers (ERBB2, CD74, KRT8)."""
    import numpy as np

    from napari_mclstexp.data.genes import expression_matrix
    from napari_mclstexp.io.h5ad import write_h5ad

    truth = synthetic_sample
    names = list(map(str, truth.var_names))
    names[:3] = ["ERBB2", "CD74", "KRT8"]
    truth.var_names = names
    pred = truth.copy()
    norm = expression_matrix(truth, names, "log10_1e4")
    pred.X = (norm + np.random.default_rng(0).normal(0, 0.2, size=norm.shape)).astype(np.float32)
    pred.uns["mclstexp"] = {"normalization": "log10_1e4"}
    write_h5ad(truth, tmp_path / "truth.h5ad")
    write_h5ad(pred, tmp_path / "pred.h5ad")
    return tmp_path / "pred.h5ad", tmp_path / "truth.h5ad"


def test_evaluate_marker_counts_are_whole_numbers_and_outputs_are_listed(marker_pred, tmp_path, capsys):
    pred, truth = marker_pred
    out = tmp_path / "m.json"
    assert main(["evaluate", str(pred), "--truth", str(truth), "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    groups = [line for line in lines if ", mean r " in line]
    assert groups and not any(".0 gene" in line for line in groups)  # was "1.0 genes"
    assert any(line.startswith("immune: 1 gene, mean r ") for line in groups)
    assert lines[-1] == f"wrote {out}"


def test_evaluate_unknown_figure_gene_fails_first_naming_the_file(marker_pred, tmp_path, capsys):
    pred, truth = marker_pred
    out = tmp_path / "m.json"
    code = main(
        [
            "evaluate",
            str(pred),
            "--truth",
            str(truth),
            "--json",
            str(out),
            "--figure",
            str(tmp_path / "f.png"),
            "--figure-genes",
            "ERBB2,GRB7",
        ]
    )
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no scores printed before the failure
    assert captured.err.count("\n") == 1 and str(pred) in captured.err and "GRB7" in captured.err
    assert "ERBB2" not in captured.err.split("GRB7")[0].split(str(pred))[-1]  # only the missing gene named
    assert not out.exists() and not (tmp_path / "f.png").exists()


def test_domains_missing_label_column_names_the_file(marker_pred, capsys):
    pred, truth = marker_pred
    before = pred.read_bytes()
    assert main(["domains", str(pred), "--k", "2", "--truth-key", "pathology"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"mclstexp domains: error: {pred}: no obs column 'pathology'")
    assert main(["domains", str(pred), "--k", "2", "--truth", str(truth), "--truth-key", "nope"]) == 2
    assert f"{truth}: no obs column 'nope'" in capsys.readouterr().err
    assert pred.read_bytes() == before  # the prediction (updated in place on success) is untouched


def test_evaluate_figure_colour_bars_say_the_units(marker_pred, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    saved = []
    original = Figure.savefig

    def spy(self, *args, **kwargs):
        saved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    pred, truth = marker_pred
    png = tmp_path / "f.png"
    assert main(["evaluate", str(pred), "--truth", str(truth), "--figure", str(png), "--figure-genes", "CD74"]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    labels = [ax.get_ylabel() for ax in saved[0].axes if ax.get_ylabel()]
    assert labels == ["log10(1 + 10⁴ · counts / spot total)"] * 2  # measured and predicted colour bars


@pytest.mark.parametrize("mode", ["spots", "whole_slide"])
def test_evaluate_unmatched_prediction_names_files_and_the_way_out(mode, marker_pred, capsys):
    import anndata as ad

    from napari_mclstexp.io.h5ad import write_h5ad

    pred, truth = marker_pred
    adata = ad.read_h5ad(pred)
    adata.obs_names = [f"tile{i}" for i in range(adata.n_obs)]
    adata.obsm["spatial"] = adata.obsm["spatial"] + 10_000.0  # no spot name or position in common
    adata.uns["mclstexp"] = {"normalization": "log10_1e4", "mode": mode}
    write_h5ad(adata, pred)
    assert main(["evaluate", str(pred), "--truth", str(truth)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"mclstexp evaluate: error: {pred}: ") and str(truth) in err
    assert ("predict at its spots" in err) == (mode == "whole_slide")

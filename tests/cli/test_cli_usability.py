"""What a new user trips over on the command line: each test fails without its fix."""

from __future__ import annotations

import pytest

from napari_mclstexp.cli import main


def _read(paths):
    import anndata as ad

    return [ad.read_h5ad(p) for p in paths]


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
    monkeypatch.setattr("napari_mclstexp.data.panel.MAX_DEFAULT_GENES", 10)
    out = tmp_path / ("m.mclst" if command == "train" else "cv.json")
    extra = ["--scheme", "slide"] if command == "cv" else []
    code = main(
        [
            "-q",
            command,
            *sample_files,
            "--out",
            str(out),
            "--preset",
            "quick",
            "--epochs",
            "1",
            "--device",
            "cpu",
            *extra,
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    n_common = len(set.intersection(*(set(map(str, s.var_names)) for s in _read(sample_files))))
    assert f"share {n_common} genes" in err and "hvg:785" in err and "choose a gene panel" in err
    assert not out.exists()


def test_cv_table_shows_std_and_domain_scores(sample_files, tmp_path, monkeypatch, capsys):
    from napari_mclstexp.workflows import cv

    scores = {"SYN1": (0.2, 0.5), "SYN3": (0.4, 0.7)}

    def fake_fold(fold, samples, config, **kwargs):
        yield from ()
        acg, ari = scores[fold.test]
        return {
            "metrics": {
                "acg": acg,
                "heg50": 0.1,
                "hvg50": 0.1,
                "mse": 1.0,
                "mae": 0.5,
                "domain_ari": ari,
                "domain_nmi": ari,
            },
            "device": "cpu",
            "timings": {"train_s": 1.0},
        }

    monkeypatch.setattr(cv, "run_fold", fake_fold)
    out = tmp_path / "cv.json"
    assert (
        main(
            [
                "-q",
                "cv",
                *sample_files,
                "--scheme",
                "patient",
                "--folds",
                "SYN1,SYN3",
                "--genes",
                "hvg:5",
                "--domain-key",
                "region",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("protocol ")  # which protocol and value scale the numbers are on, first
    header = next(line for line in lines if line.startswith("fold"))
    assert header.split()[-4:-2] == ["ARI", "NMI"]
    mean = next(line for line in lines if line.startswith("mean")).split()
    std = next(line for line in lines if line.startswith("std")).split()
    assert mean[1] == "0.3000" and mean[-2] == "0.6000"  # ACG and ARI averaged over the two folds
    assert float(std[1]) == pytest.approx(0.1, abs=0.0011) or float(std[1]) == pytest.approx(0.1414, abs=0.0011)


def test_progress_bars_not_noisy_off_a_terminal(capsys):
    from napari_mclstexp.progress import Progress, run_with_progress

    def job():
        for fold in range(3):  # an outer stage around inner ones, as cv and the demo do
            yield Progress("cv", fold, 3)
            for i in range(4):
                yield Progress("train", i + 1, 4, metrics={"loss": 2.0 - i, "step": i + 1, "eta_s": 3.0 - i})
        yield Progress("cv", 3, 3)
        return 7

    assert run_with_progress(job()) == 7
    err = capsys.readouterr().err
    assert err.rindex("0/3") < err.index("1/3") < err.index("2/3") < err.index("3/3")  # no restart at 0
    assert "loss=" in err and "eta_s" not in err and "step=" not in err  # the bar shows count and ETA


def test_expression_only_sample_message_says_what_to_do(synthetic_sample, tmp_path, capsys):
    from napari_mclstexp.io.h5ad import write_h5ad

    sample = synthetic_sample
    lib = next(iter(sample.uns["spatial"]))
    del sample.uns["spatial"][lib]["metadata"]["source_image_path"]
    path = tmp_path / "expr_only.h5ad"
    write_h5ad(sample, path)
    assert main(["train", str(path), "--out", str(tmp_path / "m.mclst"), "--preset", "quick"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: no image" in err and "expression-only section" in err


def test_cv_names_the_expression_only_section(sample_files, tmp_path, capsys):
    import anndata as ad

    from napari_mclstexp.io.h5ad import write_h5ad

    sample = ad.read_h5ad(sample_files[2])
    del sample.uns["spatial"][next(iter(sample.uns["spatial"]))]["metadata"]["source_image_path"]
    write_h5ad(sample, sample_files[2])
    out = tmp_path / "cv.json"
    assert (
        main(["-q", "cv", *sample_files, "--scheme", "slide", "--genes", "hvg:5", "--epochs", "1", "--out", str(out)])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{sample_files[2]}: no image" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "command", ["import", "train", "predict", "evaluate", "domains", "regions", "export", "cv", "demo"]
)
def test_help_is_readable(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 110  # the cv description was one 330-char line
    assert "examples:\n  mclstexp " in text  # evaluate and domains had none
    options = text.split("options:")[1]
    # every option has a help text: its line (or the next, when the name is long) continues with words
    lines = options.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("  -") and len(line.split("  ")) < 3 and "  " not in line.strip():
            assert i + 1 < len(lines) and lines[i + 1].startswith(" " * 10), line


def _io_builders():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_io_builders_ux", Path(__file__).parents[1] / "io" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_import_says_which_sections_can_train(tmp_path, capsys):
    builders = _io_builders()
    src = builders.write_her2st_dir(tmp_path / "her2st")
    assert main(["import", "her2st", str(src), "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith(f"3 sections imported into {tmp_path / 'out'}: 1 with an H&E image (A2;")
    assert lines[-1].endswith("2 expression only") and all("->" not in line for line in lines)
    v = builders.write_visium_dir(tmp_path / "v")
    assert main(["import", "visium", str(v), "--out", str(tmp_path / "v.h5ad")]) == 0
    assert "expression only (add --image FULLRES" in capsys.readouterr().out


def test_quiet_may_follow_the_command(tmp_path, capsys):
    builders = _io_builders()
    v = builders.write_visium_dir(tmp_path / "v")
    assert main(["import", "visium", str(v), "--out", str(tmp_path / "a.h5ad"), "-q"]) == 0
    assert capsys.readouterr().out == ""  # quiet: no summary either
    assert main(["import", "visium", str(v), "--out", str(tmp_path / "b.h5ad")]) == 0
    assert "5 genes" in capsys.readouterr().out  # without -q (before or after) the summary is printed


@pytest.mark.parametrize("trained", [False, True])
def test_demo_lists_the_retrained_model(trained, tmp_path, monkeypatch, capsys):
    from pathlib import Path

    import napari_mclstexp.workflows.demo as demo

    def fake_run_demo(out, **kwargs):
        yield from ()
        out = Path(out)
        metrics = {
            "test_spots": 3,
            "n_genes": 2,
            "acg": 0.5,
            "acg_image_genes": 0.6,
            "ari": 0.7,
            "ari_measured": 1.0,
            "seconds": 1.0,
            "trained_now": kwargs["train"],
        }
        if kwargs["train"]:
            metrics["bundle"] = str(out / "model.mclst")
        return demo.DemoResult(out, out / "predictions.h5ad", out / "metrics.json", None, metrics, [])

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    argv = ["-q", "demo", "--out", str(tmp_path / "d")] + (["--train"] if trained else [])
    assert main(argv) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    assert listed == ["predictions.h5ad", "metrics.json"] + (["model.mclst"] if trained else [])


def test_user_warnings_are_one_line(sample_files, tmp_path, capsys):
    genes = tmp_path / "genes.txt"
    import anndata as ad

    names = list(map(str, ad.read_h5ad(sample_files[0]).var_names[:3]))
    genes.write_text("\n".join([*names, "NOT_A_GENE"]) + "\n")
    assert (
        main(
            [
                "-q",
                "train",
                sample_files[0],
                "--out",
                str(tmp_path / "m.mclst"),
                "--preset",
                "quick",
                "--epochs",
                "1",
                "--device",
                "cpu",
                "--genes",
                str(genes),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [
        f"mclstexp train: warning: {genes}: 1 of 4 genes are in no sample and were dropped (e.g. NOT_A_GENE)"
    ]


def test_visium_wrong_image_says_where_the_spots_are(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    builders = _io_builders()
    src = builders.write_visium_dir(tmp_path / "v")
    small = tmp_path / "hires.png"  # a downscaled picture instead of the full-resolution one
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(small)
    out = tmp_path / "v.h5ad"
    assert main(["import", "visium", str(src), "--out", str(out), "--image", str(small)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "(20 × 20 px); the spots span x " in err and "full-resolution image" in err
    assert not out.exists()


def test_visium_outs_folder_is_named_after_the_sample(tmp_path, capsys):
    import anndata as ad
    import h5py

    builders = _io_builders()
    src = builders.write_visium_dir(tmp_path / "Breast_S1" / "outs")
    with h5py.File(src / "filtered_feature_bc_matrix.h5", "r+") as f:
        del f.attrs["library_ids"]  # older Space Ranger matrices carry no sample name
    out = tmp_path / "s1.h5ad"
    assert main(["-q", "import", "visium", str(src), "--out", str(out)]) == 0
    adata = ad.read_h5ad(out)
    assert set(adata.obs["section"]) == {"Breast_S1"} and list(adata.uns["spatial"]) == ["Breast_S1"]


def test_cv_resume_refusal_says_what_changed(sample_files, tmp_path, monkeypatch, capsys):
    from napari_mclstexp.workflows import cv

    def fake_fold(fold, samples, config, **kwargs):
        yield from ()
        return {"metrics": {"acg": 0.1}, "device": "cpu", "timings": {"train_s": 1.0}}

    monkeypatch.setattr(cv, "run_fold", fake_fold)
    out = tmp_path / "cv.json"
    argv = ["-q", "cv", *sample_files, "--scheme", "patient", "--genes", "hvg:5", "--out", str(out)]
    assert main([*argv, "--epochs", "3"]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert main([*argv, "--epochs", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "(epochs 3 → 4)" in err
    assert out.read_bytes() == before


def test_train_summary_mentions_the_checkpoint(sample_files, tmp_path, capsys):
    out = tmp_path / "m.mclst"
    assert (
        main(
            [
                "train",
                sample_files[0],
                "--out",
                str(out),
                "--preset",
                "quick",
                "--epochs",
                "1",
                "--device",
                "cpu",
                "--genes",
                "hvg:6",
                "--batch-size",
                "64",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"saved {out} (6 genes, ") and ", 1 epoch, final loss " in lines[0]
    assert lines[1].startswith(f"checkpoint {out}.ckpt (") and "kept for --resume" in lines[1]

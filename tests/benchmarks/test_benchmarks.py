"""Speed benchmarks: the reference re-creation behaves like the reference, and the parts run end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def _part(*args: str) -> list[str]:
    """The command line of one benchmark part, run from the repository root."""
    return [sys.executable, "-m", "benchmarks", *args]


@pytest.fixture(scope="module")
def ref():
    from benchmarks import reference_pipeline

    return reference_pipeline


def test_reference_dataset_crops_pads_and_augments(ref):
    data = ref.make_reference_data(3, 5, image_px=256, seed=1)
    data.xy[0] = (0, 0)  # a corner spot: three quarters of its crop lie outside the slide
    data.xy[1] = (128, 128)
    ds = ref.ReferenceDataset(data, patch_px=64)
    torch.manual_seed(0)
    item = ds[0]
    img = item["image"]
    assert img.shape == (3, 64, 64) and img.dtype == torch.float32
    assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0  # ToTensor, no mean/std
    assert not torch.equal(ds[1]["image"], ds[1]["image"])  # random augmentation per call
    names = [type(t).__name__ for t in ds.transform.transforms]
    assert names == ["ColorJitter", "RandomHorizontalFlip", "RandomRotation", "ToTensor"]
    from torchvision import transforms

    ds.transform = transforms.ToTensor()  # the crop alone: zero padding outside the slide
    plain = ds[0]["image"]
    assert torch.all(plain[:, :32, :] == 0) and torch.all(plain[:, :, :32] == 0)
    assert float(plain[:, 32:, 32:].min()) > 0  # the slide's quarter (its pixels are never black)
    np.testing.assert_array_equal(
        np.asarray(data.image)[:32, :32], (plain[:, 32:, 32:] * 255).round().byte().permute(1, 2, 0).numpy()
    )
    np.testing.assert_array_equal(item["expression"].numpy(), data.expr[0])
    np.testing.assert_array_equal(item["position"].numpy(), data.pos[0])


@pytest.fixture
def one_thread():
    """One torch thread: on shared cores OpenMP spin-waiting makes tiny models 10x slower."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_reference_model_has_dense_65536_row_tables_and_trains(ref, one_thread):
    torch.manual_seed(0)
    out = ref.benchmark_reference(
        "cpu",
        n_genes=6,
        batch_size=4,
        patch_px=32,
        seconds=1e6,
        warmup_steps=1,
        max_steps=2,
        image_px=128,
        log=lambda m: None,
    )
    assert out["steps"] == 2
    assert out["spots_per_s"] > 0 and out["loader_ms_per_patch"] > 0 and out["model_ms_per_step"] > 0
    assert out["n_params"] > 2 * 65536 * 6  # both position tables are dense parameters
    assert np.isfinite(out["loss_first"]) and np.isfinite(out["loss_last"])
    assert out["settings"]["num_workers"] == 0 and out["settings"]["precision"] == "fp32"


def test_steady_rate_skips_warmup_and_uses_synced_end():
    from benchmarks import gpu_parts as gpu

    # 10 s of warm-up at 1 step/s, then steps every 0.5 s; the last step finishes at t_end.
    events = [(float(t), t) for t in range(1, 11)] + [(10 + 0.5 * i, 10 + i) for i in range(1, 21)]
    rate, steps = gpu.steady_rate(events, batch=128, t_end=20.0, warm_s=9.5)
    assert steps == 19  # from the first step after the warm-up to the last
    assert rate == pytest.approx(20 * 128 / 10.0)


@pytest.mark.slow
def test_gpu_script_runs_end_to_end_tiny_on_cpu(tmp_path):
    proc = subprocess.run(
        _part(
            "gpu",
            "--tiny",
            "--device",
            "cpu",
            "--budget-s",
            "200",
            "--out",
            str(tmp_path),
        ),
        capture_output=True,
        text=True,
        timeout=400,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = tmp_path.glob("gpu-cpu-tiny-*.json")
    report = json.loads(path.read_text())
    assert report["device"] == "cpu" and report["tiny"] is True and report["errors"] == {}
    for key in ("train_spots_per_s", "reference_spots_per_s", "infer_patches_per_s"):
        assert report[key] > 0, key
    assert "peak_mem_gb" in report
    assert set(report["details"]) == {"trunk", "train", "reference", "infer", "train_eager"}
    assert report["train_step_mode"] == "eager" and report["train_eager_spots_per_s"] > 0  # no CUDA: no graph
    assert report["details"]["infer"]["reader_patches_per_s"] > 0
    assert report["details"]["infer"]["bank_spots"] >= 2000
    assert report["details"]["train"]["timed_steps"] >= 2
    assert "summary:" in proc.stdout


@pytest.mark.slow
def test_cpu_script_runs_tiny(tmp_path):
    proc = subprocess.run(
        _part(
            "cpu",
            "--tiny",
            "--threads",
            "1",
            "--out",
            str(tmp_path),
            "--parts",
            "patches,quick,slide,descriptors,compile",  # compile: g++ is in make setup's apt list
        ),
        capture_output=True,
        text=True,
        timeout=400,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = tmp_path.glob("cpu-tiny-*.json")
    report = json.loads(path.read_text())
    pipe = report["patch_pipeline"]
    assert pipe["pil_per_sample"]["patches_per_s"] > 0
    assert pipe["cached_tensor_paper"]["patches_per_s"] > 0
    assert pipe["speedup_paper_transforms"] == pytest.approx(
        pipe["cached_tensor_paper"]["patches_per_s"] / pipe["pil_per_sample"]["patches_per_s"]
    )
    quick = report["quick_preset"]
    assert quick["time_to_model_s"] > 0 and quick["epochs"] == 2 and np.isfinite(quick["final_loss"])
    desc = report["whole_slide_descriptors"]
    assert desc["on"]["tiles_per_s"] > 0 and desc["cost_ratio"] == pytest.approx(
        desc["off"]["tiles_per_s"] / desc["on"]["tiles_per_s"]
    )
    assert desc["speedup_vs_v1"] == pytest.approx(desc["on"]["tiles_per_s"] / desc["on_v1"]["tiles_per_s"])
    slide = report["whole_slide"]
    # TTA's cost is a timing (benchmarks report it; a loaded machine can invert it in a tiny run)
    assert slide["no_tta"]["tiles"] == slide["tta"]["tiles"] > 0 and np.isfinite(slide["tta_cost"])
    comp = report["compile"]  # the part fails loudly if torch.compile fell back to eager
    assert len(comp["runs"]["eager"]) == len(comp["runs"]["compiled"]) == 2
    assert comp["speedup"] == pytest.approx(comp["eager_epoch_s"] / comp["compiled_epoch_s"])


def test_visium_hd_benchmark_runs_small(tmp_path):
    out = tmp_path / "hd.json"
    done = subprocess.run(
        _part(
            "visium-hd",
            "--out",
            str(out),
            "--bins",
            "3000",
            "--genes",
            "20",
            "--parts",
            "write,import,switch",
        ),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert 2500 < result["import"]["bins"] < 3500 and result["switch"]["switch_ms_median"] > 0

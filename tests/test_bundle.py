"""Bundle: save/load round trip, identical predictions, version and corruption errors."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from napari_mclstexp.bundle import FORMAT_VERSION, load_bundle, save_bundle
from napari_mclstexp.errors import BundleError, MissingInputError
from napari_mclstexp.model.mclstexp import build_model, pos_shape_for
from napari_mclstexp.model.presets import get_preset
from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.progress import run


@pytest.fixture(scope="module")
def bundle(make_tiny_bundle, synthetic_samples):
    return make_tiny_bundle(history=[{"epoch": 1, "loss": 3.5}], extra_samples=synthetic_samples[2:])


def test_expression_only_extra_sample_needs_no_image(synthetic_samples):
    from napari_mclstexp.model.bank import build_bank

    cfg = get_preset("quick").replace(embed_dim=8, input_px=32, patch_px=64)
    genes = list(synthetic_samples[0].var_names)
    model = build_model(cfg, len(genes), pos_shape_for(synthetic_samples, cfg))
    extra = synthetic_samples[2].copy()
    del extra.uns["spatial"]  # no image at all
    bank = build_bank(model, synthetic_samples[:1], genes, cfg, "cpu", extra=[extra])
    assert len(bank) == synthetic_samples[0].n_obs + extra.n_obs
    assert set(bank.sections) == {"SYN1", "SYN3"}
    assert np.isfinite(bank.embeddings).all() and bank.expression.shape == (len(bank), len(genes))


def test_make_bundle_metadata_and_bank(bundle, synthetic_samples):
    meta = bundle.metadata
    assert meta["format_version"] == FORMAT_VERSION and meta["preset"] == "quick"
    assert meta["genes"] == list(synthetic_samples[0].var_names)
    assert meta["patch_px"] == 64 and meta["patch_um"] == pytest.approx(64.0)  # mpp 1.0
    assert meta["train_sections"] == ["SYN1", "SYN2"] and meta["extra_sections"] == ["SYN3"]
    assert meta["metrics"]["final_epoch"]["loss"] == 3.5
    assert "torch" in meta["versions"] and meta["created"].endswith("+00:00")
    n_spots = sum(a.n_obs for a in synthetic_samples)
    assert len(bundle.bank) == n_spots and bundle.bank.dim == 16
    assert set(bundle.bank.sections) == {"SYN1", "SYN2", "SYN3"}
    assert bundle.bank.spot_ids[0] == synthetic_samples[0].obs_names[0]


def test_round_trip_identical_predictions(bundle, synthetic_samples, tmp_path):
    from napari_mclstexp.predict.spots import predict_at_spots

    path = save_bundle(bundle, tmp_path / "m.mclst")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == sorted(
            ["metadata.json", "weights.safetensors", "bank.safetensors", "bank_spots.json"]
        )
        assert not any(n.endswith((".pt", ".pkl")) for n in zf.namelist())
    loaded = load_bundle(path)
    assert loaded.genes == bundle.genes and loaded.pos_shape == bundle.pos_shape
    np.testing.assert_array_equal(loaded.bank.embeddings, bundle.bank.embeddings)
    np.testing.assert_array_equal(loaded.bank.sections, bundle.bank.sections)
    np.testing.assert_array_equal(loaded.bank.spot_ids, bundle.bank.spot_ids)
    for key, value in bundle.state_dict.items():
        assert torch.equal(loaded.state_dict[key], value), key
    test = synthetic_samples[2]
    a = run(predict_at_spots(bundle, test, PredictOptions(device="cpu")))
    b = run(predict_at_spots(loaded, test, PredictOptions(device="cpu")))
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.obs["uncertainty"], b.obs["uncertainty"])
    assert b.uns["mclstexp"]["bundle"]["path"] == str(path.resolve())


def test_float16_bank_is_smaller_and_close(bundle, tmp_path):
    p32 = save_bundle(bundle, tmp_path / "a.mclst")
    p16 = save_bundle(bundle, tmp_path / "b.mclst", bank_dtype="float16")
    loaded = load_bundle(p16)
    assert loaded.bank.embeddings.dtype == np.float16
    np.testing.assert_allclose(loaded.bank.embeddings, bundle.bank.embeddings, atol=1e-3)
    with zipfile.ZipFile(p32) as z32, zipfile.ZipFile(p16) as z16:
        assert z16.getinfo("bank.safetensors").file_size < z32.getinfo("bank.safetensors").file_size


def _rewrite_metadata(src, dest, **changes):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "metadata.json":
                meta = json.loads(data)
                meta.update(changes)
                data = json.dumps(meta)
            zout.writestr(name, data)


def test_newer_or_unknown_version_rejected(bundle, tmp_path):
    good = save_bundle(bundle, tmp_path / "m.mclst")
    _rewrite_metadata(good, tmp_path / "new.mclst", format_version=FORMAT_VERSION + 1)
    with pytest.raises(BundleError, match="newer") as err:
        load_bundle(tmp_path / "new.mclst")
    assert "new.mclst" in str(err.value)
    config = dict(bundle.config, future_option=1)
    _rewrite_metadata(good, tmp_path / "opt.mclst", config=config)
    with pytest.raises(BundleError, match="opt.mclst.*future_option"):
        load_bundle(tmp_path / "opt.mclst")
    _rewrite_metadata(good, tmp_path / "odd.mclst", format="something-else")
    with pytest.raises(BundleError, match="not a model bundle"):
        load_bundle(tmp_path / "odd.mclst")


def test_corrupt_truncated_and_missing(bundle, tmp_path):
    good = save_bundle(bundle, tmp_path / "m.mclst")
    data = good.read_bytes()
    (tmp_path / "trunc.mclst").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="trunc.mclst"):
        load_bundle(tmp_path / "trunc.mclst")
    (tmp_path / "junk.mclst").write_bytes(b"PK\x03\x04 not really a zip" * 10)
    with pytest.raises(BundleError):
        load_bundle(tmp_path / "junk.mclst")
    # valid zip whose weights member is garbage
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(tmp_path / "bad.mclst", "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, b"\x00garbage" if name == "weights.safetensors" else zin.read(name))
    with pytest.raises(BundleError, match="corrupt"):
        load_bundle(tmp_path / "bad.mclst")
    with pytest.raises(MissingInputError):
        load_bundle(tmp_path / "absent.mclst")


def test_save_is_atomic(bundle, tmp_path, monkeypatch):
    dest = tmp_path / "m.mclst"
    dest.write_bytes(b"previous")
    import napari_mclstexp.bundle as bmod

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bmod.json, "dumps", boom)
    with pytest.raises(RuntimeError):
        save_bundle(bundle, dest)
    assert dest.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["m.mclst"]

"""The Train widget trains through the same workflow as ``mclstexp train``: patch cache, checkpoint, resume.

Before, the widget had its own copy of the CLI's body without the patch cache and without a checkpoint:
training from napari extracted every patch again and could not continue after a Cancel.
"""

from __future__ import annotations

import pytest

from napari_mclstexp._qt.train import train_and_save
from napari_mclstexp.data import patches as patches_mod
from napari_mclstexp.progress import run

TINY = {"input_px": 16, "patch_px": 48, "batch_size": 16}


def test_widget_training_reuses_patches_and_resumes(synthetic_samples, tmp_path, monkeypatch):
    monkeypatch.setenv("MCLSTEXP_CACHE", str(tmp_path / "cache"))
    extracted = []
    real = patches_mod.iter_extract_patches

    def counting(*args, **kwargs):
        extracted.append(1)
        return (yield from real(*args, **kwargs))

    monkeypatch.setattr(patches_mod, "iter_extract_patches", counting)
    out = tmp_path / "m.mclst"
    # in this thread: the counting patch above does not reach a worker process
    kw = dict(genes="hvg:8", device="cpu", out=str(out), overrides=TINY, in_process=False)
    first = run(train_and_save(list(synthetic_samples[:2]), "quick", epochs=1, **kw))
    # both sections' spot patches and the tissue descriptors' 3× reads around them
    assert len(extracted) == 4 and first.resumed_from_epoch == 0
    assert first.checkpoint == tmp_path / "m.mclst.ckpt" and first.checkpoint.is_file()
    assert list((tmp_path / "cache").rglob("*.npy"))  # the user's patch cache holds them now

    # two more epochs: continues after the checkpoint's epoch, reading every patch from the cache
    second = run(train_and_save(list(synthetic_samples[:2]), "quick", epochs=3, **kw))
    assert len(extracted) == 4  # nothing extracted again
    assert second.resumed_from_epoch == 1 and len(second.result.history) == 3
    assert second.result.history[0] == pytest.approx(first.result.history[0])
    assert out.is_file() and second.bundle.path == out

    # other options than the checkpoint's: the widget warns and trains afresh instead of failing
    with pytest.warns(UserWarning, match="other options.*training afresh"):
        third = run(
            train_and_save(list(synthetic_samples[:2]), "quick", epochs=1, **{**kw, "overrides": {**TINY, "lr": 5e-4}})
        )
    assert third.resumed_from_epoch == 0 and len(third.result.history) == 1

"""The training run shared by the trainer and graph-step tests, trained once per session.

``reference_run`` is the uninterrupted 3-epoch eager run that the trainer tests (events, checkpoint, exact
resume) and the graph-step tests (replayed steps, fallback) compare with; before, each file trained its own
copy.  (The ``torch.compile`` tests keep their own 1-epoch seed-7 run: their loss tolerance was set on it.)
"""

from __future__ import annotations

import pytest

#: The tiny ``quick`` set-up of the training tests (3 epochs; cosine lr, as the preset).
BASE = dict(input_px=16, patch_px=48, batch_size=48, epochs=3, seed=7, lr=3e-3)


def tiny_config(**changes):
    """``quick`` at :data:`BASE` sizes with ``changes``."""
    from napari_mclstexp.model.presets import get_preset

    return get_preset("quick").replace(**{**BASE, **changes})


@pytest.fixture(scope="session")
def reference_run(synthetic_samples, tmp_path_factory):
    """``(result, events, checkpoint)`` of an uninterrupted seeded 3-epoch run on the CPU (eager steps)."""
    from napari_mclstexp.progress import run
    from napari_mclstexp.train.trainer import train

    ckpt = tmp_path_factory.mktemp("ref") / "run.ckpt"
    events = []
    result = run(train(synthetic_samples, tiny_config(), device="cpu", checkpoint=ckpt), events.append)
    return result, events, ckpt

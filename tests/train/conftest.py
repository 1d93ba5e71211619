"""Training runs shared by the trainer, graph-step and compile tests: each seeded run is trained once.

``reference_run`` is the uninterrupted 3-epoch eager run that the trainer tests (events, checkpoint, exact
resume) and the graph-step tests (replayed steps, fallback) compare with; ``one_epoch_run`` the 1-epoch
eager run of another seed that the seeding test and the ``torch.compile`` tests compare with.  Before, each
file trained its own copy (the 3-epoch run twice, the 1-epoch run twice).
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


@pytest.fixture(scope="session")
def one_epoch_run(synthetic_samples):
    """A seeded 1-epoch eager run (seed 8) on the CPU."""
    from napari_mclstexp.progress import run
    from napari_mclstexp.train.trainer import train

    return run(train(synthetic_samples, tiny_config(seed=8, epochs=1), device="cpu"))

"""The CLI's progress bars: one live bar per stage, the generator's return value passed through."""

from __future__ import annotations

from napari_mclstexp.progress import Progress, run_with_progress


def stages():
    for i in range(3):
        yield Progress("patches", i + 1, 3)
    for i in range(50):
        yield Progress("train", i + 1, 50, metrics={"loss": 1.0 / (i + 1)})
    return "done"


def test_bars_close_per_stage_and_return_the_result(capsys):
    assert run_with_progress(stages()) == "done"
    err = capsys.readouterr().err
    assert "patches" in err and "train" in err
    # the patches bar is finished (3/3) before the train bar starts; no redraw per step off a terminal
    assert err.index("3/3") < err.index("train")
    assert err.count("train") < 10
    assert "50/50" in err


def test_disabled_bars_print_nothing(capsys):
    assert run_with_progress(stages(), disable=True) == "done"
    assert capsys.readouterr().err == ""

"""A generator run in a worker process (the panel's training): same events, result, errors, warnings and
cancel as in the calling thread."""

from __future__ import annotations

import time
import warnings

import pytest

from napari_mclstexp.errors import Cancelled, MissingInputError
from napari_mclstexp.progress import CancelToken, Progress, run
from napari_mclstexp.progress_process import run_in_process


def counting(n: int, *, cancel=None, fail_at: int | None = None, warn: bool = False, pause_s: float = 0.0):
    """Yields ``n`` events and returns their sum (a module-level target: the child imports it by name)."""
    total = 0
    for i in range(n):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if fail_at == i:
            raise MissingInputError("no counts for this section", "/data/her2st/ST-cnts/Z9.tsv.gz")
        if warn and i == 0:
            warnings.warn("checkpoint of other options: training afresh", UserWarning, stacklevel=1)
        time.sleep(pause_s)
        total += i
        yield Progress("train", i + 1, n, metrics={"loss": float(n - i)})
    return total


def test_events_and_result_come_back():
    events: list[Progress] = []
    assert run(run_in_process(counting, 5), events.append) == 10
    assert [e.step for e in events] == [1, 2, 3, 4, 5]
    assert events[-1].metrics == {"loss": 1.0} and events[0].stage == "train"


def test_engine_errors_keep_their_type_message_and_path():
    with pytest.raises(MissingInputError) as info:
        run(run_in_process(counting, 5, fail_at=2))
    assert info.value.problem == "no counts for this section"
    assert str(info.value.path) == "/data/her2st/ST-cnts/Z9.tsv.gz"


def test_warnings_are_issued_again_in_the_caller():
    with pytest.warns(UserWarning, match="training afresh"):
        run(run_in_process(counting, 2, warn=True))


def test_cancel_reaches_the_child_and_stops_it():
    token = CancelToken()
    gen = run_in_process(counting, 10_000, cancel=token, pause_s=0.01)
    seen = [next(gen) for _ in range(3)]
    token.cancel()
    with pytest.raises(Cancelled):
        for event in gen:
            seen.append(event)
    assert len(seen) < 10_000


def test_closing_the_generator_stops_the_child():
    gen = run_in_process(counting, 10_000, pause_s=0.01)
    next(gen)
    started = time.perf_counter()
    gen.close()  # what napari's worker does when its thread quits
    assert time.perf_counter() - started < 15


def test_a_script_without_main_guard_is_not_run_again_in_the_child(tmp_path):
    """A user's script (``viewer = napari.Viewer(); napari.run()``, no ``__main__`` guard) started the child
    as a copy of itself under ``spawn``: a second window, and a training that never came."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "user_script.py"
    script.write_text(
        "print('SCRIPT RAN', flush=True)\n"
        "from test_progress_process import counting\n"
        "from napari_mclstexp.progress import run\n"
        "from napari_mclstexp.progress_process import run_in_process\n"
        "print('RESULT', run(run_in_process(counting, 4)), flush=True)\n"
    )
    here = str(Path(__file__).resolve().parent)
    env = {**__import__("os").environ}
    env["PYTHONPATH"] = here + __import__("os").pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert out.stdout.count("SCRIPT RAN") == 1 and "RESULT 6" in out.stdout, out.stdout + out.stderr[-2000:]


def reporting_priority(*, cancel=None):
    """Returns the child's own nice value (after a first event, so the parent has had time to set it)."""
    import os

    yield Progress("train", 1, 1)
    return os.getpriority(os.PRIO_PROCESS, 0)


@pytest.mark.skipif(not hasattr(__import__("os"), "getpriority"), reason="POSIX scheduling priority only")
def test_a_background_child_runs_at_a_lower_priority():
    """The panel's training child yields the cores to the viewer: on 2 cores the GUI thread otherwise waited
    behind it (the first seconds of training, while the child imports torch, were the longest GUI gaps)."""
    import os

    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert run(run_in_process(reporting_priority)) == mine
    assert run(run_in_process(reporting_priority, niceness=10)) == min(mine + 10, 19)


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="per-thread nice values: Linux only")
def test_a_thread_lowers_its_own_priority_once():
    import os
    import threading

    from napari_mclstexp.progress_process import lower_thread_priority

    mine = os.getpriority(os.PRIO_PROCESS, 0)
    seen: list = []

    def body():
        seen.append(lower_thread_priority(5))
        seen.append(lower_thread_priority(5))  # measured from the main thread: not 10 lower
        seen.append(os.getpriority(os.PRIO_PROCESS, 0))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [True, False, min(mine + 5, 19)]
    assert os.getpriority(os.PRIO_PROCESS, 0) == mine

"""ProcessGate: the panel's training process is held while the viewer works, let go after, never left stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from napari_mclstexp.errors import Cancelled
from napari_mclstexp.process_gate import ProcessGate
from napari_mclstexp.progress import CancelToken
from napari_mclstexp.progress_process import run_in_process

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGSTOP/PR_SET_PDEATHSIG: Linux")

HERE = Path(__file__).resolve().parent


def _collect(gen, times: list, out: dict) -> None:
    try:
        for _ in gen:
            times.append(time.monotonic())
    except BaseException as err:  # noqa: BLE001 - the test reads it
        out["error"] = err


def _count_between(times: list, start: float, end: float) -> int:
    return sum(start <= t < end for t in times)


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


def _counting_in_a_thread(events: int):
    """A counting child gated and cancellable, driven in a thread until it sent ``events`` events."""
    from tests.test_progress_process import counting

    gate, token, times, out = ProcessGate(), CancelToken(), [], {}
    gen = run_in_process(counting, 100_000, cancel=token, pause_s=0.005, gate=gate)
    thread = threading.Thread(target=_collect, args=(gen, times, out), daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while len(times) < events and time.monotonic() < deadline:  # the child is up and sending
        time.sleep(0.01)
    assert len(times) >= events
    return gate, token, times, out, thread


def test_a_held_child_makes_no_progress_and_goes_on_when_released():
    gate, token, times, out, thread = _counting_in_a_thread(5)
    gate.hold("predict")
    gate.hold("layers")
    assert gate.stopped
    time.sleep(0.3)  # events already in the pipe arrive
    held_from = time.monotonic()
    time.sleep(0.7)
    held_to = time.monotonic()
    gate.release("predict")  # another holder still holds it
    time.sleep(0.3)
    assert gate.stopped and _count_between(times, held_from, time.monotonic()) == 0
    gate.release("layers")
    gate.release("layers")  # a second release of one key does nothing
    time.sleep(0.7)
    assert not gate.stopped
    assert _count_between(times, held_to + 0.3, time.monotonic()) > 5
    token.cancel()
    thread.join(30)
    assert isinstance(out.get("error"), Cancelled)


def test_cancel_while_held_stops_the_child():
    """A stopped child cannot see the cancel: the cancel lets it go on so that it stops."""
    gate, token, times, out, thread = _counting_in_a_thread(3)
    gate.hold("predict")
    time.sleep(0.2)
    token.cancel()
    thread.join(30)
    assert not thread.is_alive(), "the cancelled run did not end while the gate was held"
    assert isinstance(out.get("error"), Cancelled)
    gate.release("predict")


def test_holds_taken_before_the_process_starts_apply_when_it_is_attached():
    gate = ProcessGate()
    gate.hold("steps")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        gate.attach(child.pid)
        time.sleep(0.1)
        assert gate.stopped and _state(child.pid) == "T"
        gate.detach()  # forgets it and lets it go on, whatever holds the gate
        time.sleep(0.1)
        assert _state(child.pid) != "T" and gate.held and not gate.stopped
    finally:
        child.kill()
        child.wait()


def test_a_held_child_dies_with_the_viewer():
    """A viewer that crashes while it holds the training leaves no stopped process behind."""
    script = (
        "import os, sys, threading, time\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "from test_progress_process import counting\n"
        "from napari_mclstexp.process_gate import ProcessGate\n"
        "from napari_mclstexp.progress_process import run_in_process\n"
        "gate = ProcessGate()\n"
        "def drive():\n"
        "    for event in run_in_process(counting, 100_000, pause_s=0.01, gate=gate):\n"
        "        print('PID', gate._pid, flush=True)\n"
        "        gate.hold('crash')\n"
        "threading.Thread(target=drive, daemon=True).start()\n"
        "time.sleep(1e9)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline()
        assert line.startswith("PID"), line
        pid = int(line.split()[1])
        deadline = time.monotonic() + 10
        while _state(pid) != "T" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _state(pid) == "T"
    finally:
        parent.kill()  # a crash: no atexit, no finally
        parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if _state(pid) == "Z":
                break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        pytest.fail("the held child outlived its parent")

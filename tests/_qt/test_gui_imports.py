"""Opening a slide never imports a heavy module in the GUI thread (issue 16, item 10: Load froze the window).

napari imports xarray to check every new layer's data (≈ 0.75 s when installed) and ``scipy.ndimage`` for
the first thumbnail (≈ 0.3 s).  The Load worker imports them first (``warm_layer_imports``); before that,
opening the demo slide in a fresh napari froze the window ~0.9 s.  The check needs cold imports, so it
runs in a fresh process; what it asserts is which modules the GUI thread loaded, not a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, sys, threading, time
import napari
from qtpy.QtWidgets import QApplication

main, recording, loaded = threading.main_thread(), [False], []

def hook(event, args):
    if event == "import" and recording[0] and threading.current_thread() is main:
        loaded.append(args[0])

sys.addaudithook(hook)
viewer = napari.Viewer(show=False)
load = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Load")[1]
done = []
load.task.finished.connect(done.append)
recording[0] = True
load.load(slide=sys.argv[1], spots="")
app, start = QApplication.instance(), time.monotonic()
while not done and time.monotonic() - start < 120:
    app.processEvents()
    time.sleep(0.005)
recording[0] = False
print("RESULT " + json.dumps({"ok": bool(done and done[0] is not None), "layers": len(viewer.layers),
                              "loaded": sorted(set(loaded))}))
"""

HEAVY = ("xarray", "scipy", "pandas", "pint", "sklearn", "torch", "dask")


def test_opening_a_slide_imports_nothing_heavy_in_the_gui_thread(tmp_path):
    from napari_mclstexp.workflows.demo import sample_data_dir

    slide = sample_data_dir() / "demo_slide.ome.tif"
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(slide)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        cwd=tmp_path,
        check=False,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, out.stderr[-3000:]
    result = json.loads(line[len("RESULT ") :])
    assert result["ok"] and result["layers"] == 1, result
    heavy = [m for m in result["loaded"] if m.split(".")[0] in HEAVY]
    assert not heavy, f"imported in the GUI thread while loading: {heavy}"

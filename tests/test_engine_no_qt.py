"""The engine (everything but the widget modules) imports without Qt, napari or magicgui."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# layer_data builds napari layer tuples (napari colormaps, no Qt: an import-linter contract checks that)
WIDGET_PARTS = {"_qt", "_reader", "_writer", "_sample_data", "layer_data", "_widgets", "__main__"}
FORBIDDEN = ["qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "magicgui"]

SCRIPT = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import napari_mclstexp
    skip = set(json.loads(sys.argv[1]))
    names = []
    for info in pkgutil.walk_packages(napari_mclstexp.__path__, "napari_mclstexp."):
        if skip & set(info.name.split(".")):
            continue
        importlib.import_module(info.name)
        names.append(info.name)
    forbidden = set(json.loads(sys.argv[2]))
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in forbidden)
    print(json.dumps({"modules": names, "loaded": loaded}))
    """
)


def test_engine_imports_without_qt_or_napari():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(sorted(WIDGET_PARTS)), json.dumps(FORBIDDEN)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    modules = result["modules"]
    # the walk really covered the engine
    for expected in (
        "napari_mclstexp.io.wsi",
        "napari_mclstexp.data.patches",
        "napari_mclstexp.sample",
        "napari_mclstexp.cli.import_cmd",
    ):
        assert expected in modules
    assert not any("_qt" in m for m in modules)
    assert result["loaded"] == [], f"engine modules pulled in {result['loaded']}"

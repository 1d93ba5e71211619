"""``python -m benchmarks``: one entry listing every part with its goal, no import circle, the shared helpers."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"


def test_listing_names_every_part_with_its_goal():
    from benchmarks.__main__ import PARTS, listing

    text = listing()
    for part in PARTS:
        assert re.search(rf"^  {re.escape(part.name)} +\[", text, flags=re.MULTILINE), part.name
        assert " ".join(part.goal.split()[:4]) in " ".join(text.split())
        assert (BENCH / f"{part.module}.py").is_file()
    assert len({p.name for p in PARTS}) == len(PARTS)


def test_every_part_module_has_a_main_taking_argv():
    import importlib
    import inspect

    from benchmarks.__main__ import PARTS

    for part in PARTS:
        main = importlib.import_module(f"benchmarks.{part.module}").main
        assert list(inspect.signature(main).parameters) == ["argv"], part.module


def test_cli_lists_parts_and_refuses_an_unknown_one():
    listed = subprocess.run([sys.executable, "-m", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert listed.returncode == 0 and "accuracy-levers" in listed.stdout and "make bench" in listed.stdout
    wrong = subprocess.run([sys.executable, "-m", "benchmarks", "nope"], cwd=ROOT, capture_output=True, text=True)
    assert wrong.returncode == 2 and "unknown part 'nope'" in wrong.stderr


def test_part_help_shows_the_entry_as_its_usage(capsys):
    from benchmarks.__main__ import main

    program = sys.argv[0]
    with pytest.raises(SystemExit) as done:
        main(["region-read", "--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("usage: python -m benchmarks region-read")
    assert sys.argv[0] == program  # put back


def test_make_bench_runs_exactly_the_standing_parts():
    from benchmarks.__main__ import PARTS

    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\nbench:") : makefile.index("\nelse\n", makefile.index("\nbench:"))]
    run = re.findall(r"-m benchmarks ([\w-]+)", recipe)
    assert run == [p.name for p in PARTS if p.standing]
    assert "-m benchmarks $(PART) $(BENCH_ARGS)" in makefile


def _local_imports(path: Path) -> set[str]:
    """The benchmarks modules ``path`` imports (relative or ``benchmarks.``), anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module)
            elif node.level == 0 and (node.module or "").startswith("benchmarks."):
                found.add(node.module.split(".", 1)[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".", 1)[1] for a in node.names if a.name.startswith("benchmarks.")}
    return found


def test_no_import_circle_and_no_part_imports_the_dispatcher():
    graph = {p.stem: _local_imports(p) for p in BENCH.glob("*.py") if p.stem != "__main__"}
    assert graph["accuracy_levers"] == graph["accuracy_descriptors"] == {"her2st_folds"}
    assert graph["accuracy"] == graph["encoders"] == graph["pretrain"] == {"her2st_folds"}
    state: dict[str, int] = {}

    def visit(node: str, trail: tuple[str, ...]) -> None:
        assert state.get(node) != 1, f"import circle: {' -> '.join((*trail, node))}"
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in graph.get(node, ()):
            assert dep in graph, f"{node} imports a missing module {dep}"
            visit(dep, (*trail, node))
        state[node] = 2

    for name in graph:
        visit(name, ())


def test_no_module_changes_sys_path_but_the_package():
    for path in BENCH.glob("*.py"):
        if path.name != "__init__.py":
            assert "sys.path.insert" not in path.read_text(), path.name


def test_scores_acg_and_test_sections():
    from benchmarks.her2st_folds import SETTINGS, acg, scores, tests_of

    rng = np.random.default_rng(0)
    truth = rng.random((40, 60))
    assert scores(truth * 2 + 1, truth) == {"acg": pytest.approx(1.0), "heg50": pytest.approx(1.0)}
    flipped = truth.copy()
    top = np.argsort(-truth.mean(0), kind="stable")[:50]
    flipped[:, top] = -truth[:, top]  # the 50 most expressed genes anti-correlated, the other 10 exact
    got = scores(flipped, truth)
    assert got["heg50"] == pytest.approx(-1.0) and got["acg"] == pytest.approx((10 - 50) / 60)
    const = truth.copy()
    const[:, 0] = 1.0  # a constant gene is dropped, not counted as 0
    assert acg(truth, const) == pytest.approx(1.0)
    import torch

    assert acg(torch.from_numpy(truth), truth) == pytest.approx(1.0)
    assert tests_of(SETTINGS["B4>C"][0]) == ("C2", "C3", "C4") and tests_of(SETTINGS["C>B4"][0]) == ("B4",)
    for items in SETTINGS.values():  # never a test section in its own training set
        for item in items:
            assert not set(item[0]) & set(tests_of(item))


def test_finished_studies_left_the_tree_with_a_paragraph_and_a_commit():
    accuracy = (ROOT / "docs" / "accuracy.md").read_text()
    for script in ("quick_vs_histogram", "paper_scale", "pretrain_probe", "accuracy_descriptor_variants"):
        assert not (BENCH / f"{script}.py").exists()
        assert re.search(rf"git show [0-9a-f]{{7,40}}:benchmarks/{script}\.py", accuracy), script
    results = {p.name for p in (BENCH / "results").glob("*.json")}
    for name in re.findall(r"results/([\w.-]+\.json)", accuracy):
        assert name in results, name  # every result file the page cites is kept

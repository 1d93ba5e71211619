"""Issue 24, "no freeze": the causes found, checked by what the GUI thread does, not by the clock.

- Opening the panel imported torch, scikit-learn, pandas and scipy in the GUI thread (seconds): the step
  widgets' modules now load in a thread and the widgets go in one per event-loop turn.
- Explore's gene list sorted her2st's 15,000 genes in Python on every inserted row (seconds per layer
  change while the folder loaded): the list is ordered in one pass and goes in with one model reset.
"""

from __future__ import annotations

from napari_mclstexp._qt._gene_list import GENE_ROLE, SORTS, GeneModel

STEPS = r"""
recording[0] = True
panel = viewer.window.add_plugin_dock_widget("napari-mclstexp", "mclSTExp")[1]
app, start = QApplication.instance(), time.monotonic()
while not panel.ready and time.monotonic() - start < 300:
    app.processEvents()
    time.sleep(0.005)
recording[0] = False
print("RESULT " + json.dumps({"ready": panel.ready, "loaded": sorted(set(loaded)),
                              "steps": [panel.tabs.tabText(i) for i in range(panel.tabs.count())],
                              "widgets": [type(getattr(panel, a)).__name__ for a in
                                          ("load", "train", "predict", "explore", "domains", "export")]}))
"""

HEAVY = ("torch", "sklearn", "pandas", "scipy", "anndata")


def test_opening_the_panel_imports_nothing_heavy_in_the_gui_thread(fresh_napari):
    result = fresh_napari(STEPS)
    assert result["ready"] and result["steps"] == ["Data", "Train", "Predict", "Explore", "Domains", "Export"]
    assert result["widgets"] == [
        "LoadWidget",
        "TrainWidget",
        "PredictWidget",
        "ExploreWidget",
        "DomainsWidget",
        "ExportWidget",
    ]
    heavy = [m for m in result["loaded"] if m.split(".")[0] in HEAVY]
    assert not heavy, f"imported in the GUI thread while the panel opened: {heavy}"


def test_a_step_widget_asked_for_early_is_there(make_napari_viewer):
    viewer = make_napari_viewer()
    panel = viewer.window.add_plugin_dock_widget("napari-mclstexp", "mclSTExp")[1]
    assert panel.explore.search is not None and panel.ready  # built at once when a script asks


def test_a_large_gene_list_goes_in_with_one_reset(qtbot):
    model = GeneModel()
    resets, inserts = [], []
    model.modelReset.connect(lambda: resets.append(1))
    model.rowsInserted.connect(lambda *a: inserts.append(1))
    genes = [f"G{i:05d}" for i in range(15_000)] + ["ERBB2", "ERBB2IP", "XERBB2"]
    reliability = {"G00007": 0.9, "ERBB2IP": 0.5, "XERBB2": 0.8}
    model.set_genes(genes, reliability, 0.3)
    assert len(resets) == 1 and not inserts and model.rowCount() == len(genes)
    top = [model.index(i, 0).data(GENE_ROLE) for i in range(3)]
    assert top == ["G00007", "XERBB2", "ERBB2IP"]  # reliability, best first
    model.set_query("erbb2")  # the exact match, then prefix matches, then the rest containing it
    assert [model.index(i, 0).data(GENE_ROLE) for i in range(model.rowCount())] == ["ERBB2", "ERBB2IP", "XERBB2"]
    assert model.first_gene() == "ERBB2" and len(resets) == 2
    model.set_sort(SORTS[1])  # by name: the search stays
    assert model.first_gene() == "ERBB2" and model.rowCount() == 3
    model.set_query("")
    assert model.index(0, 0).data(GENE_ROLE) == "ERBB2" and model.rowCount() == len(genes)

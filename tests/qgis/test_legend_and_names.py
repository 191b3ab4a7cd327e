"""The layer tree as an analyst meets it: short run group names (the full scene, model and run
folder in the layers' tooltips), only the newest run and its shown map's legend expanded, the
view buttons flipping which legend is open, and the output folder proposed on first use."""
from __future__ import annotations

import datetime as _dt
import json
import time
from pathlib import Path

import pytest
from qgis.core import QgsApplication, QgsLayerTreeModel, QgsProject, QgsSettings
from qgis.gui import QgsLayerTreeView
from qgis.PyQt.QtCore import Qt

SAFE = "S2A_MSIL2A_20230601T103031_N0509_R108_T32TMT_20230601T170000.SAFE"
WHEN = _dt.datetime(2024, 5, 17, 9, 5, 42)


def test_short_names_for_a_safe_product_a_long_stem_and_a_short_stem():
    from sparsevit_qgis.core.styling import SHORT_NAME_CHARS, run_group_name, short_scene_name
    assert short_scene_name(SAFE) == "T32TMT 2023-06-01"
    assert short_scene_name(SAFE[:-5]) == "T32TMT 2023-06-01"  # a zip's stem, no .SAFE
    # a file inside the product: the product named by the scene path
    assert short_scene_name("MTD_MSIL2A", f"/data/{SAFE}/MTD_MSIL2A.xml") == "T32TMT 2023-06-01"
    assert short_scene_name("T31TCJ_20220715T104031_B04_10m") == "T31TCJ 2022-07-15"
    long = "mosaic_of_the_whole_region_summer_2023_cloudfree_v3"
    short = short_scene_name(long)
    assert len(short) == SHORT_NAME_CHARS and short.endswith("\u2026") and long.startswith(short[:-1])
    assert short_scene_name("Spain_7370579_S2Hand") == "Spain_7370579_S2Hand"
    assert short_scene_name(f"{long} (trained)") == short + " (trained)"  # the note stays whole
    assert run_group_name(SAFE, WHEN) == "T32TMT 2023-06-01 09:05"
    assert run_group_name("Spain_7370579_S2Hand", WHEN) == "Spain_7370579_S2Hand 09:05"


@pytest.fixture
def make_result(uint8_tif, tmp_path):
    """A ``predict`` result event on small class rasters, as the engine sends it (no engine)."""
    scheme = {"name": "mini", "title": "Mini", "ignore_value": 255, "classes": [
        {"value": 0, "name": "Water", "color": "#1f78b4"},
        {"value": 1, "name": "Trees", "color": "#33a02c"},
        {"value": 2, "name": "Built-up", "color": "#e31a1c"}]}
    count = [0]

    def make() -> dict:
        count[0] += 1
        run = tmp_path / f"run{count[0]}"
        run.mkdir()
        outputs = {}
        for role in ("landcover_coarse", "landcover", "pseudomask"):
            outputs[role] = str(run / f"{role}.tif")
            Path(outputs[role]).write_bytes(uint8_tif.read_bytes())
        outputs["run"] = str(run / "run.json")
        Path(outputs["run"]).write_text(json.dumps({"outputs": outputs}))
        return {"outputs": outputs, "scheme": scheme, "coarse_scheme": scheme, "level": "both",
                "model": {"path": "/models/eurosat_v2"}}
    return make


@pytest.fixture
def tree_view(qgis_new_project):
    """A layer tree view on the project, as QGIS's Layers panel shows it."""
    model = QgsLayerTreeModel(QgsProject.instance().layerTreeRoot())
    model.setFlag(QgsLayerTreeModel.ShowLegend)
    view = QgsLayerTreeView()
    view.setModel(model)
    view.show()
    yield view
    view.hide()
    view.setModel(None)
    view.deleteLater()
    QgsApplication.processEvents()


def _shown(view, node) -> bool:
    """Whether the view shows ``node`` expanded."""
    return view.isExpanded(view.node2index(node))


def _settle(run=None):
    """What the dock does after adding a run: let the view react, then sync the legends."""
    from sparsevit_qgis.core.results import sync_legends
    QgsApplication.processEvents()
    if run is not None:
        sync_legends(run)
    QgsApplication.processEvents()


def test_the_full_scene_model_and_run_folder_are_in_the_tooltip(make_result, tree_view):
    from sparsevit_qgis.core.results import RUN_INFO_PROPERTY, RUN_SCENE_PROPERTY, add_predict_results
    scene = f"/data/sentinel/{SAFE}"
    result = make_result()
    run = add_predict_results(result, SAFE, when=WHEN, scene=scene)
    assert not run.warnings, run.warnings
    assert run.group.name() == "T32TMT 2023-06-01 09:05"
    info = run.group.customProperty(RUN_INFO_PROPERTY)
    run_dir = str(Path(result["outputs"]["run"]).parent)
    for text in (scene, "/models/eurosat_v2", run_dir, "2024-05-17 09:05:42"):
        assert text in info
    assert run.group.customProperty(RUN_SCENE_PROPERTY) == scene
    model = tree_view.layerTreeModel()
    for layer in run.layers.values():
        assert layer.abstract() == info and layer.metadata().abstract() == info
        tip = model.data(model.node2index(run.group.findLayer(layer.id())), Qt.ToolTipRole)
        assert scene in tip and run_dir in tip and "/models/eurosat_v2" in tip
    # two runs of one scene in one minute: told apart
    again = add_predict_results(make_result(), SAFE, when=WHEN, scene=scene)
    assert again.group.name() == "T32TMT 2023-06-01 09:05 (2)"


def test_only_the_newest_run_and_its_shown_map_are_expanded(make_result, tree_view):
    from sparsevit_qgis.core.results import add_predict_results
    first = add_predict_results(make_result(), "first", when=WHEN)
    _settle(first)
    second = add_predict_results(make_result(), "second", when=WHEN)
    _settle(second)
    root = QgsProject.instance().layerTreeRoot()
    assert root.children()[0] is second.group and second.group.name() == "second 09:05"
    for run, newest in ((first, False), (second, True)):
        assert run.group.isExpanded() is newest and _shown(tree_view, run.group) is newest
        for role, layer in run.layers.items():
            node = run.group.findLayer(layer.id())
            legend_open = newest and role == run.main_role
            assert node.isExpanded() is legend_open, (run.group.name(), role)
            if newest:
                assert _shown(tree_view, node) is legend_open, role
    assert second.main_role == "landcover_coarse"
    model = tree_view.layerTreeModel()  # the open legend has the map's classes
    assert model.rowCount(model.node2index(second.group.findLayer(second.main_map.id()))) >= 3


def test_switching_the_view_flips_which_legend_is_expanded(make_result, tree_view):
    from sparsevit_qgis.core.results import add_predict_results, set_view
    run = add_predict_results(make_result(), "scene", when=WHEN)
    _settle(run)
    node = {role: run.group.findLayer(layer.id()) for role, layer in run.layers.items()}

    def expanded():
        QgsApplication.processEvents()
        assert all(_shown(tree_view, n) == n.isExpanded() for n in node.values())
        return {role for role, n in node.items() if n.isExpanded()}

    assert expanded() == {"landcover_coarse"}
    set_view(run, "landcover")
    assert expanded() == {"landcover"} and node["landcover"].itemVisibilityChecked()
    set_view(run, "pseudomask")
    assert expanded() == {"pseudomask"}
    set_view(run, "landcover_coarse")
    assert expanded() == {"landcover_coarse"}


# --- the output folder on first use ----------------------------------------------------------
OUT_KEY = "run/output_dir"


@pytest.fixture
def no_output_choice(monkeypatch, tmp_path):
    """No output folder ever chosen; the home folder in tmp_path; the user's setting back after."""
    from sparsevit_qgis.core import settings
    store = QgsSettings()
    before = store.value(settings.PREFIX + OUT_KEY)
    store.remove(settings.PREFIX + OUT_KEY)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: home))
    yield home
    if before is None:
        store.remove(settings.PREFIX + OUT_KEY)
    else:
        store.setValue(settings.PREFIX + OUT_KEY, before)


def test_the_proposed_output_folder_with_and_without_a_saved_project(no_output_choice, tmp_path,
                                                                     qgis_new_project):
    from sparsevit_qgis.core import settings
    project = QgsProject.instance()
    assert settings.output_dir() == ""
    assert settings.proposed_output_dir() == str(no_output_choice / "SparseViT runs")
    assert settings.output_dir_or_proposal() == settings.proposed_output_dir()
    folder = tmp_path / "project"
    folder.mkdir()
    assert project.write(str(folder / "analysis.qgz"))
    assert settings.proposed_output_dir() == str(folder / "sparsevit_runs")
    assert settings.is_proposed_output_dir(str(folder / "sparsevit_runs"))
    settings.set_output_dir(str(tmp_path))
    assert settings.output_dir_or_proposal() == str(tmp_path)  # a choice beats the proposal
    assert not (folder / "sparsevit_runs").exists() and not (no_output_choice / "SparseViT runs").exists()
    project.clear()


def _wait(dock, timeout=60.0):
    t0 = time.monotonic()
    while dock.running and time.monotonic() - t0 < timeout:
        QgsApplication.processEvents()
        time.sleep(0.02)
    assert not dock.running, dock.log.toPlainText()


def test_the_panel_proposes_the_output_folder_and_a_run_creates_it(
        no_output_choice, qgis_iface, qgis_new_project, engine_setting, fake_python, uint8_tif, tmp_path):
    from sparsevit_qgis.core import settings
    from sparsevit_qgis.gui.dock import SparseVitDock
    engine_setting.set_python_path(str(fake_python))
    dock = SparseVitDock(qgis_iface)
    try:
        proposed = no_output_choice / "SparseViT runs"
        assert dock.output_dir.filePath() == str(proposed)
        folder = tmp_path / "project"
        folder.mkdir()
        assert QgsProject.instance().write(str(folder / "analysis.qgz"))  # saved: moves along
        runs = folder / "sparsevit_runs"
        assert dock.output_dir.filePath() == str(runs)
        dock.s2_input.set_path(str(uint8_tif))
        args, run_dir = dock.plan_predict()  # planning creates nothing
        assert run_dir.parent == runs and not runs.exists()
        assert dock.run_predict() is not None  # the fake engine has no predict: the run fails
        _wait(dock)
        assert runs.is_dir() and not run_dir.exists()  # created by the run; the empty run folder removed
        assert settings.output_dir() == ""  # still a proposal: not remembered as a choice
        chosen = tmp_path / "mine"
        chosen.mkdir()
        dock.output_dir.setFilePath(str(chosen))  # the user's choice stands and is remembered
        QgsProject.instance().write(str(folder / "other.qgz"))
        assert dock.output_dir.filePath() == str(chosen)
        assert dock.run_predict() is not None
        _wait(dock)
        assert settings.output_dir() == str(chosen)
    finally:
        dock.shutdown()
        dock.deleteLater()
        QgsApplication.processEvents()
        QgsProject.instance().clear()

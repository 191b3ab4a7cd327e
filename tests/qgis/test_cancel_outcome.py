"""A cancel's outcome is deliberate and its messages are true: a cancel that reaches the engine
after it committed the whole result keeps and shows that result; otherwise nothing is left and
the log says so; a folder that must be kept is kept with the reason."""
from __future__ import annotations

import shutil

import pytest

from sparsevit_qgis.core.engine_runner import EngineOutcome
from sparsevit_qgis.core.predict_job import result_is_complete


@pytest.fixture
def dock(qgis_iface, engine_setting, qgis_new_project):
    from sparsevit_qgis.gui.dock import SparseVitDock
    d = SparseVitDock(qgis_iface)
    d._run_label = "scene"
    yield d
    d.shutdown()
    d.deleteLater()


def _run_with_result(tmp_path, uint8_tif):
    run = tmp_path / "scene_20261202-070000"
    run.mkdir()
    landcover = run / "scene_landcover.tif"
    shutil.copy(uint8_tif, landcover)
    result = {"outputs": {"landcover": str(landcover)}, "scheme": "eurosat", "level": "detailed",
              "device": "CPU (1 threads)", "window": [0, 0, 8, 8], "counts": {"tiles": 1}}
    return run, result


def test_complete_means_every_named_output_exists(tmp_path, uint8_tif):
    run, result = _run_with_result(tmp_path, uint8_tif)
    assert result_is_complete(result)
    assert not result_is_complete(None) and not result_is_complete({"outputs": {}})
    result["outputs"]["confidence"] = str(run / "scene_confidence.tif")  # never written
    assert not result_is_complete(result)


def test_a_cancel_after_the_commit_keeps_and_shows_the_result(dock, tmp_path, uint8_tif):
    run, result = _run_with_result(tmp_path, uint8_tif)
    dock._run_dir = run
    outcome = EngineOutcome(command=[], exit_code=130, cancelled=True, result=result, elapsed=2.0)
    dock._finished(outcome, "predict", dock._predict_done)
    log = dock.log.toPlainText()
    assert "cancel came after the engine had written the whole result" in log
    assert "no output was written" not in log and "Kept the run folder" not in log
    assert dock.stage_label.text().startswith("Done") and "too late" in dock.stage_label.text()
    assert dock.last_run is not None and dock.last_run.get("landcover") is not None
    assert run.is_dir()


def test_a_cancel_before_the_commit_leaves_nothing_and_says_so(dock, tmp_path):
    run = tmp_path / "scene_20261202-070100"
    (run / ".scene.partial-abc").mkdir(parents=True)  # the engine's staging, killed mid-run
    dock._run_dir = run
    dock._finished(EngineOutcome(command=[], exit_code=130, cancelled=True), "predict", dock._predict_done)
    assert not run.exists()
    assert dock.stage_label.text() == "Cancelled"
    assert "Cancelled; no output was written (removed" in dock.log.toPlainText()
    assert dock.last_run is None


def test_a_folder_that_must_be_kept_is_kept_with_what_it_holds(dock, tmp_path, uint8_tif):
    run, _ = _run_with_result(tmp_path, uint8_tif)  # a file, but no result event came
    dock._run_dir = run
    dock._finished(EngineOutcome(command=[], exit_code=130, cancelled=True), "predict", dock._predict_done)
    log = dock.log.toPlainText()
    assert "no output was written" not in log
    assert f"Cancelled; kept the run folder {run}: it holds scene_landcover.tif" in log
    assert "not added to the map" in log and run.is_dir()

"""EngineTask through the QGIS task manager: events to the main thread, outcome in finished()."""
from __future__ import annotations

import time

from qgis.core import QgsApplication

from sparsevit_qgis.core.engine_task import EngineTask


def _wait(predicate, timeout=20.0):
    t0 = time.monotonic()
    while not predicate() and time.monotonic() - t0 < timeout:
        QgsApplication.processEvents()
        time.sleep(0.01)
    return predicate()


def test_task_runs_engine_and_hands_outcome_to_main_thread(qgis_app, fake_python):
    outcomes, events = [], []
    task = EngineTask("test", "ok", ["a.tif"], python=str(fake_python), on_finished=outcomes.append)
    task.engine_event.connect(events.append)
    QgsApplication.taskManager().addTask(task)
    assert _wait(lambda: outcomes)
    outcome = outcomes[0]
    assert outcome.ok, outcome.message
    assert outcome.result["device"] == "cuda"
    kinds = [e["event"] for e in events]
    assert "progress" in kinds and "result" in kinds
    assert {"event": "log", "level": "debug", "message": "some library chatter on stdout"} in events


def test_task_cancel_stops_the_engine(qgis_app, fake_python):
    outcomes, progress = [], []
    task = EngineTask("test", "stubborn", python=str(fake_python), on_finished=outcomes.append)
    task.engine_event.connect(lambda e: progress.append(e) if e["event"] == "progress" else None)
    QgsApplication.taskManager().addTask(task)
    assert _wait(lambda: progress)
    t0 = time.monotonic()
    task.cancel()
    assert _wait(lambda: outcomes, timeout=10)
    assert time.monotonic() - t0 < 3.0
    assert outcomes[0].cancelled


def test_task_without_engine_reports_what_to_do(qgis_app, engine_setting, tmp_path):
    engine_setting.set_python_path(str(tmp_path / "missing-python"))
    outcomes = []
    task = EngineTask("test", "info", ["x.tif"], on_finished=outcomes.append)
    QgsApplication.taskManager().addTask(task)
    assert _wait(lambda: outcomes)
    assert not outcomes[0].ok
    assert "plugin settings does not work" in outcomes[0].message

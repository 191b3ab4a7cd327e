"""Where the engine computes, in the panel: the Compute group (device, CPU threads, precision,
batch size) saved in the settings and given to predict and fit; the device known before a run
from a background probe of the engine interpreter (a stand-in interpreter here); a result whose
Sentinel-1 input the model ignored is said in the message bar, not only in the log."""
from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from conftest import REPO, wait_until
from qgis.core import (
    Qgis,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsTask,
    QgsVectorLayer,
)

COMPUTE_KEYS = ("compute/device", "compute/threads", "compute/precision", "compute/batch_size")
PROBE_ANSWER = {"cuda": True, "devices": ["Fake H200", "Fake A100"], "threads": 6, "cpus": 12}


@pytest.fixture
def compute_settings(engine_setting):
    """The Compute settings as they were before the test (they persist across test runs)."""
    from qgis.core import QgsSettings

    from sparsevit_qgis.core import compute, settings
    store = QgsSettings()
    before = {k: store.value(settings.PREFIX + k) for k in COMPUTE_KEYS}
    for k in COMPUTE_KEYS:
        store.remove(settings.PREFIX + k)
    compute.clear_probe_cache()
    yield settings
    for k, v in before.items():
        if v is None:
            store.remove(settings.PREFIX + k)
        else:
            store.setValue(settings.PREFIX + k, v)
    compute.clear_probe_cache()


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def probe_python(tmp_path) -> Path:
    """An 'interpreter' that answers the probe after a second and records its arguments."""
    return _script(tmp_path / "python", f'printf "%s\\n" "$@" > "{tmp_path}/probe_args.txt"\n'
                   f"sleep 1\necho 'some import chatter'\necho '{json.dumps(PROBE_ANSWER)}'\n")


    QgsProject.instance().clear()  # a later panel must not pick up this test's layers as input




def _form(dock, tmp_path):
    dock.s2_input.set_path("/d/s2.tif")
    dock.model_input.default_radio.setChecked(True)  # the bundled model, in the checkout
    (tmp_path / "out").mkdir(exist_ok=True)
    dock.output_dir.setFilePath(str(tmp_path / "out"))


def test_compute_options_persist_across_panels_and_reach_predict_and_fit(compute_settings, new_dock,
                                                                         tmp_path, qgis_new_project):
    dock = new_dock()
    _form(dock, tmp_path)
    base = dock.build_predict_args()
    assert dock.compute_options() == {"device": "auto", "threads": 0, "precision": "auto", "batch_size": 8}
    assert not {"--device", "--threads", "--precision", "--batch-size"} & set(base)
    assert [dock.device_combo.itemData(i) for i in range(dock.device_combo.count())] == ["auto", "cpu", "cuda"]
    assert [dock.precision_combo.itemData(i) for i in range(3)] == ["auto", "fp32", "bf16"]

    dock.device_combo.setCurrentIndex(dock.device_combo.findData("cpu"))
    dock.threads_spin.setValue(2)
    dock.precision_combo.setCurrentIndex(dock.precision_combo.findData("bf16"))
    dock.batch_spin.setValue(16)
    assert (compute_settings.compute_device(), compute_settings.compute_threads(),
            compute_settings.compute_precision(), compute_settings.compute_batch_size()) == ("cpu", 2, "bf16", 16)
    assert dock.build_predict_args()[len(base):] == [
        "--device", "cpu", "--threads", "2", "--precision", "bf16", "--batch-size", "16"]

    again = new_dock()  # a panel opened later (or after a restart) has the same choice
    _form(again, tmp_path)
    assert again.compute_options() == {"device": "cpu", "threads": 2, "precision": "bf16", "batch_size": 16}
    assert again.build_predict_args() == dock.build_predict_args()

    # a GPU chosen before the engine was asked (cuda:1 saved) stays chosen
    compute_settings.set_compute_device("cuda:1")
    third = new_dock()
    assert third.device_combo.currentData() == "cuda:1"

    # training uses the same device and threads; its own threads field overrides the threads
    train = again.train_section
    train.raster_input.set_path("/d/s2.tif")
    points = QgsVectorLayer("Point?crs=EPSG:32630&field=class:string", "samples", "memory")
    f = QgsFeature(points.fields())
    f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(500015.0, 4199925.0)))
    f.setAttributes(["Water"])
    points.dataProvider().addFeature(f)
    QgsProject.instance().addMapLayer(points)
    train.labels_layer.setChecked(True)
    train.labels_combo.setLayer(points)
    train.field_combo.setField("class")
    train.use_scheme_check.setChecked(False)
    run_dir = tmp_path / "fit"
    run_dir.mkdir()
    args = train.fit_request(run_dir).to_args()
    assert args[args.index("--device") + 1] == "cpu" and args[args.index("--threads") + 1] == "2"
    assert "--precision" not in args and "--batch-size" not in args  # fit has neither
    train.threads_spin.setValue(1)
    args = train.fit_request(run_dir).to_args()
    assert args[args.index("--threads") + 1] == "1" and args[args.index("--device") + 1] == "cpu"
    assert compute_settings.compute_threads() == 2  # the override is not the panel's setting


def test_device_probe_fills_the_label_in_the_background(compute_settings, new_dock, probe_python, tmp_path):
    compute_settings.set_python_path(str(probe_python))
    dock = new_dock()
    assert "unknown" in dock.device_label.text()  # nothing asked before the panel opens
    t0 = time.monotonic()
    task = dock.probe_device()
    assert time.monotonic() - t0 < 0.5, "the probe must not block the main thread"
    assert task is not None and "asking the engine" in dock.device_label.text()
    assert dock.probe_device() is task  # asked once, not once per call
    assert dock.run_button.isEnabled()  # a run may start meanwhile
    waited = wait_until(lambda: "GPU" in dock.device_label.text())
    assert waited > 0.5  # the answer came from the (slow) interpreter, later
    assert dock.device_label.text() == "Device: GPU (Fake H200)"
    assert "-c" in (tmp_path / "probe_args.txt").read_text()  # python -c PROBE_CODE
    assert "torch.cuda.is_available()" in (tmp_path / "probe_args.txt").read_text()

    # one entry per GPU found; the label follows the choice the way the engine resolves it
    assert [dock.device_combo.itemData(i) for i in range(dock.device_combo.count())] == [
        "auto", "cpu", "cuda", "cuda:0", "cuda:1"]
    assert "Fake H200" in dock.device_combo.itemText(dock.device_combo.findData("cuda"))
    dock.device_combo.setCurrentIndex(dock.device_combo.findData("cuda:1"))
    assert dock.device_label.text() == "Device: GPU (Fake A100)"
    dock.device_combo.setCurrentIndex(dock.device_combo.findData("cpu"))
    assert dock.device_label.text() == "Device: CPU (6 threads)"
    dock.threads_spin.setValue(2)
    assert dock.device_label.text() == "Device: CPU (2 threads)"

    # cached per interpreter: a new panel knows at once, without asking again
    (tmp_path / "probe_args.txt").unlink()
    other = new_dock()
    assert other.probe_device() is None
    assert other.device_label.text() == "Device: CPU (2 threads)"  # the saved cpu / 2 threads
    assert not (tmp_path / "probe_args.txt").exists()

    # after a run the engine's own start event wins over the probe
    other.on_event({"event": "start", "command": "predict", "protocol": 2, "device": "cuda:1",
                    "device_name": "GPU (Fake A100)"})
    assert other.device_label.text() == "Device: GPU (Fake A100)"
    other.probe_device()
    assert other.device_label.text() == "Device: GPU (Fake A100)"


def test_opening_the_panel_starts_the_probe(compute_settings, new_dock, probe_python):
    compute_settings.set_python_path(str(probe_python))
    dock = new_dock()
    dock.show()
    assert dock._probe_task is not None
    wait_until(lambda: dock.device_label.text().startswith("Device: GPU"))
    dock.hide()
    dock.show()  # known: not asked again
    assert dock._probe_task is None


def test_a_failing_probe_says_engine_not_found_and_blocks_nothing(compute_settings, new_dock, tmp_path):
    broken = _script(tmp_path / "python", "echo \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n")
    compute_settings.set_python_path(str(broken))
    dock = new_dock()
    assert dock.probe_device() is not None
    wait_until(lambda: "not found" in dock.device_label.text())
    assert dock.device_label.text() == "Device: engine not found"
    assert "No module named 'torch'" in dock.device_label.toolTip()
    assert "[warning] Device check" in dock.log.toPlainText()
    assert dock.run_button.isEnabled() and not dock.running

    # no interpreter file at all: said at once, no task
    compute_settings.set_python_path(str(tmp_path / "no" / "python"))
    missing = new_dock()
    assert missing.probe_device() is None
    wait_until(lambda: True, timeout=0.1)
    assert missing.device_label.text() == "Device: engine not found"


def test_closing_the_panel_stops_a_slow_probe(compute_settings, new_dock, tmp_path):
    from sparsevit_qgis.core import compute
    slow = _script(tmp_path / "python", "sleep 30\n")
    compute_settings.set_python_path(str(slow))
    dock = new_dock()
    task = dock.probe_device()
    wait_until(lambda: task.status() == QgsTask.Running)
    time.sleep(0.3)
    t0 = time.monotonic()
    dock.shutdown()
    wait_until(lambda: task.status() in (QgsTask.Complete, QgsTask.Terminated), timeout=5)
    assert time.monotonic() - t0 < 3.0
    assert compute.cached_probe(str(slow)) is None  # a cancelled probe is asked again next time


def test_planned_device_words_it_like_the_engine():
    from sparsevit_qgis.core.compute import DeviceProbe, parse_probe_output, planned_device

    gpu = parse_probe_output("py", "chatter\n" + json.dumps(PROBE_ANSWER) + "\n")
    cpu = parse_probe_output("py", json.dumps({"cuda": False, "devices": [], "threads": 4}))
    assert gpu.ok and gpu.devices == ["Fake H200", "Fake A100"] and gpu.threads == 6
    assert parse_probe_output("py", "no json here") is None
    assert planned_device(gpu) == ("GPU (Fake H200)", True)
    assert planned_device(gpu, "cuda:1") == ("GPU (Fake A100)", True)
    assert planned_device(gpu, "cpu", 3) == ("CPU (3 threads)", True)
    assert planned_device(cpu) == ("CPU (4 threads)", True)
    assert planned_device(cpu, "auto", 1) == ("CPU (1 threads)", True)
    text, ok = planned_device(cpu, "cuda")
    assert not ok and "no GPU" in text
    text, ok = planned_device(gpu, "cuda:2")
    assert not ok and "2 GPU(s)" in text
    assert not DeviceProbe.failed("py", "x").ok


def _predict_outcome(uint8_tif, s1_ignored: bool):
    from sparsevit_qgis.core.engine_runner import EngineOutcome
    result = {"outputs": {"landcover": str(uint8_tif)}, "scheme": "eurosat", "level": "detailed",
              "device": "CPU (2 threads)", "window": [0, 0, 8, 8],
              "counts": {"tiles": 1, "bands": {"used": ["B02"], "missing": [], "s1_ignored": s1_ignored}}}
    return EngineOutcome(command=[], exit_code=0, result=result, elapsed=1.25)


def test_an_ignored_sentinel1_input_is_said_in_the_message_bar(compute_settings, new_dock, qgis_iface,
                                                               uint8_tif, qgis_new_project):
    bar = qgis_iface.messageBar()
    bar.clear_messages()
    dock = new_dock()
    dock._run_label = "scene"
    dock._finished(_predict_outcome(uint8_tif, s1_ignored=False), "predict", dock._predict_done)
    assert bar.get_messages(Qgis.Warning) == []
    assert dock.summary_label.text() == "scene: 8 x 8 px on CPU (2 threads) in 1.2 s"
    assert "⚠" not in dock.stage_label.text()

    dock._finished(_predict_outcome(uint8_tif, s1_ignored=True), "predict", dock._predict_done)
    message = "Sentinel-1 input ignored: this model reads Sentinel-2 only"
    assert bar.get_messages(Qgis.Warning) == [f"SparseViT:{message}"]
    assert dock.summary_label.text().endswith(f"— ⚠ {message}")
    assert message in dock.summary_label.toolTip()
    assert dock.stage_label.text().startswith("Done") and message in dock.stage_label.text()
    assert f"[warning] {message}" in dock.log.toPlainText()
    assert dock.last_run is not None and dock.last_run.get("landcover") is not None


def test_no_compute_module_imports_torch():
    import ast
    source = (REPO / "sparsevit_qgis" / "core" / "compute.py").read_text()
    imported = {a.name.split(".")[0] for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import)
                for a in n.names}
    assert "torch" not in imported  # torch runs in the engine interpreter (PROBE_CODE) only

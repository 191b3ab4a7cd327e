"""The engine process runner: protocol parsing, environment, cancel, errors."""
from __future__ import annotations

import sys
import threading
import time

from sparsevit_qgis.core.engine_runner import (
    EngineRunner,
    build_command,
    run_engine,
    sanitized_environment,
)


def test_sanitized_environment_strips_qgis_python_gdal_proj():
    base = {"PYTHONPATH": "/qgis/python", "PYTHONHOME": "/qgis", "PROJ_LIB": "/qgis/proj",
            "PROJ_DATA": "/qgis/proj", "GDAL_DATA": "/qgis/gdal", "GDAL_DRIVER_PATH": "/qgis/plugins",
            "QGIS_PREFIX_PATH": "/usr", "QGIS_PLUGINPATH": "/x", "HOME": "/home/u", "PATH": "/bin",
            "LANG": "C.UTF-8"}
    env = sanitized_environment(base, extra={"SPARSEVIT_RESOURCES": "/r"})
    for key in ("PYTHONPATH", "PYTHONHOME", "PROJ_LIB", "PROJ_DATA", "GDAL_DATA",
                "GDAL_DRIVER_PATH", "QGIS_PREFIX_PATH", "QGIS_PLUGINPATH"):
        assert key not in env
    assert env["HOME"] == "/home/u" and env["PATH"] == "/bin" and env["LANG"] == "C.UTF-8"
    assert env["SPARSEVIT_RESOURCES"] == "/r"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_build_command_has_no_shell_and_global_flags_first():
    cmd = build_command("/venv/bin/python", "info", ["a b.tif", 3], cancel_file="/tmp/c")
    assert cmd == ["/venv/bin/python", "-m", "sparsevit", "--json", "--cancel-file", "/tmp/c",
                   "info", "a b.tif", "3"]


def test_runner_parses_protocol_and_calls_callbacks(fake_env):
    progress, stages, logs, results = [], [], [], []
    outcome = EngineRunner(
        sys.executable, "ok", ["x.tif"], extra_env=fake_env,
        on_progress=lambda *a: progress.append(a), on_stage=lambda *a: stages.append(a),
        on_log=lambda *a: logs.append(a), on_result=results.append).run()
    assert outcome.ok, outcome.message
    assert outcome.exit_code == 0
    assert progress[-1] == ("predict", 1.0, 4, 4)
    assert ("predict", True) in stages and ("predict", False) in stages
    assert ("warning", "tile 3 is mostly no-data") in logs
    assert ("stdout", "some library chatter on stdout") in logs
    assert outcome.other_stdout == ["some library chatter on stdout"]
    assert results == [{"device": "cuda", "device_name": "Fake GPU", "args": ["x.tif"]}]
    assert outcome.result["device"] == "cuda"
    assert "a warning on stderr" in outcome.stderr
    assert [e["event"] for e in outcome.events][0] == "start"
    assert outcome.events[-1]["event"] == "end"


def test_engine_error_becomes_its_one_line_message(fake_env):
    errors = []
    outcome = run_engine(sys.executable, "fail", extra_env=fake_env, on_error=errors.append)
    assert not outcome.ok and not outcome.cancelled
    assert outcome.exit_code == 2
    assert outcome.message == "/x/in.tif: no Sentinel-2 bands found. Pass --band-order."
    assert errors[0]["fix"] == "pass --band-order"


def test_environment_reaches_the_engine_sanitised(fake_env, monkeypatch):
    monkeypatch.setenv("PROJ_LIB", "/qgis/share/proj")
    monkeypatch.setenv("GDAL_DATA", "/qgis/share/gdal")
    monkeypatch.setenv("QGIS_PREFIX_PATH", "/usr")
    monkeypatch.setenv("SPARSEVIT_TEST_KEEP", "kept")
    outcome = run_engine(sys.executable, "env",
                         ["PROJ_LIB", "GDAL_DATA", "QGIS_PREFIX_PATH", "SPARSEVIT_TEST_KEEP"],
                         extra_env=fake_env)
    assert outcome.ok, outcome.message
    assert outcome.result["env"] == {"PROJ_LIB": None, "GDAL_DATA": None,
                                     "QGIS_PREFIX_PATH": None, "SPARSEVIT_TEST_KEEP": "kept"}


def _cancel_after_first_progress(command, fake_env):
    started = threading.Event()
    runner = EngineRunner(sys.executable, command, extra_env=fake_env,
                          on_progress=lambda *a: started.set())
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("o", runner.run()))
    thread.start()
    assert started.wait(20), "the engine never reported progress"
    t0 = time.monotonic()
    runner.cancel()
    thread.join(10)
    return box["o"], time.monotonic() - t0


def test_cancel_stops_a_cooperative_engine_quickly(fake_env):
    outcome, elapsed = _cancel_after_first_progress("sleep", fake_env)
    assert outcome.cancelled and not outcome.ok
    assert elapsed < 3.0
    assert outcome.exit_code == 130
    assert "cancelled" in outcome.message.lower()


def test_cancel_kills_an_engine_that_ignores_it(fake_env):
    outcome, elapsed = _cancel_after_first_progress("stubborn", fake_env)
    assert outcome.cancelled
    assert elapsed < 3.0
    assert outcome.exit_code < 0  # killed by a signal


def test_should_cancel_is_polled(fake_env):
    t0 = time.monotonic()
    outcome = run_engine(sys.executable, "sleep", extra_env=fake_env,
                         should_cancel=lambda: time.monotonic() - t0 > 0.5)
    assert outcome.cancelled
    assert time.monotonic() - t0 < 4.0


def test_missing_interpreter_is_reported_not_raised(tmp_path):
    outcome = run_engine(str(tmp_path / "no-python"), "info")
    assert not outcome.ok
    assert "Cannot start the SparseViT engine" in outcome.message
    assert "\n" not in outcome.message


def test_real_engine_info_on_the_sample_scene(real_engine):
    python, sample = real_engine
    outcome = run_engine(str(python), "info", [str(sample)])
    assert outcome.ok, outcome.message + outcome.stderr
    product = outcome.result["products"][0]
    assert product["kind"] == "S2"
    assert {"B02", "B03", "B04", "B08"} <= set(product["bands"])
    assert [e["event"] for e in outcome.events][0] == "start"


def test_missing_engine_command_is_explained(real_engine):
    python, _ = real_engine
    outcome = run_engine(str(python), "no-such-command", ["x"])
    assert not outcome.ok
    assert outcome.message.startswith("The installed SparseViT engine has no 'no-such-command' command")

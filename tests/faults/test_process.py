"""The engine as a process: killed, terminated, cancelled at each stage, run twice at once,
started with a missing interpreter, training interrupted and resumed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import rasterio
from fixtures.cli_runs import ERROR_LINE, assert_clean_error, run_cli, snapshot, write_s2

REPO = Path(__file__).resolve().parents[2]
ARGS = ["--tile", "32", "--overlap", "4", "--batch-size", "1"]


def _engine(*argv):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "sparsevit", "--json", *map(str, argv)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_progress(proc):
    for line in proc.stdout:
        if '"event": "progress"' in line and '"stage": "predict"' in line:
            return True
    return False


@pytest.fixture
def big_s2(tmp_path):
    return write_s2(tmp_path / "s2.tif", size=192)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_engine_killed_mid_run(big_s2, tiny_bundle, out_dir, sig):
    (out_dir / "keep.txt").write_text("earlier work")
    proc = _engine("predict", big_s2, "--model", tiny_bundle, "--out", out_dir, *ARGS)
    assert _wait_for_progress(proc)
    proc.send_signal(sig)
    rest, err = proc.communicate(timeout=60)
    left = sorted(os.listdir(out_dir))
    visible = [p for p in left if not p.startswith(".")]
    assert visible == ["keep.txt"]
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        # Nothing can clean up after SIGKILL: only the hidden staging folder may remain.
        assert all(".s2.partial-" in p for p in left if p.startswith("."))
    else:
        assert proc.returncode == 130
        assert left == ["keep.txt"]
        assert ERROR_LINE.match(err.strip().splitlines()[-1]) and "cancelled" in err
        assert "Traceback" not in err
        assert json.loads(rest.strip().splitlines()[-1])["problem"].startswith("run cancelled")


@pytest.mark.parametrize("trigger", [("log", None), ("stage_start", "predict"), ("progress", "predict"),
                                     ("stage_start", "areas"), ("stage_start", "overview")],
                         ids=["after-reading", "predict-start", "predict-tiles", "stats", "overview"])
def test_cancel_at_each_stage(capsys, tmp_path, tiny_bundle, out_dir, monkeypatch, trigger):
    import sparsevit.cli as cli
    s2 = write_s2(tmp_path / "s2.tif")
    cancel = tmp_path / "cancel.flag"
    seen = []

    class CancelAt(cli.Progress):
        def emit(self, event, **f):
            seen.append((event, f.get("stage")))
            if (event, f.get("stage")) == trigger:
                cancel.write_text("stop")
            super().emit(event, **f)
    monkeypatch.setattr(cli, "Progress", CancelAt)
    (out_dir / "s2_landcover.tif").write_bytes(b"older map")
    code, _, err = run_cli(capsys, ["--json", "--cancel-file", str(cancel), "predict", str(s2),
                                    "--model", str(tiny_bundle), "--out", str(out_dir), "--overwrite",
                                    *ARGS])
    assert trigger in seen
    assert "cancelled" in assert_clean_error(code, err, "predict", exit_code=130)
    assert snapshot(out_dir) == {"s2_landcover.tif": b"older map"}


def test_two_jobs_at_once_same_names(tmp_path, tiny_bundle, out_dir):
    s2 = write_s2(tmp_path / "s2.tif", size=96)
    procs = [_engine("predict", s2, "--model", tiny_bundle, "--out", out_dir, "--no-overview", *ARGS)
             for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    codes = sorted(c for c, _ in results)
    assert codes[0] == 0, results
    for code, err in results:
        if code != 0:  # the later one: refused clearly, before or at commit
            assert code == 3 and "already exist" in err and "Traceback" not in err, err
    assert not [p for p in os.listdir(out_dir) if p.startswith(".")]
    with rasterio.open(out_dir / "s2_landcover.tif") as ds:
        assert ds.read(1).shape == (96, 96)


def test_engine_interpreter_missing(tmp_path):
    from sparsevit_qgis.core.engine_runner import EngineRunner
    missing = tmp_path / "no venv" / "bin" / "python"
    outcome = EngineRunner(str(missing), "info", ["x.tif"]).run()
    assert not outcome.ok and outcome.exit_code is None
    assert str(missing) in outcome.message and "Engine..." in outcome.message
    assert "\n" not in outcome.message


def test_interrupted_training_resumes(capsys, tmp_path, monkeypatch):
    import sparsevit.cli as cli
    out = tmp_path / "run"
    cancel = tmp_path / "cancel.flag"

    class CancelAfterEpoch1(cli.Progress):
        def log(self, message, level="info"):
            super().log(message, level)
            if message.startswith("epoch 1/2"):
                cancel.write_text("stop")
    monkeypatch.setattr(cli, "Progress", CancelAfterEpoch1)
    args = ["train", "--dataset", "eurosat-mosaic", "--data", str(REPO / "data" / "eurosat_ms"),
            "--out", str(out), "--epochs", "2", "--batch-size", "4", "--crop", "64",
            "--train-scenes", "4", "--val-scenes", "2"]
    code, _, err = run_cli(capsys, ["--json", "--cancel-file", str(cancel), *args])
    assert_clean_error(code, err, "train", exit_code=130)
    assert json.loads((out / "last.json").read_text())["training_state"]["epoch"] == 1
    assert not (out / "model.safetensors").exists()
    assert not [p for p in os.listdir(out) if ".part" in p]
    cancel.unlink()
    code, stdout, err = run_cli(capsys, ["--json", *args, "--resume", str(out / "last.safetensors")])
    assert code == 0, err
    epochs = [json.loads(ln)["message"] for ln in stdout.splitlines() if '"epoch ' in ln]
    assert [m.split(":")[0] for m in epochs] == ["epoch 2/2"]
    assert (out / "model.safetensors").exists()

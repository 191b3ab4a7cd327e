"""The engine installer: real venvs, real pip, offline from a local wheel folder."""
from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import pytest
from installer_fixtures import ENGINE_VERSION, fixture_sources, fixture_wheel_folder

from sparsevit_qgis.core import engine_installer as ei
from sparsevit_qgis.core.engine_locator import validate_interpreter, venv_python

BASE_PYTHON = getattr(sys, "_base_executable", None) or sys.executable
CPU = ei.Accelerator("cpu", "cpu", "no GPU")
CUDA = ei.Accelerator("cuda", "cu126", "Fake GPU")


@pytest.fixture
def sources(tmp_path):
    return fixture_sources(tmp_path / "plugin")


@pytest.fixture
def wheels(tmp_path):
    return fixture_wheel_folder(tmp_path / "wheels")


def _args(plan):
    return [" ".join(s.argv) for s in plan.steps]


def test_online_plan_takes_torch_from_the_cpu_index(tmp_path, sources):
    plan = ei.plan_install(tmp_path / "venv", build="auto", sources=sources, detected=CPU,
                           base_python=BASE_PYTHON)
    steps = _args(plan)
    assert plan.fresh and steps[0].endswith(f"-m venv {tmp_path / 'venv'}")
    assert "--index-url https://download.pytorch.org/whl/cpu torch==0.0.1" in steps[1]
    assert not any("--no-index" in s for s in steps)
    assert f"-r {sources.req_dir / 'engine.txt'}" in steps[2]
    assert "--no-deps" in steps[3] and str(sources.engine_src) in steps[4]


def test_auto_build_follows_the_gpu_and_cpu_overrides_it(tmp_path, sources):
    auto = ei.plan_install(tmp_path / "v", build="auto", sources=sources, detected=CUDA,
                           base_python=BASE_PYTHON)
    assert auto.torch_build == "cu126" and "whl/cu126" in _args(auto)[1]
    if sys.platform != "darwin":
        cpu = ei.plan_install(tmp_path / "v", build="cpu", sources=sources, detected=CUDA,
                              base_python=BASE_PYTHON)
        assert cpu.torch_build == "cpu" and "whl/cpu" in _args(cpu)[1]
    with pytest.raises(ei.InstallError, match="Unknown PyTorch build"):
        ei.plan_install(tmp_path / "v", build="rocm", sources=sources, detected=CPU)


def _fake_smi(folder: Path, cuda: str) -> None:
    folder.mkdir(exist_ok=True)
    smi = folder / "nvidia-smi"
    smi.write_text("#!/bin/sh\nif [ \"$1\" = \"--query-gpu=name\" ]; then echo 'NVIDIA Fake A100'; "
                   f"else echo '| NVIDIA-SMI 560.00   Driver Version: 560.00   CUDA Version: {cuda} |'; fi\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)


@pytest.mark.skipif(os.name == "nt" or sys.platform == "darwin", reason="POSIX nvidia-smi stand-in")
@pytest.mark.parametrize("cuda, kind, build", [("12.6", "cuda", "cu126"), ("13.0", "cuda", "cu128"),
                                               ("11.2", "cpu", "cpu"), (None, "cpu", "cpu")])
def test_detect_accelerator_reads_nvidia_smi(tmp_path, monkeypatch, cuda, kind, build):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if cuda:
        _fake_smi(bin_dir, cuda)
    monkeypatch.setenv("PATH", str(bin_dir))
    found = ei.detect_accelerator()
    assert (found.kind, found.torch_build) == (kind, build)
    if cuda:
        assert "NVIDIA Fake A100" in found.detail


def test_offline_install_from_a_wheel_folder_then_repair_then_remove(tmp_path, sources, wheels):
    venv = tmp_path / "profile" / "sparsevit" / "venv"
    plan = ei.plan_install(venv, wheel_folder=wheels, sources=sources, detected=CPU,
                           base_python=BASE_PYTHON)
    pip_steps = _args(plan)[1:]
    assert all(f"--isolated --no-index --find-links {wheels}" in s for s in pip_steps)
    assert _args(plan)[-1].endswith(f"sparsevit-{ENGINE_VERSION}-py3-none-any.whl")
    lines, progress = [], []
    outcome = ei.run_install(plan, on_line=lines.append, on_progress=progress.append)
    assert outcome.ok, outcome.message + "\n" + "\n".join(lines[-20:])
    assert outcome.version == ENGINE_VERSION and outcome.device == "torch 0.0.1: cpu"
    assert progress[-1] == pytest.approx(1.0) and progress == sorted(progress)
    assert any(line.startswith("[1/5] create the environment") for line in lines)
    assert validate_interpreter(str(venv_python(venv))).ok
    marker = ei.read_marker(venv)
    assert marker["engine_version"] == ENGINE_VERSION and marker["wheel_folder"] == str(wheels)
    # the venv's own sparsevit command finds the plugin's resources/ without SPARSEVIT_RESOURCES
    from sparsevit.paths import RESOURCES_POINTER
    from sparsevit_qgis.core.resources import resources_dir
    assert ei.RESOURCES_POINTER == RESOURCES_POINTER  # the name the engine reads
    assert (venv / ei.RESOURCES_POINTER).read_text(encoding="utf-8").strip() == str(resources_dir())
    assert Path(outcome.log_path).read_text().count("Successfully installed") >= 4

    repair = ei.plan_install(venv, wheel_folder=wheels, sources=sources, detected=CPU)
    assert not repair.fresh and "-m venv" not in _args(repair)[0]
    assert ei.run_install(repair).ok

    assert "Removed" in ei.remove_engine(venv)
    assert not venv.exists()


def test_failed_first_install_leaves_no_environment_and_says_what_is_missing(tmp_path, sources):
    wheels = fixture_wheel_folder(tmp_path / "wheels", skip=("sparsevit-fixture-dep",))
    venv = tmp_path / "venv"
    plan = ei.plan_install(venv, wheel_folder=wheels, sources=sources, detected=CPU,
                           base_python=BASE_PYTHON)
    outcome = ei.run_install(plan)
    assert not outcome.ok and not outcome.cancelled
    assert "install the engine's dependencies" in outcome.message
    assert str(wheels) in outcome.message and "make_wheelhouse" in outcome.message
    assert not venv.exists()
    log = Path(outcome.log_path).read_text()
    assert "sparsevit-fixture-dep" in log and "Removed the unfinished environment" in log


def test_failed_repair_keeps_the_working_environment(tmp_path, sources, wheels):
    venv = tmp_path / "venv"
    assert ei.run_install(ei.plan_install(venv, wheel_folder=wheels, sources=sources,
                                          detected=CPU, base_python=BASE_PYTHON)).ok
    empty = tmp_path / "empty"
    empty.mkdir()
    outcome = ei.run_install(ei.plan_install(venv, wheel_folder=empty, sources=sources, detected=CPU))
    assert not outcome.ok
    assert validate_interpreter(str(venv_python(venv))).ok


def test_cancel_stops_the_running_step_and_cleans_up(tmp_path, sources, wheels):
    venv = tmp_path / "venv"
    plan = ei.plan_install(venv, wheel_folder=wheels, sources=sources, detected=CPU,
                           base_python=BASE_PYTHON)
    # A step that would run for a minute: cancel must not wait for it.
    plan.steps.insert(1, ei.Step("slow", [BASE_PYTHON, "-c", "import time; print('slow', flush=True); time.sleep(60)"]))
    cancel_at = []

    def on_line(line):
        if line == "slow":
            cancel_at.append(time.monotonic())

    outcome = ei.run_install(plan, on_line=on_line, is_cancelled=lambda: bool(cancel_at))
    assert outcome.cancelled and not outcome.ok
    assert time.monotonic() - cancel_at[0] < 5
    assert not venv.exists()


def test_remove_refuses_a_folder_it_did_not_make(tmp_path):
    other = tmp_path / "my-own-venv"
    other.mkdir()
    (other / "pyvenv.cfg").write_text("home = /usr/bin\n")
    with pytest.raises(ei.InstallError, match="not made by the SparseViT installer"):
        ei.remove_engine(other)
    assert other.exists()


def test_missing_wheel_folder_is_a_clear_error(tmp_path, sources):
    with pytest.raises(ei.InstallError, match="does not exist"):
        ei.plan_install(tmp_path / "v", wheel_folder=tmp_path / "nope", sources=sources, detected=CPU)


def test_the_plugin_ships_what_the_installer_reads():
    found = ei.EngineSources.find()
    for name in ("torch.txt", "engine.txt", "nodeps.txt"):
        assert (found.req_dir / name).is_file()
    assert found.engine_version()

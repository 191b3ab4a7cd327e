"""Finding and validating the engine interpreter; the first-run message."""
from __future__ import annotations

import sys

from sparsevit_qgis.core import engine_locator


def test_validate_reads_the_engine_version(fake_python):
    info = engine_locator.validate_interpreter(str(fake_python))
    assert info.ok and info.version == "9.9.9"


def test_validate_rejects_a_python_without_the_engine(tmp_path):
    # Debian's python has no `sparsevit`: the message must say so, not crash
    info = engine_locator.validate_interpreter("/usr/bin/python3")
    assert not info.ok and "no working SparseViT engine" in info.message
    assert not engine_locator.validate_interpreter(str(tmp_path / "nope")).ok


def test_setting_is_the_only_candidate_when_set(engine_setting, fake_python, monkeypatch):
    monkeypatch.setenv("SPARSEVIT_PYTHON", "/somewhere/else/python")
    engine_setting.set_python_path(str(fake_python))
    assert engine_locator.candidates() == [(str(fake_python), "setting")]
    info = engine_locator.locate_engine()
    assert info.ok and info.source == "setting" and info.python == str(fake_python)


def test_env_var_then_checkout_then_profile(engine_setting, fake_python, monkeypatch, tmp_path):
    engine_setting.set_python_path(None)
    monkeypatch.setenv("SPARSEVIT_PYTHON", str(fake_python))
    profile = tmp_path / "profile" / "sparsevit" / "venv"
    (profile / "bin").mkdir(parents=True)
    (profile / "bin" / "python").write_text("")
    monkeypatch.setattr(engine_locator, "profile_venv_dir", lambda: profile)
    sources = [s for _, s in engine_locator.candidates()]
    assert sources[0] == "SPARSEVIT_PYTHON" and sources[-1] == "profile"
    assert engine_locator.locate_engine().source == "SPARSEVIT_PYTHON"


def test_never_uses_sys_executable(engine_setting, monkeypatch):
    engine_setting.set_python_path(None)
    monkeypatch.delenv("SPARSEVIT_PYTHON", raising=False)
    assert sys.executable not in [p for p, _ in engine_locator.candidates()
                                  if not p.endswith("/.venv/bin/python")]


def test_first_run_message_says_exactly_what_to_do(engine_setting, monkeypatch, tmp_path):
    engine_setting.set_python_path(None)
    monkeypatch.delenv("SPARSEVIT_PYTHON", raising=False)
    monkeypatch.setattr(engine_locator, "checkout_venv_dir", lambda: None)
    monkeypatch.setattr(engine_locator, "profile_venv_dir", lambda: tmp_path / "sparsevit" / "venv")
    info = engine_locator.locate_engine()
    assert not info.ok and info.python is None
    msg = info.message
    assert "not installed" in msg
    assert f'-m venv "{tmp_path / "sparsevit" / "venv"}"' in msg
    assert "pip install" in msg and "torch==2.13.0" in msg and "engine.txt" in msg
    assert "Engine..." in msg and "SPARSEVIT_PYTHON" in msg

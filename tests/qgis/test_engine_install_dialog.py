"""The Install engine dialog in a real QGIS: offline install from a local wheel folder, the
panel then finds the engine; repair; remove; cancel; a bad choice is refused with a reason."""
from __future__ import annotations

import sys
import time

import pytest
from conftest import wait_until
from installer_fixtures import ENGINE_VERSION, fixture_sources, fixture_wheel_folder

from sparsevit_qgis.core import engine_installer as ei
from sparsevit_qgis.core.engine_locator import venv_python

CPU = ei.Accelerator("cpu", "cpu", "no NVIDIA GPU found (test)")




@pytest.fixture
def dialog(tmp_path, qgis_iface):
    from sparsevit_qgis.gui.engine_install_dialog import EngineInstallDialog
    dlg = EngineInstallDialog(venv=tmp_path / "profile" / "sparsevit" / "venv",
                              sources=fixture_sources(tmp_path / "plugin"), detected=CPU)
    yield dlg
    if dlg.task is not None:
        dlg.task.cancel()
        wait_until(lambda: dlg.task is None, 30)
    dlg.deleteLater()


def _offline(dlg, folder):
    dlg.offline.setChecked(True)
    dlg.wheel_folder.setFilePath(str(folder))


def test_install_from_a_local_wheel_folder_repair_and_remove(dialog, tmp_path, monkeypatch):
    assert dialog.install_button.text() == "Install" and not dialog.remove_button.isEnabled()
    assert "Automatic: no NVIDIA GPU found (test)" == dialog.build.itemText(0)
    _offline(dialog, fixture_wheel_folder(tmp_path / "wheels"))
    changed = []
    dialog.engine_changed.connect(lambda: changed.append(1))
    task = dialog.install()
    assert task is not None and not dialog.install_button.isEnabled() and dialog.cancel_button.isEnabled()
    wait_until(lambda: dialog.outcome is not None)
    assert dialog.outcome.ok, dialog.log.toPlainText()[-3000:]
    assert dialog.progress.value() == 100 and changed
    log = dialog.log.toPlainText()
    assert "[1/5] create the environment" in log and f"Engine {ENGINE_VERSION} works" in log
    assert f"Installed: engine {ENGINE_VERSION}" in dialog.state_label.text()
    assert dialog.install_button.text() == "Repair" and dialog.remove_button.isEnabled()

    # the locator finds the new engine where the dialog put it (the profile venv)
    from sparsevit_qgis.core import engine_locator
    monkeypatch.setattr(engine_locator, "profile_venv_dir", lambda: dialog.venv)
    monkeypatch.setattr(engine_locator, "checkout_venv_dir", lambda: None)
    monkeypatch.delenv(engine_locator.ENV_VAR, raising=False)
    monkeypatch.setattr(engine_locator.settings, "python_path", lambda: "")
    info = engine_locator.locate_engine()
    assert info.ok and info.source == "profile" and info.version == ENGINE_VERSION

    dialog.install()  # repair: same environment, no new venv
    wait_until(lambda: dialog.task is None)
    assert dialog.outcome.ok and "create the environment" not in dialog.log.toPlainText()

    dialog.remove(confirm=False)
    assert not dialog.venv.exists()
    assert dialog.install_button.text() == "Install" and not dialog.remove_button.isEnabled()


def test_offline_without_a_folder_is_refused_with_a_reason(dialog):
    dialog.offline.setChecked(True)
    assert dialog.install() is None
    assert "Choose the local wheel folder" in dialog.state_label.text()
    assert not dialog.venv.exists()


def test_missing_package_in_the_folder_fails_clearly_and_leaves_nothing(dialog, tmp_path):
    _offline(dialog, fixture_wheel_folder(tmp_path / "wheels", skip=("torch",)))
    dialog.install()
    wait_until(lambda: dialog.outcome is not None)
    assert not dialog.outcome.ok
    assert "torch==0.0.1" in dialog.state_label.text() and "make_wheelhouse" in dialog.state_label.text()
    assert not venv_python(dialog.venv).exists()


def test_cancel_from_the_dialog_stops_within_a_second(dialog, tmp_path):
    _offline(dialog, fixture_wheel_folder(tmp_path / "wheels"))
    plan = dialog.plan()
    plan.steps.insert(1, ei.Step("slow", [getattr(sys, "_base_executable", sys.executable), "-c",
                                          "import time; print('slow', flush=True); time.sleep(60)"]))
    dialog.plan = lambda: plan
    dialog.install()
    wait_until(lambda: "slow" in dialog.log.toPlainText().splitlines())
    t0 = time.monotonic()
    dialog.cancel()
    wait_until(lambda: dialog.outcome is not None, 10)
    assert time.monotonic() - t0 < 1.5
    assert dialog.outcome.cancelled and not dialog.venv.exists()
    assert dialog.install_button.isEnabled()


def test_the_panel_offers_the_installer(new_dock, monkeypatch):
    dock = new_dock()
    assert dock.install_engine_button.isVisible() or dock.install_engine_button.isVisibleTo(dock)
    from sparsevit_qgis.gui import engine_install_dialog
    monkeypatch.setattr(engine_install_dialog.ei, "detect_accelerator", lambda: CPU)
    dlg = dock.open_engine_installer()
    try:
        assert dlg.isVisible() and dock.open_engine_installer() is dlg
    finally:
        dlg.close()

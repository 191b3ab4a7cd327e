"""Where the engine finds resources/: the variable, the installer's pointer file, a checkout."""
from pathlib import Path

from sparsevit.paths import RESOURCES_POINTER, locate_resources


def _resources(root: Path) -> Path:
    (root / "resources" / "schemes").mkdir(parents=True)
    return root / "resources"


def test_an_installed_engine_finds_the_plugin_resources_through_the_pointer(tmp_path):
    plugin_res = _resources(tmp_path / "plugin")
    venv = tmp_path / "venv"
    package = venv / "lib" / "python3.11" / "site-packages" / "sparsevit" / "paths.py"
    package.parent.mkdir(parents=True)
    package.touch()
    assert locate_resources(None, venv, package) is None  # a venv alone: nothing to walk up to
    (venv / RESOURCES_POINTER).write_text(f"{plugin_res}\n", encoding="utf-8")
    assert locate_resources(None, venv, package) == plugin_res
    assert locate_resources(str(tmp_path / "mine"), venv, package) == tmp_path / "mine"  # the variable wins


def test_a_stale_pointer_is_ignored_and_a_checkout_is_found_by_walking_up(tmp_path):
    checkout_res = _resources(tmp_path / "repo")
    package = tmp_path / "repo" / "engine" / "sparsevit" / "paths.py"
    package.parent.mkdir(parents=True)
    package.touch()
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    (prefix / RESOURCES_POINTER).write_text(str(tmp_path / "removed_plugin" / "resources"), encoding="utf-8")
    assert locate_resources(None, prefix, package) == checkout_res

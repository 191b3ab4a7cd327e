"""Find the Python interpreter of the SparseViT engine and check that it works.

``sys.executable`` inside QGIS is the QGIS binary (or QGIS's bundled Python with none of the
engine's packages), so the engine interpreter is always explicit. Search order:

1. the plugin setting ``sparsevit/engine/python`` (when set, it is the only candidate, so a
   wrong setting is reported rather than silently bypassed);
2. the environment variable ``SPARSEVIT_PYTHON``;
3. the ``.venv`` of the repository when the plugin runs from a checkout;
4. a venv in the QGIS profile folder: ``<profile>/sparsevit/venv``.

A candidate is valid when ``<python> -m sparsevit --version`` prints ``sparsevit <version>``.
"""
from __future__ import annotations

import os
import subprocess  # nosec B404 - runs the engine interpreter with a fixed argument list
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import settings
from .engine_runner import sanitized_environment

ENV_VAR = "SPARSEVIT_PYTHON"
PLUGIN_DIR = Path(__file__).resolve().parents[1]
VALIDATE_TIMEOUT = 120.0  # s: the first import of torch on a cold disk can be slow

_cache: dict[tuple[str, float], "EngineInfo"] = {}
_cache_lock = threading.Lock()


@dataclass
class EngineInfo:
    python: str | None
    ok: bool
    version: str | None = None
    source: str = ""          # "setting", "SPARSEVIT_PYTHON", "checkout", "profile"
    message: str = ""         # what went wrong / what to do, one paragraph
    tried: list[str] = field(default_factory=list)
    cancelled: bool = False  # the check was stopped by a cancel: no verdict on the engine


def venv_python(venv: Path) -> Path:
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def profile_venv_dir() -> Path | None:
    try:
        from qgis.core import QgsApplication
        base = QgsApplication.qgisSettingsDirPath()
    except Exception:  # outside QGIS (e.g. a plain script): no profile
        return None
    return Path(base) / "sparsevit" / "venv" if base else None


def checkout_venv_dir() -> Path | None:
    # A checkout keeps the plugin folder next to engine/ and .venv/ (possibly through a link
    # from the QGIS profile, hence resolve()).
    root = PLUGIN_DIR.parent
    if (root / "engine" / "sparsevit").is_dir():
        return root / ".venv"
    return None


def candidates() -> list[tuple[str, str]]:
    """(interpreter, source) pairs in search order; only the setting when it is set."""
    configured = settings.python_path()
    if configured:
        return [(configured, "setting")]
    found: list[tuple[str, str]] = []
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        found.append((env, ENV_VAR))
    for source, venv in (("checkout", checkout_venv_dir()), ("profile", profile_venv_dir())):
        if venv is not None:
            py = venv_python(venv)
            if py.exists():
                found.append((str(py), source))
    return found


def validate_interpreter(python: str, timeout: float = VALIDATE_TIMEOUT,
                         should_cancel=None) -> EngineInfo:
    """Run ``<python> -m sparsevit --version``; cached per interpreter file and mtime.

    ``should_cancel`` is polled while the interpreter imports the engine (seconds on a cold
    disk): a run cancelled then stops at once instead of after the check."""
    path = Path(python)
    if not path.is_file():
        return EngineInfo(python, False, message=f"{python}: no such interpreter file.")
    key = (str(path), path.stat().st_mtime)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    kwargs = {}
    if os.name == "nt":
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    try:
        proc = subprocess.Popen(  # nosec B603 - fixed arguments, no shell
            [str(path), "-m", "sparsevit", "--version"], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
            errors="replace", env=sanitized_environment(), **kwargs)
    except OSError as exc:
        return EngineInfo(python, False, message=f"{python}: cannot run it ({exc}).")
    deadline = time.monotonic() + timeout
    while True:
        try:
            stdout, stderr = proc.communicate(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            cancelled = should_cancel is not None and should_cancel()
            if cancelled or time.monotonic() > deadline:
                proc.kill()
                proc.communicate()
                if cancelled:
                    return EngineInfo(python, False, cancelled=True, message="Cancelled.")
                return EngineInfo(python, False, message=(
                    f"{python}: 'python -m sparsevit --version' did not answer within {timeout:.0f} s."))
    out = (stdout + "\n" + stderr).strip()
    version = None
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "sparsevit":
            version = parts[1]
    if proc.returncode != 0 or version is None:
        last = out.splitlines()[-1] if out else f"exit code {proc.returncode}"
        info = EngineInfo(python, False, message=(
            f"{python}: this Python has no working SparseViT engine ({last})."))
    else:
        info = EngineInfo(python, True, version=version)
    with _cache_lock:
        _cache[key] = info
    return info


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def locate_engine(validate: bool = True, should_cancel=None) -> EngineInfo:
    """The first working engine interpreter, or ``ok=False`` with a message saying what to do."""
    tried: list[str] = []
    problems: list[str] = []
    for python, source in candidates():
        tried.append(python)
        if not validate:
            return EngineInfo(python, True, source=source, tried=tried)
        info = validate_interpreter(python, should_cancel=should_cancel)
        if info.cancelled:
            return info
        if info.ok:
            info.source, info.tried = source, tried
            return info
        problems.append(info.message)
        if source == "setting":
            return EngineInfo(python, False, source=source, tried=tried, message=(
                f"The SparseViT engine interpreter set in the plugin settings does not work: "
                f"{info.message} Choose another one in the SparseViT panel (Engine...) or clear "
                f"the setting to detect it automatically."))
    return EngineInfo(None, False, tried=tried,
                      message=first_run_message(problems))


def torch_requirement(req_dir: Path) -> str:
    """``torch==X.Y.Z`` from ``requirements/torch.txt`` (the one place torch is pinned)."""
    try:
        for line in (req_dir / "torch.txt").read_text(encoding="utf-8").splitlines():
            if line.strip().startswith("torch=="):
                return line.strip()
    except OSError:
        pass
    return "torch"


def first_run_message(problems: list[str] | None = None) -> str:
    """What a user without an engine reads: exactly the commands to run, with real paths."""
    venv = profile_venv_dir() or Path("<QGIS profile>") / "sparsevit" / "venv"
    py = venv_python(venv)
    engine_src = PLUGIN_DIR / "engine"
    if not (engine_src / "pyproject.toml").is_file():  # running from a checkout
        engine_src = PLUGIN_DIR.parent / "engine"
    req = engine_src / "requirements"
    if not req.is_dir():
        req = PLUGIN_DIR.parent / "requirements"
    python3 = "py -3" if os.name == "nt" else "python3"
    lines = [
        "The SparseViT engine is not installed yet. It runs in its own Python environment, "
        "outside QGIS, so that PyTorch never slows down or crashes QGIS. Press Install engine… "
        "in the SparseViT panel to install it (about 1.4 GB, from the internet or a local wheel "
        "folder), or create it yourself with these commands in a terminal (CPU build of PyTorch):",
        f"  {python3} -m venv \"{venv}\"",
        f"  \"{py}\" -m pip install {torch_requirement(req)} --index-url https://download.pytorch.org/whl/cpu",
        f"  \"{py}\" -m pip install -r \"{req / 'engine.txt'}\"",
        f"  \"{py}\" -m pip install --no-deps -r \"{req / 'nodeps.txt'}\"",
        f"  \"{py}\" -m pip install --no-deps \"{engine_src}\"",
        "Then press Engine... in the SparseViT panel and choose that python, or restart QGIS "
        "(the plugin finds this location by itself). An existing environment can be used "
        f"instead: choose its python, or set the {ENV_VAR} environment variable.",
    ]
    if problems:
        lines.append("Checked: " + " ".join(problems))
    return "\n".join(lines)


def engine_environment() -> dict[str, str]:
    """Variables the plugin sets for the engine: where the shared resources are.

    An engine pip-installed into its own venv cannot find ``resources/`` by walking up from
    its package, so the plugin tells it where its copy is (unless the user set one).
    """
    from .resources import resources_dir
    env: dict[str, str] = {}
    res = resources_dir()
    if res is not None and not os.environ.get("SPARSEVIT_RESOURCES"):
        env["SPARSEVIT_RESOURCES"] = str(res)
    return env


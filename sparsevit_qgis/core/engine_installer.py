"""Install, repair and remove the engine's own Python environment from inside QGIS.

The engine runs in a venv of its own (``<profile>/sparsevit/venv`` by default, where
:mod:`.engine_locator` finds it), so installing it means: create the venv, pip-install the
pinned PyTorch build that fits the machine (CPU or CUDA), the pinned engine dependencies and
the engine itself, then check that ``python -m sparsevit --version`` answers. Every step is an
argument list shown to the user and logged, so a failed install can be repeated in a terminal.

Offline machines install from a local wheel folder (``scripts/make_wheelhouse.sh`` fills one):
pip then runs with ``--no-index --find-links``, so nothing is downloaded.

A first install that fails or is cancelled removes the half-made venv (a broken venv would be
found by the locator and reported as a broken engine); a repair keeps it. Only folders this
module created (they hold :data:`MARKER`) are ever removed.
"""
from __future__ import annotations

import json
import os
import platform
import queue
import re
import shutil
import subprocess  # nosec B404 - runs python/pip/nvidia-smi with fixed argument lists
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .engine_locator import PLUGIN_DIR, clear_cache, torch_requirement, validate_interpreter, venv_python
from .engine_runner import sanitized_environment

MARKER = "sparsevit-install.json"
RESOURCES_POINTER = "sparsevit-resources.txt"  # read by the engine's sparsevit.paths
LOG_NAME = "install.log"
TORCH_INDEX = "https://download.pytorch.org/whl/{build}"
# CUDA builds published for the pinned torch, newest first, with the lowest driver CUDA version
# each needs (``nvidia-smi`` prints the driver's). Follow requirements/torch.txt when it moves.
CUDA_BUILDS = (("cu128", (12, 8)), ("cu126", (12, 6)), ("cu118", (11, 8)))
BUILDS = ("auto", "cpu", "cuda")
PIP_FLAGS = ["--disable-pip-version-check", "--no-input", "--progress-bar", "off"]


class InstallError(RuntimeError):
    """A problem found before any step runs (no base Python, bad wheel folder, ...)."""


@dataclass
class Accelerator:
    kind: str                 # "cuda", "mps" or "cpu"
    torch_build: str | None   # "cpu", "cu126", ... ; None: PyPI's default build (macOS)
    detail: str               # one line for the user


def _run_quiet(argv: list[str], timeout: float = 10.0) -> str | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,  # nosec B603
                              stdin=subprocess.DEVNULL, errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def detect_accelerator() -> Accelerator:
    """What PyTorch build fits this machine: CUDA when an NVIDIA driver answers, else CPU."""
    if sys.platform == "darwin":
        return Accelerator("mps", None, "macOS: PyTorch's standard build (Apple GPU through MPS)")
    smi = shutil.which("nvidia-smi")
    out = _run_quiet([smi]) if smi else None
    if out:
        match = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", out)
        names = _run_quiet([smi, "--query-gpu=name", "--format=csv,noheader"]) or ""
        gpu = names.strip().splitlines()[0].strip() if names.strip() else "NVIDIA GPU"
        if match:
            driver = (int(match.group(1)), int(match.group(2)))
            for build, needs in CUDA_BUILDS:
                if driver >= needs:
                    return Accelerator("cuda", build, f"{gpu}, driver CUDA {driver[0]}.{driver[1]}: "
                                                      f"PyTorch {build} build")
            return Accelerator("cpu", "cpu", f"{gpu}, but its driver (CUDA {driver[0]}.{driver[1]}) "
                                             "is older than any CUDA build of the pinned PyTorch: CPU build")
        return Accelerator("cuda", CUDA_BUILDS[0][0], f"{gpu}: PyTorch {CUDA_BUILDS[0][0]} build")
    return Accelerator("cpu", "cpu", "no NVIDIA GPU found (nvidia-smi): CPU build of PyTorch")


def resolve_build(build: str, detected: Accelerator | None = None) -> str | None:
    """The torch build to install for the user's choice (auto / cpu / cuda)."""
    if build not in BUILDS:
        raise InstallError(f"Unknown PyTorch build {build!r}: choose one of {', '.join(BUILDS)}.")
    if build == "cpu":
        return None if sys.platform == "darwin" else "cpu"
    detected = detected or detect_accelerator()
    if build == "cuda":
        return detected.torch_build if detected.kind == "cuda" else CUDA_BUILDS[0][0]
    return detected.torch_build


@dataclass
class EngineSources:
    """Where the plugin keeps the engine's source and its pinned requirements."""
    engine_src: Path
    req_dir: Path

    @classmethod
    def find(cls) -> "EngineSources":
        src = PLUGIN_DIR / "engine"                 # the plugin zip
        if not (src / "pyproject.toml").is_file():  # a checkout
            src = PLUGIN_DIR.parent / "engine"
        req = src / "requirements"
        if not req.is_dir():
            req = PLUGIN_DIR.parent / "requirements"
        return cls(src, req)

    def engine_version(self) -> str | None:
        init = self.engine_src / "sparsevit" / "__init__.py"
        try:
            match = re.search(r'__version__\s*=\s*["\']([^"\']+)', init.read_text(encoding="utf-8"))
        except OSError:
            return None
        return match.group(1) if match else None


def find_base_python() -> str:
    """A real Python (not the QGIS binary) of the same minor version family to make the venv."""
    names = ("python.exe",) if os.name == "nt" else (f"python{sys.version_info[0]}."
                                                     f"{sys.version_info[1]}", "python3", "python")
    found: list[Path] = []
    base_exe = getattr(sys, "_base_executable", "") or ""
    if base_exe and Path(base_exe).name.lower().startswith("python"):
        found.append(Path(base_exe))
    for prefix in {Path(sys.base_prefix), Path(sys.prefix)}:
        for name in names:
            found += [prefix / name, prefix / "bin" / name]
    for name in names:
        which = shutil.which(name)
        if which:
            found.append(Path(which))
    for path in found:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    raise InstallError(
        "No Python interpreter found to create the engine's environment (QGIS's own Python "
        "was not found next to QGIS, and there is no python3 on PATH). Install Python 3.10 or "
        "newer, or create the venv yourself and choose its python with Engine….")


@dataclass
class Step:
    label: str
    argv: list[str]
    weight: float = 1.0   # share of the progress bar


@dataclass
class InstallPlan:
    venv: Path
    steps: list[Step]
    torch_build: str | None
    wheel_folder: Path | None
    fresh: bool                     # the venv did not exist: remove it if the install fails
    sources: EngineSources
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [f"Engine environment: {self.venv}"]
        lines += self.notes
        lines += [f"  {i}. {s.label}: {subprocess.list2cmdline(s.argv)}"
                  for i, s in enumerate(self.steps, 1)]
        return "\n".join(lines)


def _requirement_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InstallError(f"{path}: cannot read the engine's pinned requirements ({exc}). "
                           "Reinstall the plugin.") from exc
    return [ln.split("#", 1)[0].strip() for ln in text.splitlines() if ln.split("#", 1)[0].strip()]


def plan_install(venv: Path, *, build: str = "auto", wheel_folder: Path | str | None = None,
                 base_python: str | None = None, sources: EngineSources | None = None,
                 detected: Accelerator | None = None) -> InstallPlan:
    """The steps that install (or repair) the engine into ``venv``; nothing runs yet."""
    venv = Path(venv)
    sources = sources or EngineSources.find()
    for name in ("torch.txt", "engine.txt", "nodeps.txt"):
        if not (sources.req_dir / name).is_file():
            raise InstallError(f"{sources.req_dir / name}: missing, so the engine's pinned "
                               "requirements are unknown. Reinstall the plugin.")
    folder = Path(wheel_folder) if wheel_folder else None
    if folder is not None and not folder.is_dir():
        raise InstallError(f"{folder}: the wheel folder does not exist. Choose the folder that "
                           "scripts/make_wheelhouse.sh filled, or install from the internet.")
    torch_build = resolve_build(build, detected)
    py = str(venv_python(venv))
    pip = [py, "-m", "pip", "install", *PIP_FLAGS]
    # Offline: --isolated too, so a pip.conf or PIP_* variable cannot add an index or another
    # wheel folder (online installs keep them: proxies and mirrors live there).
    source = ["--isolated", "--no-index", "--find-links", str(folder)] if folder else []
    notes = []
    steps: list[Step] = []
    fresh = not venv_python(venv).exists()
    if fresh:
        base = base_python or find_base_python()
        steps.append(Step("create the environment", [base, "-m", "venv", str(venv)], 1))
    torch_req = torch_requirement(sources.req_dir)
    if folder:
        notes.append(f"Offline: every package comes from {folder}.")
        steps.append(Step(f"install {torch_req} from the wheel folder", pip + source + [torch_req], 6))
    else:
        index = ["--index-url", TORCH_INDEX.format(build=torch_build)] if torch_build else []
        notes.append("PyTorch from " + (index[1] if index else "PyPI") + ", the rest from PyPI.")
        steps.append(Step(f"download and install {torch_req} ({torch_build or 'default'} build)",
                          pip + index + [torch_req], 6))
    steps.append(Step("install the engine's dependencies",
                      pip + source + ["-r", str(sources.req_dir / "engine.txt")], 3))
    steps.append(Step("install the engine's model libraries",
                      pip + source + ["--no-deps", "-r", str(sources.req_dir / "nodeps.txt")], 1))
    version = sources.engine_version()
    wheel = None
    if folder and version:
        wheel = next(iter(sorted(folder.glob(f"sparsevit-{version}-*.whl"))), None)
    if wheel is not None:
        steps.append(Step(f"install the engine {version}", pip + source + ["--no-deps", str(wheel)], 1))
    else:
        # --force-reinstall: a repair must replace an engine of another version or a broken one.
        steps.append(Step("install the engine", pip + source + ["--no-deps", "--force-reinstall",
                                                                 str(sources.engine_src)], 1))
    return InstallPlan(venv, steps, torch_build, folder, fresh, sources, notes)


@dataclass
class InstallOutcome:
    ok: bool
    cancelled: bool = False
    message: str = ""
    python: str | None = None
    version: str | None = None
    device: str | None = None
    log_path: str | None = None
    seconds: float = 0.0


def _log_path(venv: Path) -> Path:
    return venv.parent / LOG_NAME


def read_marker(venv: Path) -> dict | None:
    try:
        return json.loads((Path(venv) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def torch_device_line(python: str) -> str | None:
    """'torch 2.x: cuda (NVIDIA ...)' or 'torch 2.x: cpu', from the installed engine."""
    code = ("import torch; c = torch.cuda.is_available(); "
            "print(torch.__version__, 'cuda' if c else 'cpu', torch.cuda.get_device_name(0) if c else '')")
    out = _run_quiet([python, "-c", code], timeout=120)
    if not out:
        return None
    parts = out.strip().split(" ", 2)
    if len(parts) < 2:
        return None
    name = f" ({parts[2].strip()})" if len(parts) > 2 and parts[2].strip() else ""
    return f"torch {parts[0]}: {parts[1]}{name}"


def run_install(plan: InstallPlan, *, on_line: Callable[[str], None] | None = None,
                on_progress: Callable[[float], None] | None = None,
                is_cancelled: Callable[[], bool] | None = None) -> InstallOutcome:
    """Run the plan's steps one by one; the full output also goes to ``install.log``."""
    on_line = on_line or (lambda _l: None)
    on_progress = on_progress or (lambda _f: None)
    is_cancelled = is_cancelled or (lambda: False)
    start = time.monotonic()
    plan.venv.parent.mkdir(parents=True, exist_ok=True)
    log_path = _log_path(plan.venv)
    total = sum(s.weight for s in plan.steps) or 1.0
    done = 0.0
    outcome = InstallOutcome(False, log_path=str(log_path))
    with open(log_path, "w", encoding="utf-8") as log:
        def say(line: str) -> None:
            log.write(line + "\n")
            log.flush()
            on_line(line)

        say(plan.describe())
        for i, step in enumerate(plan.steps, 1):
            say(f"[{i}/{len(plan.steps)}] {step.label}")
            code, cancelled = _run_step(step.argv, say, is_cancelled)
            if cancelled:
                outcome = InstallOutcome(False, True, "Installation cancelled.", log_path=str(log_path))
                break
            if code != 0:
                outcome = InstallOutcome(False, message=_failure_message(plan, step, code, log_path),
                                         log_path=str(log_path))
                break
            done += step.weight
            on_progress(done / total)
        else:
            outcome = _verify(plan, say, log_path)
        if not outcome.ok and plan.fresh and plan.venv.exists():
            shutil.rmtree(plan.venv, ignore_errors=True)
            say(f"Removed the unfinished environment {plan.venv}.")
    outcome.seconds = time.monotonic() - start
    clear_cache()
    return outcome


def _failure_message(plan: InstallPlan, step: Step, code: int, log_path: Path) -> str:
    hint = ""
    if plan.fresh and step is plan.steps[0]:
        hint = (" On Debian/Ubuntu the python3-venv package provides the venv module "
                "(sudo apt install python3-venv).")
    elif plan.wheel_folder is not None:
        hint = (f" A package is probably missing from {plan.wheel_folder}: fill it with "
                "scripts/make_wheelhouse.sh for this platform and Python version.")
    else:
        hint = " Check the internet connection (or a proxy), or install from a local wheel folder."
    return f"Step '{step.label}' failed (exit code {code}); details in {log_path}.{hint}"


def _verify(plan: InstallPlan, say: Callable[[str], None], log_path: Path) -> InstallOutcome:
    python = str(venv_python(plan.venv))
    clear_cache()
    info = validate_interpreter(python)
    if not info.ok:
        return InstallOutcome(False, message=f"The packages installed, but the engine does not start: "
                                             f"{info.message} Details in {log_path}.",
                              log_path=str(log_path))
    device = torch_device_line(python)
    say(f"Engine {info.version} works: {python}" + (f"; {device}" if device else ""))
    marker = {"engine_version": info.version, "torch_build": plan.torch_build,
              "wheel_folder": str(plan.wheel_folder) if plan.wheel_folder else None,
              "device": device, "installed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "platform": platform.platform(), "steps": [asdict(s) for s in plan.steps]}
    (plan.venv / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
    _point_to_resources(plan.venv, say)
    return InstallOutcome(True, message=f"Engine {info.version} installed in {plan.venv}.",
                          python=python, version=info.version, device=device, log_path=str(log_path))


def _point_to_resources(venv: Path, say: Callable[[str], None]) -> None:
    """``<venv>/sparsevit-resources.txt`` names the plugin's resources/ (schemes, styles, the
    default model): the engine reads it (sparsevit.paths), so the venv's ``sparsevit`` works
    from a terminal without SPARSEVIT_RESOURCES."""
    from .resources import resources_dir
    res = resources_dir()
    if res is None:
        say("The plugin's resources/ folder was not found: set SPARSEVIT_RESOURCES for a terminal.")
        return
    (Path(venv) / RESOURCES_POINTER).write_text(str(res) + "\n", encoding="utf-8")


def _run_step(argv: list[str], say: Callable[[str], None],
              is_cancelled: Callable[[], bool]) -> tuple[int, bool]:
    """Run one command, forwarding its output line by line; kill it at once on cancel."""
    kwargs = {}
    if os.name == "nt":
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    env = sanitized_environment(extra={"PIP_NO_INPUT": "1"})
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,  # nosec B603
                                stdin=subprocess.DEVNULL, text=True, encoding="utf-8",
                                errors="replace", env=env, **kwargs)
    except OSError as exc:
        say(f"cannot run {argv[0]}: {exc}")
        return 127, False
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    ended = False
    while not ended:
        if is_cancelled():
            proc.kill()
            proc.wait()
            reader.join(timeout=2)
            return -9, True
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        if line is None:
            ended = True
        else:
            say(line)
    return proc.wait(), False


def remove_engine(venv: Path) -> str:
    """Delete an environment this installer made; refuse any other folder."""
    venv = Path(venv)
    if not venv.exists():
        return f"{venv}: nothing to remove."
    if not (venv / MARKER).is_file():
        raise InstallError(f"{venv} was not made by the SparseViT installer (no {MARKER}); "
                           "remove it yourself if you are sure.")
    shutil.rmtree(venv)
    clear_cache()
    return f"Removed {venv}."


def main(argv: list[str] | None = None) -> int:
    """The same install from a terminal (for administrators and for measuring it)."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m sparsevit_qgis.core.engine_installer",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", required=True, type=Path)
    ap.add_argument("--build", choices=BUILDS, default="auto")
    ap.add_argument("--wheels", type=Path, help="local wheel folder: install offline from it")
    ap.add_argument("--remove", action="store_true")
    args = ap.parse_args(argv)
    try:
        if args.remove:
            print(remove_engine(args.venv))
            return 0
        plan = plan_install(args.venv, build=args.build, wheel_folder=args.wheels)
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    outcome = run_install(plan, on_line=print)
    print(f"{'OK' if outcome.ok else 'FAILED'} in {outcome.seconds:.0f} s: {outcome.message}")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())

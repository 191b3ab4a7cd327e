"""Which device the engine will compute on, known before a run.

The engine says where a run computes in its ``start`` event (docs/protocol.md), which arrives
only once a run has begun. To show it before, the panel asks the engine's interpreter once (in a
:class:`DeviceProbeTask`, never on the main thread: importing torch takes seconds) what its
torch sees: ``python -c PROBE_CODE`` prints one JSON object. The plugin itself never imports
torch. The answer is cached per interpreter for the session (:func:`cached_probe`).

:func:`planned_device` turns an answer and the chosen device/threads into the text the panel
shows, the way the engine would resolve them (``engine/sparsevit/devices.py``).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess  # nosec B404 - runs the engine interpreter with a fixed argument list
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from qgis.core import QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from .engine_runner import sanitized_environment
from .predict_job import DEVICE_AUTO, JobError, normalize_device

# Run by the engine's interpreter; prints what resolve_device()/describe_device() will see.
PROBE_CODE = (
    "import json, os, torch; "
    "print(json.dumps({'cuda': torch.cuda.is_available(), "
    "'devices': [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())], "
    "'threads': torch.get_num_threads(), 'cpus': os.cpu_count()}), flush=True)"
)
PROBE_TIMEOUT = 120.0  # s: the first import of torch on a cold disk can be slow

_cache: dict[str, "DeviceProbe"] = {}
_cache_lock = threading.Lock()
_running: set = set()  # probe tasks alive until finished (QGIS owns the C++ side only)


@dataclass
class DeviceProbe:
    """What the engine interpreter's torch sees; ``ok=False`` with ``message`` when it could not
    be asked (no interpreter, no torch, a crash, a timeout)."""

    python: str | None
    ok: bool
    cuda: bool = False
    devices: list[str] = field(default_factory=list)  # CUDA device names, index = N of cuda:N
    threads: int | None = None                         # torch's default CPU threads
    cpus: int | None = None
    message: str = ""
    final: bool = True  # False for a cancel or a timeout: not cached, asked again next time

    @classmethod
    def failed(cls, python: str | None, message: str, final: bool = True) -> "DeviceProbe":
        return cls(python, False, message=message, final=final)


def parse_probe_output(python: str, stdout: str) -> DeviceProbe | None:
    """The probe's answer from its stdout (the last JSON object with a ``cuda`` key)."""
    for line in reversed((stdout or "").splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if not isinstance(data, dict) or "cuda" not in data:
            continue
        devices = [str(d) for d in data.get("devices") or []]
        threads = data.get("threads")
        cpus = data.get("cpus")
        return DeviceProbe(python, True, cuda=bool(data.get("cuda")) and bool(devices),
                           devices=devices,
                           threads=int(threads) if isinstance(threads, int) and threads > 0 else None,
                           cpus=int(cpus) if isinstance(cpus, int) and cpus > 0 else None)
    return None


def run_probe(python: str, timeout: float = PROBE_TIMEOUT,
              should_cancel: Callable[[], bool] | None = None,
              extra_env: dict | None = None) -> DeviceProbe:
    """Ask ``python`` what its torch sees (blocking: call it off the main thread)."""
    if not python or not Path(python).is_file():
        return DeviceProbe.failed(python, f"{python or 'no interpreter'}: no such interpreter file.")
    kwargs = {}
    if os.name == "nt":
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    else:
        kwargs["start_new_session"] = True  # own process group: a kill reaches its children too
    try:
        proc = subprocess.Popen(  # nosec B603 - fixed arguments, no shell
            [str(python), "-c", PROBE_CODE], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace",
            env=sanitized_environment(extra=extra_env), **kwargs)
    except OSError as exc:
        return DeviceProbe.failed(python, f"{python}: cannot run it ({exc}).")
    t0 = time.monotonic()
    while True:
        try:
            stdout, stderr = proc.communicate(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            late = time.monotonic() - t0 > timeout
            if late or (should_cancel is not None and should_cancel()):
                _kill(proc)
                return DeviceProbe.failed(python, (
                    f"{python}: did not answer within {timeout:.0f} s." if late
                    else "the device check was cancelled."), final=False)
    probe = parse_probe_output(python, stdout) if proc.returncode == 0 else None
    if probe is None:
        lines = [ln.strip() for ln in (stderr or stdout or "").splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit code {proc.returncode}"
        return DeviceProbe.failed(python, f"{python}: cannot ask its torch for the device ({last}).")
    return probe


def _kill(proc: subprocess.Popen) -> None:
    try:
        if os.name != "nt":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except OSError:
        pass
    try:
        proc.communicate(timeout=2.0)
    except (subprocess.TimeoutExpired, OSError, ValueError):
        pass


def cached_probe(python: str | None) -> DeviceProbe | None:
    with _cache_lock:
        return _cache.get(str(python)) if python else None


def remember_probe(probe: DeviceProbe) -> None:
    if probe.python and probe.final:
        with _cache_lock:
            _cache[str(probe.python)] = probe


def clear_probe_cache() -> None:
    with _cache_lock:
        _cache.clear()


class DeviceProbeTask(QgsTask):
    """Runs :func:`run_probe` on a worker thread; ``probed(DeviceProbe)`` on the main thread."""

    probed = pyqtSignal(object)

    def __init__(self, python: str, extra_env: dict | None = None, timeout: float = PROBE_TIMEOUT):
        # Silent (QGIS >= 3.26): no desktop notification when it ends
        flags = QgsTask.CanCancel
        if hasattr(QgsTask, "Silent"):
            flags |= QgsTask.Silent
        super().__init__("SparseViT: which device the engine uses", flags)
        self.python = python
        self.extra_env = extra_env
        self.timeout = timeout
        self.probe: DeviceProbe | None = None
        _running.add(self)

    def run(self) -> bool:
        try:
            self.probe = run_probe(self.python, self.timeout, should_cancel=self.isCanceled,
                                   extra_env=self.extra_env)
        except Exception as exc:  # run() must never raise  # noqa: BLE001
            self.probe = DeviceProbe.failed(self.python, f"internal plugin error: {exc!r}")
        remember_probe(self.probe)
        return self.probe.ok

    def finished(self, result: bool) -> None:
        _running.discard(self)
        probe = self.probe or DeviceProbe.failed(self.python, "the device check was cancelled.",
                                                 final=False)
        self.probed.emit(probe)


def device_index(device: str) -> int | None:
    """N of ``cuda:N``; 0 for ``cuda``; None for the others."""
    if device == "cuda":
        return 0
    if device.startswith("cuda:"):
        return int(device.split(":", 1)[1])
    return None


def planned_device(probe: DeviceProbe, device: str = DEVICE_AUTO, threads: int = 0) -> tuple[str, bool]:
    """``(text, ok)`` for the device a run with ``device``/``threads`` will use, as the engine's
    ``describe_device`` words it: ``"CPU (4 threads)"``, ``"GPU (NVIDIA H200)"``. ``ok`` is
    False when the chosen device does not exist (the run would fail)."""
    try:
        device = normalize_device(device)
    except JobError:
        return f"unknown device '{device}'", False
    cpu = f"CPU ({int(threads) if threads else (probe.threads or '?')} threads)"
    if device == "cpu" or (device == DEVICE_AUTO and not probe.cuda):
        return cpu, True
    index = device_index(device) if device != DEVICE_AUTO else 0
    if not probe.cuda:
        return f"{device} chosen, but the engine's torch sees no GPU", False
    if index is None or index >= len(probe.devices):
        return f"{device} chosen, but the engine has {len(probe.devices)} GPU(s)", False
    return f"GPU ({probe.devices[index]})", True

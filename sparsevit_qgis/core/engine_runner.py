"""Run one ``sparsevit`` engine command in its own process and read its JSON-lines events.

The engine never runs inside QGIS: importing torch there blocks the UI for seconds, mixes
QGIS's GDAL with the wheel's, and an engine crash would take QGIS down. This module therefore
needs nothing but the standard library, so it works the same from a QgsTask, a Processing
algorithm or a plain test. Protocol (``docs/protocol.md``, ``resources/protocol.json``): one
JSON object per stdout line with an ``event`` key: ``start``, ``stage_start``, ``progress``,
``stage_end``, ``log``, ``result``, ``error``, ``end``. An engine that speaks another protocol
version is stopped at its ``start`` event with a message that says how to update it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess  # nosec B404 - the engine is a separate process by design; no shell is used
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from . import protocol

# Variables that point a Python or GDAL/PROJ at QGIS's own copies. Inherited by the engine they
# make the venv import QGIS's site-packages, or rasterio's PROJ read QGIS's proj.db of another
# version ("PROJ: proj_create: ... DATABASE.LAYOUT.VERSION" clashes seen in other plugins).
STRIPPED_ENV_VARS = frozenset({
    "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "PYTHONUSERBASE",
    "PROJ_LIB", "PROJ_DATA", "PROJ_NETWORK", "PROJ_CURL_CA_BUNDLE",
    "GDAL_DATA", "GDAL_DRIVER_PATH", "GDAL_PLUGINS", "GDAL_FILENAME_IS_UTF8",
    "CPL_ZIP_ENCODING", "GEOTIFF_CSV",
    "QT_PLUGIN_PATH", "QT_QPA_PLATFORM_PLUGIN_PATH", "QML2_IMPORT_PATH",
    "OSGEO4W_ROOT", "O4W_QT_PREFIX", "O4W_QT_BINARIES", "O4W_QT_PLUGINS",
    "O4W_QT_LIBRARIES", "O4W_QT_TRANSLATIONS", "O4W_QT_HEADERS", "O4W_QT_DOC",
})
STRIPPED_ENV_PREFIXES = ("QGIS_", "PYQGIS_")

# a cancel must end the run within 1 s (measured: benchmarks/bench_engine_start.py); the engine
# reads the cancel file between batches, and a batch or the PyTorch import can take longer
DEFAULT_TERMINATE_AFTER = 0.3  # s after the cancel file: time for a clean stop
DEFAULT_KILL_AFTER = 0.8       # s after the cancel file: hard stop, the engine must be gone


def sanitized_environment(base: Mapping[str, str] | None = None,
                          extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the engine: QGIS's Python/GDAL/PROJ pointers removed.

    ``extra`` is applied last, so a caller may deliberately set one of the stripped names.
    """
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if k.upper() not in STRIPPED_ENV_VARS
           and not k.upper().startswith(STRIPPED_ENV_PREFIXES)}
    # Events must arrive line by line and survive non-ASCII paths on any locale.
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUTF8"] = "1"
    if extra:
        env.update({str(k): str(v) for k, v in extra.items()})
    return env


def build_command(python: str, command: str, args: Iterable[Any] = (),
                  cancel_file: str | None = None) -> list[str]:
    cmd = [str(python), "-m", "sparsevit", "--json"]
    if cancel_file:
        cmd += ["--cancel-file", str(cancel_file)]
    cmd.append(command)
    cmd += [str(a) for a in args]
    return cmd


@dataclass
class EngineOutcome:
    """Everything one engine run produced. ``ok`` is True only for exit code 0 without error."""

    command: list[str]
    exit_code: int | None = None
    cancelled: bool = False
    start: dict | None = None           # the ``start`` event: command, protocol, device, ...
    result: dict | None = None          # fields of the last ``result`` event merged
    results: list[dict] = field(default_factory=list)
    error: dict | None = None           # the ``error`` event: problem, path, fix, message
    events: list[dict] = field(default_factory=list)
    other_stdout: list[str] = field(default_factory=list)  # stdout lines that were not JSON
    stderr: str = ""
    elapsed: float = 0.0
    launch_error: str | None = None     # the process could not be started at all

    protocol_error: str | None = None   # the engine speaks another protocol version

    @property
    def ok(self) -> bool:
        return (self.launch_error is None and self.protocol_error is None and not self.cancelled
                and self.error is None and self.exit_code == 0)

    @property
    def device(self) -> tuple[str | None, str | None]:
        """``(device, device_name)`` from the ``start`` event, e.g. ``("cpu", "CPU (2 threads)")``."""
        start = self.start or {}
        return start.get("device"), start.get("device_name")

    def _flag_values(self) -> set[str]:
        return {self.command[i + 1] for i, a in enumerate(self.command[:-1]) if a == "--cancel-file"}

    @property
    def message(self) -> str:
        """One line for the user: the engine's own message when it sent one."""
        if self.ok:
            return ""
        if self.protocol_error:
            return self.protocol_error
        if self.cancelled:
            return "Run cancelled; no output was written."
        if self.launch_error:
            return self.launch_error
        if self.error and self.error.get("message"):
            return " ".join(str(self.error["message"]).split())
        tail = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
        if self.exit_code == 2 and not self.events and "invalid choice" in self.stderr:
            # argparse of an older engine that lacks this command
            sub = next((a for a in self.command[self.command.index("--json") + 1:]
                        if not a.startswith("-") and a not in self._flag_values()), "?")
            return (f"The installed SparseViT engine has no '{sub}' command. Update the engine: "
                    "install the engine shipped with this plugin version into its environment.")
        if tail:
            return f"The engine stopped with exit code {self.exit_code}: {tail[-1]}"
        return f"The engine stopped with exit code {self.exit_code} without a message."


ProgressCallback = Callable[[str, "float | None", "int | None", "int | None"], None]


class EngineRunner:
    """One engine run. ``run()`` blocks until the process ends and never raises.

    Callbacks are called in the thread that calls ``run()``:
    ``on_event(event_dict)`` for every event, ``on_progress(stage, fraction, done, total)``
    (fraction ``None`` when the engine does not know the total), ``on_stage(stage, started)``,
    ``on_log(level, message)`` (non-JSON stdout arrives as level ``"stdout"``),
    ``on_result(fields)``, ``on_error(fields)``. ``cancel()`` may be called from any thread.
    """

    def __init__(self, python: str, command: str, args: Iterable[Any] = (), *,
                 on_event: Callable[[dict], None] | None = None,
                 on_progress: ProgressCallback | None = None,
                 on_stage: Callable[[str, bool], None] | None = None,
                 on_log: Callable[[str, str], None] | None = None,
                 on_result: Callable[[dict], None] | None = None,
                 on_error: Callable[[dict], None] | None = None,
                 extra_env: Mapping[str, str] | None = None,
                 cwd: str | None = None,
                 terminate_after: float = DEFAULT_TERMINATE_AFTER,
                 kill_after: float = DEFAULT_KILL_AFTER):
        self.python = str(python)
        self.command = command
        self.args = [str(a) for a in args]
        self.on_event, self.on_progress, self.on_stage = on_event, on_progress, on_stage
        self.on_log, self.on_result, self.on_error = on_log, on_result, on_error
        self.extra_env = dict(extra_env or {})
        self.cwd = cwd
        self.terminate_after = terminate_after
        self.kill_after = max(kill_after, terminate_after)
        self._proc: subprocess.Popen | None = None
        self._cancel_file: str | None = None
        self._cancel_requested = threading.Event()
        self._finished = threading.Event()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the engine to stop: cancel file now, SIGTERM shortly after, kill after that."""
        if self._cancel_requested.is_set():
            return
        self._cancel_requested.set()
        with self._lock:
            cancel_file = self._cancel_file
        if cancel_file:
            try:
                with open(cancel_file, "w", encoding="utf-8") as fh:
                    fh.write("cancel\n")
            except OSError:
                pass  # SIGTERM below still stops it
        threading.Thread(target=self._escalate, name="sparsevit-cancel", daemon=True).start()

    def _escalate(self) -> None:
        t0 = time.monotonic()
        if self._finished.wait(self.terminate_after):
            return
        self._signal(terminate=True)
        if self._finished.wait(max(0.0, self.kill_after - (time.monotonic() - t0))):
            return
        self._signal(terminate=False)

    def _signal(self, terminate: bool) -> None:
        with self._lock:
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            if os.name == "posix":
                # The engine may have worker processes (data loaders): stop the whole group.
                os.killpg(proc.pid, signal.SIGTERM if terminate else signal.SIGKILL)
            elif terminate:
                proc.terminate()
            else:
                proc.kill()
        except (ProcessLookupError, PermissionError, OSError):
            pass

    # ------------------------------------------------------------------------------------
    def run(self, should_cancel: Callable[[], bool] | None = None,
            poll_interval: float = 0.1) -> EngineOutcome:
        """Start the engine, dispatch its events, wait for it. ``should_cancel`` is polled
        (e.g. ``QgsTask.isCanceled`` or ``QgsFeedback.isCanceled``) and triggers ``cancel()``."""
        t0 = time.monotonic()
        fd, cancel_file = tempfile.mkstemp(prefix="sparsevit-cancel-", suffix=".flag")
        os.close(fd)
        os.remove(cancel_file)  # the engine cancels when the file EXISTS
        with self._lock:
            self._cancel_file = cancel_file
        cmd = build_command(self.python, self.command, self.args, cancel_file)
        outcome = EngineOutcome(command=cmd)
        try:
            if self._cancel_requested.is_set():
                outcome.cancelled = True
                return outcome
            try:
                proc = self._start(cmd)
            except (OSError, ValueError) as exc:
                outcome.launch_error = (
                    f"Cannot start the SparseViT engine with {self.python!r}: {exc}. "
                    "Choose the engine's Python interpreter in the SparseViT panel (Engine...).")
                return outcome
            with self._lock:
                self._proc = proc
            if self._cancel_requested.is_set():
                # cancel() came while the process was being created: its escalation saw no
                # process, so escalate again now that there is one.
                threading.Thread(target=self._escalate, daemon=True).start()
            stderr_lines: list[str] = []
            err_thread = threading.Thread(target=self._drain, args=(proc.stderr, stderr_lines),
                                          name="sparsevit-stderr", daemon=True)
            err_thread.start()
            watcher = None
            if should_cancel is not None:
                watcher = threading.Thread(target=self._watch, args=(should_cancel, poll_interval),
                                           name="sparsevit-watch", daemon=True)
                watcher.start()
            try:
                for line in proc.stdout:
                    self._handle_line(line, outcome)
            finally:
                proc.stdout.close()
                outcome.exit_code = proc.wait()
                self._finished.set()
                err_thread.join(timeout=2)
                outcome.stderr = "".join(stderr_lines)
            finished_cleanly = outcome.exit_code == 0 and outcome.error is None
            # 130 is the engine's Cancelled/interrupted exit code; a run that completed just as
            # the user pressed Cancel keeps its results.
            if not finished_cleanly and outcome.protocol_error is None and (
                    self._cancel_requested.is_set() or outcome.exit_code == 130):
                outcome.cancelled = True
            return outcome
        finally:
            self._finished.set()
            outcome.elapsed = time.monotonic() - t0
            try:
                os.remove(cancel_file)
            except OSError:
                pass

    def _start(self, cmd: list[str]) -> subprocess.Popen:
        kwargs: dict[str, Any] = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True  # own process group, so cancel reaches workers
        else:
            # No console window flashing up on Windows; own group for CTRL_BREAK.
            kwargs["creationflags"] = (getattr(subprocess, "CREATE_NO_WINDOW", 0)
                                       | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0))
        return subprocess.Popen(  # nosec B603 - argument list, no shell, interpreter from settings
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=sanitized_environment(extra=self.extra_env), cwd=self.cwd,
            text=True, encoding="utf-8", errors="replace", bufsize=1, **kwargs)

    def _watch(self, should_cancel: Callable[[], bool], interval: float) -> None:
        while not self._finished.wait(interval):
            try:
                if should_cancel():
                    self.cancel()
                    return
            except Exception:  # a dead feedback object must not leave the engine running
                self.cancel()
                return

    @staticmethod
    def _drain(stream, sink: list[str]) -> None:
        try:
            for line in stream:
                sink.append(line)
        except (OSError, ValueError):
            pass
        finally:
            try:
                stream.close()
            except OSError:
                pass

    # ------------------------------------------------------------------------------------
    def _handle_line(self, line: str, outcome: EngineOutcome) -> None:
        text = line.strip()
        if not text:
            return
        event = None
        if text.startswith("{"):
            try:
                event = json.loads(text)
            except (ValueError, RecursionError):  # garbage, or nesting deeper than the stack
                event = None
        if not isinstance(event, dict) or "event" not in event:
            # Libraries sometimes print to stdout; keep it for the log, never fail on it.
            outcome.other_stdout.append(text)
            self._log("stdout", text)
            return
        outcome.events.append(event)
        self._call(self.on_event, event)
        kind = event.get("event")
        if kind == "start":
            outcome.start = {k: v for k, v in event.items() if k not in ("event", "time")}
            try:
                mismatch = protocol.mismatch_message(event.get("protocol"))
            except (RuntimeError, OSError, ValueError) as exc:  # no readable protocol.json
                mismatch = str(exc)
            if mismatch:
                outcome.protocol_error = mismatch
                self._log("error", mismatch)
                self.cancel()  # its events cannot be trusted to mean what this plugin reads
        elif kind == "progress":
            self._call(self.on_progress, str(event.get("stage") or ""),
                       _fraction(event.get("fraction")), event.get("done"), event.get("total"))
        elif kind == "stage_start":
            self._call(self.on_stage, str(event.get("stage") or ""), True)
            total = event.get("total")
            self._call(self.on_progress, str(event.get("stage") or ""),
                       0.0 if total else None, 0, total)
        elif kind == "stage_end":
            self._call(self.on_stage, str(event.get("stage") or ""), False)
        elif kind == "log":
            self._log(str(event.get("level") or "info"), str(event.get("message") or ""))
        elif kind == "result":
            fields = {k: v for k, v in event.items() if k not in ("event", "time")}
            outcome.results.append(fields)
            outcome.result = {**(outcome.result or {}), **fields}
            self._call(self.on_result, fields)
        elif kind == "error":
            fields = {k: v for k, v in event.items() if k not in ("event", "time")}
            outcome.error = fields
            self._call(self.on_error, fields)

    def _log(self, level: str, message: str) -> None:
        self._call(self.on_log, level, message)

    @staticmethod
    def _call(callback, *args) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception as exc:  # a broken callback must not orphan the engine process
            print(f"sparsevit: callback {callback!r} failed: {exc!r}", file=sys.stderr)


def run_engine(python: str, command: str, args: Iterable[Any] = (), **kwargs) -> EngineOutcome:
    """Convenience: ``EngineRunner(python, command, args, **callbacks).run()``."""
    should_cancel = kwargs.pop("should_cancel", None)
    return EngineRunner(python, command, args, **kwargs).run(should_cancel=should_cancel)


def _fraction(value) -> float | None:
    """A progress fraction in [0, 1], or None when the engine sent none or nonsense: a bad
    progress line must never stop a run's bookkeeping."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    if value != value:  # NaN
        return None
    return min(1.0, max(0.0, value))

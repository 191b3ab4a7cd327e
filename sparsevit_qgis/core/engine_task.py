"""A QgsTask that runs one engine command in the background.

run() happens on a worker thread: it touches no project, layer or widget, only the engine
process; events reach widgets through the ``engine_event`` signal (queued to the receiver's
thread) and the final :class:`EngineOutcome` through ``on_finished`` in ``finished()``, which QGIS
calls on the main thread, so that callback may add layers.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from qgis.core import QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from .engine_locator import engine_environment, locate_engine
from .engine_runner import EngineOutcome, EngineRunner


class EngineTask(QgsTask):
    #: every engine event dict, plus {"event": "log", ...} lines for stdout noise
    engine_event = pyqtSignal(object)

    def __init__(self, description: str, command: str, args: Iterable[Any] = (), *,
                 python: str | None = None,
                 on_finished: Callable[[EngineOutcome], None] | None = None,
                 extra_env: dict | None = None,
                 flags=QgsTask.CanCancel):
        super().__init__(description, flags)
        self.command = command
        self.args = [str(a) for a in args]
        self.python = python
        self.on_finished = on_finished
        self.extra_env = {**engine_environment(), **(extra_env or {})}
        self.outcome: EngineOutcome | None = None
        self._runner: EngineRunner | None = None

    def run(self) -> bool:
        try:
            python = self.python
            if not python:
                # Validation imports the engine (seconds): here, not on the main thread.
                info = locate_engine(should_cancel=self.isCanceled)
                if info.cancelled:
                    self.outcome = EngineOutcome(command=[], cancelled=True)
                    return False
                if not info.ok:
                    self.outcome = EngineOutcome(command=[], launch_error=info.message)
                    return False
                python = info.python
            self._runner = EngineRunner(
                python, self.command, self.args, extra_env=self.extra_env,
                on_event=self._forward, on_progress=self._progress,
                on_log=self._stdout_noise)
            if self.isCanceled():
                self._runner.cancel()
            self.outcome = self._runner.run(should_cancel=self.isCanceled)
            return self.outcome.ok
        except Exception as exc:  # run() must never raise: QGIS would only log "task failed"
            self.outcome = EngineOutcome(command=[], launch_error=f"Internal plugin error: {exc!r}")
            return False

    def cancel(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
        super().cancel()

    def finished(self, result: bool) -> None:
        outcome = self.outcome
        if outcome is None:  # cancelled before run() started
            outcome = EngineOutcome(command=[], cancelled=True)
            self.outcome = outcome
        if self.on_finished is not None:
            self.on_finished(outcome)

    # --- worker-thread callbacks -------------------------------------------------------
    def _progress(self, stage: str, fraction, done, total) -> None:
        if fraction is not None:
            self.setProgress(max(0.0, min(100.0, 100.0 * float(fraction))))

    def _forward(self, event: dict) -> None:
        self.engine_event.emit(dict(event))

    def _stdout_noise(self, level: str, message: str) -> None:
        # JSON log events are already forwarded by _forward; only non-JSON output is new here.
        if level == "stdout":
            self.engine_event.emit({"event": "log", "level": "debug", "message": message})

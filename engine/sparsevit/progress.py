"""Progress reporting: a terminal bar for people, JSON lines for the QGIS plugin.

Every long step takes a :class:`Progress` (or ``None`` for silence). With ``json_lines=True``
each event is one JSON object per line on stdout, e.g.
``{"event": "progress", "stage": "predict", "done": 12, "total": 40, "fraction": 0.3}``;
the plugin parses exactly these lines (the contract: ``docs/protocol.md``). Cancellation:
SIGINT/SIGTERM or the existence of a cancel file (``--cancel-file``) make
:meth:`Progress.check_cancelled` raise :class:`Cancelled`.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from contextlib import contextmanager
from typing import IO, Any, Iterator

from .errors import Cancelled


class Progress:
    def __init__(self, json_lines: bool = False, stream: IO[str] | None = None,
                 cancel_file: str | None = None, bar: bool | None = None):
        self.json_lines = json_lines
        self.stream = stream if stream is not None else sys.stdout
        self.cancel_file = cancel_file
        self._cancel_requested = False
        # A terminal bar only when a person is watching and no machine reads stdout.
        self.bar = (not json_lines and sys.stderr.isatty()) if bar is None else bar
        self._bars: dict[str, Any] = {}

    # --- events -------------------------------------------------------------------------
    def emit(self, event: str, **fields: Any) -> None:
        if not self.json_lines:
            return
        record = {"event": event, "time": round(time.time(), 3), **fields}
        self.stream.write(json.dumps(record, default=str) + "\n")
        self.stream.flush()

    def log(self, message: str, level: str = "info") -> None:
        if self.json_lines:
            self.emit("log", level=level, message=message)
        else:
            print(message, file=sys.stderr)

    def result(self, **fields: Any) -> None:
        self.emit("result", **fields)

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator["Stage"]:
        self.check_cancelled()
        self.emit("stage_start", stage=name, total=total)
        st = Stage(self, name, total)
        t0 = time.perf_counter()
        try:
            yield st
        finally:
            st.close()
        self.emit("stage_end", stage=name, seconds=round(time.perf_counter() - t0, 3))

    # --- cancellation -------------------------------------------------------------------
    def request_cancel(self, *_: Any) -> None:
        self._cancel_requested = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_cancel)
        signal.signal(signal.SIGINT, self.request_cancel)

    def cancelled(self) -> bool:
        if self._cancel_requested:
            return True
        return bool(self.cancel_file) and os.path.exists(self.cancel_file)

    def check_cancelled(self) -> None:
        if self.cancelled():
            raise Cancelled("run cancelled; no output was written",
                            fix="run again when ready")


class Stage:
    def __init__(self, progress: Progress, name: str, total: int | None):
        self.progress, self.name, self.total, self.done = progress, name, total, 0
        self._bar = None
        self._last_emit = 0.0
        if progress.bar:
            from tqdm import tqdm
            self._bar = tqdm(total=total, desc=name, unit="it", file=sys.stderr, leave=False)

    def advance(self, n: int = 1, **fields: Any) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        now = time.monotonic()
        # throttle JSON events to ~10/s; always send the last one
        if self.progress.json_lines and (now - self._last_emit > 0.1 or self.done == self.total):
            self._last_emit = now
            frac = (self.done / self.total) if self.total else None
            self.progress.emit("progress", stage=self.name, done=self.done, total=self.total,
                               fraction=None if frac is None else round(frac, 4), **fields)
        self.progress.check_cancelled()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def null_progress() -> Progress:
    return Progress(json_lines=False, bar=False)

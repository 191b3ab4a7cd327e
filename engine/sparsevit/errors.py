"""One error type for everything a user can fix: it names the file and what to do."""
from __future__ import annotations

from pathlib import Path


class SparseVitError(Exception):
    """A user-facing error. ``str(err)`` is one line: ``<path>: <problem>. <fix>``.

    The CLI prints it without a traceback and exits with ``exit_code``.
    """

    exit_code = 2

    def __init__(self, problem: str, path: str | Path | None = None, fix: str | None = None):
        self.problem = problem.rstrip(".")
        self.path = None if path is None else str(path)
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = f"{self.path}: {self.problem}" if self.path else self.problem
        if self.fix:
            text += f". {self.fix.rstrip('.')}."
        else:
            text += "."
        return " ".join(text.split())  # guarantees one line

    def to_dict(self) -> dict:
        return {"problem": self.problem, "path": self.path, "fix": self.fix, "message": self.one_line()}


class InputError(SparseVitError):
    """The input raster, dataset or model cannot be used."""


class OutputError(SparseVitError):
    """The output cannot be written."""

    exit_code = 3


class Cancelled(SparseVitError):
    """The run was cancelled (signal or cancel file); nothing was left half-written."""

    exit_code = 130

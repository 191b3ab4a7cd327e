"""Which device a command runs its model on, said once: in the ``start`` event (see
``docs/protocol.md``), the log and the run record, so the plugin never parses log text."""
from __future__ import annotations

from typing import Any


def check_threads(threads: int | None) -> None:
    """``--threads`` below 0 would reach torch as a crash; said as an input error instead."""
    if threads is not None and threads < 0:
        from .errors import InputError
        raise InputError(f"--threads must be 0 (torch's choice) or more, not {threads}", fix="e.g. --threads 4")


def resolve_device(requested: str | None = None):
    """``torch.device`` of ``requested`` ("cpu", "cuda", "cuda:1" ...); None or "auto": CUDA when
    available."""
    import torch

    if requested and requested != "auto":
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe_device(device, threads: int | None = None) -> str:
    import torch

    if device.type == "cuda":
        return f"GPU ({torch.cuda.get_device_name(device)})"
    return f"CPU ({threads or torch.get_num_threads()} threads)"


def device_fields(requested: str | None = None, threads: int | None = None) -> dict[str, Any]:
    """``{"device": "cpu" | "cuda" | "cuda:1" ..., "device_name": "CPU (2 threads)" ...}``."""
    device = resolve_device(requested)
    return {"device": str(device), "device_name": describe_device(device, threads)}

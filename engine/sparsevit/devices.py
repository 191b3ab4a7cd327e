"""Which device a command runs its model on, said once: in the ``start`` event (see
``docs/protocol.md``), the log and the run record, so the plugin never parses log text."""
from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

# CPU features with native bfloat16 matrix instructions (Linux /proc/cpuinfo flag names): on
# them bf16 matmuls run 4x the float32 peak (927 vs 222 GFLOP/s on a 2-core AVX512-BF16 EPYC)
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


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


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True where the CPU says it has bfloat16 matrix instructions. Without them PyTorch emulates
    bf16 (slower than float32), and where the flags cannot be read (macOS, Windows) the answer
    is False: float32, as before."""
    if platform.system() != "Linux":
        return False
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path(cpuinfo).read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        return False
    return any(f in flags for f in _BF16_FLAGS)


def auto_precision(device) -> str:
    """``predict --precision auto``: bf16 on GPUs and on CPUs with native bf16, else fp32."""
    return "bf16" if device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()) else "fp32"

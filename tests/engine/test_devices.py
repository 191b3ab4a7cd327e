"""Device and precision choice (engine/sparsevit/devices.py)."""
from __future__ import annotations

import platform

import pytest
import torch

from sparsevit import devices
from sparsevit.errors import InputError

FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f {extra}\nbogomips\t: 4000\n"


@pytest.fixture
def linux(monkeypatch):
    monkeypatch.setattr(platform, "system", lambda: "Linux")


def test_native_bf16_read_from_the_cpu_flags(tmp_path, linux):
    info = tmp_path / "cpuinfo"
    info.write_text(FLAGS.format(extra="avx512_bf16 avx512_vnni"))
    assert devices.cpu_has_native_bf16(info)
    info.write_text(FLAGS.format(extra="amx_bf16 amx_tile"))
    assert devices.cpu_has_native_bf16(info)
    # AVX-512 alone emulates bf16, slower than float32: not native
    info.write_text(FLAGS.format(extra="avx512bw"))
    assert not devices.cpu_has_native_bf16(info)
    assert not devices.cpu_has_native_bf16(tmp_path / "missing")


def test_no_cpuinfo_outside_linux_means_fp32(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text(FLAGS.format(extra="avx512_bf16"))
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    assert not devices.cpu_has_native_bf16(info)


def test_auto_precision(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    assert devices.auto_precision(torch.device("cpu")) == "bf16"
    assert devices.auto_precision(torch.device("cuda")) == "bf16"
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)
    assert devices.auto_precision(torch.device("cpu")) == "fp32"


def test_negative_threads_is_an_input_error():
    with pytest.raises(InputError):
        devices.check_threads(-1)
    devices.check_threads(0)

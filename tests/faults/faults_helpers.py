"""Tiny rasters and assertions shared by the fault cases."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from affine import Affine

from sparsevit.bands import S2_BANDS_NO_CIRRUS
from sparsevit.cli import main

from fixtures.rasters import UTM
from fixtures.rasters import write_raster as _write_raster
T10 = Affine(10, 0, 500000, 0, -10, 5000000)
# `sparsevit <cmd>: error: <path>: <problem>. <fix>.` -- the shape the plugin shows verbatim;
# a cancelled run names no file (`... error: run cancelled; no output was written. <fix>.`).
ERROR_LINE = re.compile(r"^sparsevit (\w+): error: (.+)\. (.+)\.$")


def write_raster(path, data, transform=T10, crs=UTM, nodata=None, descriptions=None, dtype=None):
    return _write_raster(path, data, transform, crs=crs, nodata=nodata, descriptions=descriptions,
                         dtype=dtype)


def s2_data(size=64, seed=0, bands=12):
    return np.random.default_rng(seed).integers(500, 3000, (bands, size, size)).astype("uint16")


def write_s2(path, size=64, transform=T10, crs=UTM, data=None, names=S2_BANDS_NO_CIRRUS, **kw):
    data = s2_data(size, bands=len(names)) if data is None else data
    return write_raster(path, data, transform, crs, descriptions=list(names), **kw)


def write_s1(path, size=64, transform=T10, crs=UTM):
    rng = np.random.default_rng(1)
    data = rng.uniform(-25, -5, (2, size, size)).astype("float32")
    return write_raster(path, data, transform, crs, descriptions=["VV", "VH"])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    out = {}
    for root, _dirs, files in os.walk(folder):
        for f in files:
            p = Path(root, f)
            out[str(p.relative_to(folder))] = p.read_bytes()
    return out


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def assert_clean_error(code: int, err: str, command: str, *must_name: str, exit_code: int | None = None):
    """Non-zero exit, exactly one stderr line of the documented shape, naming the file."""
    assert code != 0, err
    if exit_code is not None:
        assert code == exit_code, (code, err)
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    m = ERROR_LINE.match(lines[0])
    assert m, lines[0]
    assert m.group(1) == command, lines[0]
    for name in must_name:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]

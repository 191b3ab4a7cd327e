"""Fixtures for the plugin tests: a fake engine speaking the JSON-lines protocol, small rasters."""
from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the plugin package lives at the repository root
    sys.path.insert(0, str(REPO))

VENV_PYTHON = REPO / ".venv" / "bin" / "python"
SAMPLE_S2 = REPO / "resources" / "sample" / "Spain_7370579_S2Hand.tif"

FAKE_MAIN = textwrap.dedent('''
    """A stand-in for ``python -m sparsevit`` that speaks the engine's JSON-lines protocol."""
    import json, os, signal, sys, time

    def emit(event, **fields):
        print(json.dumps({"event": event, "time": time.time(), **fields}), flush=True)

    argv = sys.argv[1:]
    if argv == ["--version"]:
        print("sparsevit 9.9.9")
        sys.exit(0)
    cancel_file = None
    if "--json" in argv:
        argv.remove("--json")
    if "--cancel-file" in argv:
        i = argv.index("--cancel-file")
        cancel_file = argv[i + 1]
        del argv[i:i + 2]
    command, args = argv[0], argv[1:]
    cancelled = False
    def on_term(*_):
        global cancelled
        cancelled = True
    here = os.path.dirname(os.path.abspath(__file__))
    proto = json.load(open(os.path.join(here, "protocol.json")))["protocol"]
    if command == "oldproto":  # an engine of another plugin version: must be stopped at once
        emit("start", command=command, protocol=proto - 1)
        time.sleep(30)
        emit("result", outputs={})
        sys.exit(0)
    emit("start", command=command, protocol=proto, engine_version="9.9.9", device="cuda",
         device_name="Fake GPU")
    if command == "ok":
        emit("stage_start", stage="predict", total=4)
        for done in range(1, 5):
            emit("progress", stage="predict", done=done, total=4, fraction=done / 4)
        emit("stage_end", stage="predict", seconds=0.1)
        emit("log", level="warning", message="tile 3 is mostly no-data")
        print("some library chatter on stdout", flush=True)
        print("a warning on stderr", file=sys.stderr, flush=True)
        emit("result", device="cuda", device_name="Fake GPU", args=args)
        emit("end", command=command, exit_code=0)
    elif command == "fail":
        emit("error", problem="no Sentinel-2 bands found", path="/x/in.tif",
             fix="pass --band-order", message="/x/in.tif: no Sentinel-2 bands found. Pass --band-order.")
        print("sparsevit fail: error: ...", file=sys.stderr)
        sys.exit(2)
    elif command == "env":
        emit("result", env={k: os.environ.get(k) for k in args})
        emit("end", command=command, exit_code=0)
    elif command in ("sleep", "stubborn"):
        if command == "sleep":
            signal.signal(signal.SIGTERM, on_term)
        else:  # ignores the cancel file and SIGTERM: only a kill stops it
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        emit("stage_start", stage="wait", total=600)
        for done in range(1, 601):
            time.sleep(0.05)
            emit("progress", stage="wait", done=done, total=600, fraction=done / 600)
            if command == "sleep" and (cancelled or (cancel_file and os.path.exists(cancel_file))):
                emit("error", problem="run cancelled; no output was written", path=None,
                     fix="run again when ready", message="run cancelled; no output was written. Run again when ready.")
                sys.exit(130)
        emit("end", command=command, exit_code=0)
    else:
        print(f"unknown command {command}", file=sys.stderr)
        sys.exit(2)
''')


@pytest.fixture(scope="session")
def fake_engine_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fake_engine")
    pkg = root / "sparsevit"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(FAKE_MAIN)
    shutil.copy(REPO / "resources" / "protocol.json", pkg / "protocol.json")
    return root


@pytest.fixture(scope="session")
def fake_python(fake_engine_dir) -> Path:
    """An 'interpreter' whose ``-m sparsevit`` is the fake engine (it sets its own path, as
    the runner strips PYTHONPATH from what it passes on)."""
    wrapper = fake_engine_dir / "python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{fake_engine_dir}" exec "{sys.executable}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return wrapper


@pytest.fixture
def fake_env(fake_engine_dir) -> dict:
    return {"PYTHONPATH": str(fake_engine_dir)}


@pytest.fixture
def engine_setting():
    """Restore the engine interpreter setting after a test changes it."""
    from sparsevit_qgis.core import engine_locator, settings
    before = settings.python_path()
    yield settings
    settings.set_python_path(before or None)
    engine_locator.clear_cache()


@pytest.fixture
def scheme_file(tmp_path) -> Path:
    path = tmp_path / "mini.json"
    path.write_text(json.dumps({
        "name": "mini", "title": "Mini scheme", "ignore_value": 255,
        "classes": [
            {"value": 0, "name": "Water", "color": "#1f78b4"},
            {"value": 1, "name": "Trees", "color": "#33A02C"},
            {"value": 2, "name": "Built-up", "color": "#e31a1c"},
        ]}))
    return path


@pytest.fixture
def uint8_tif(tmp_path) -> Path:
    return write_gdal_raster(tmp_path / "classes.tif", 8, 8,
                             bytes([(i % 3) if i % 10 else 255 for i in range(64)]))


def write_gdal_raster(path: Path, width: int, height: int, data: bytes, gdal_type: str = "Byte") -> Path:
    """A one-band GeoTIFF of ``data`` (raw bytes, row by row) on a 10 m UTM 30N grid."""
    from osgeo import gdal, osr
    ds = gdal.GetDriverByName("GTiff").Create(str(path), width, height, 1, getattr(gdal, f"GDT_{gdal_type}"))
    ds.SetGeoTransform((500000.0, 10.0, 0.0, 4200000.0, 0.0, -10.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32630)
    ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).WriteRaster(0, 0, width, height, data)
    ds = None  # close before QGIS opens it; GDAL objects must not outlive the test
    return path


@pytest.fixture
def provider(qgis_processing):
    """The SparseViT Processing provider, registered for one test."""
    from qgis.core import QgsApplication

    from sparsevit_qgis.processing.provider import SparseVitProvider
    registry = QgsApplication.processingRegistry()
    prov = SparseVitProvider()
    assert registry.addProvider(prov)
    yield prov
    registry.removeProvider(prov)


@pytest.fixture(scope="session")
def real_engine() -> tuple[Path, Path]:
    """(engine interpreter, sample Sentinel-2 scene); skips where the checkout lacks them."""
    if not (VENV_PYTHON.exists() and SAMPLE_S2.exists()
            and (REPO / "engine" / "sparsevit" / "commands" / "info.py").exists()):
        pytest.skip("engine venv, sample scene or `sparsevit info` not available")
    return VENV_PYTHON, SAMPLE_S2


os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


# A rectangle in the north-west of the sample scene (EPSG:4326), ~170 x 170 px: enough for
# every output, a few seconds on two shared cores.
SAMPLE_AREA = (-0.7800, 38.1100, -0.7650, 38.1250)


@pytest.fixture(scope="session")
def tiny_bundle(real_engine, tmp_path_factory) -> Path:
    """A complete, untrained model bundle (until resources/models/default exists, and so that
    tests never depend on the real model's accuracy)."""
    tests_dir = str(REPO / "tests")
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    from fixtures.bundle import write_tiny_bundle
    root = tmp_path_factory.mktemp("tiny_bundle")
    write_tiny_bundle(root)
    return root


@pytest.fixture(scope="session")
def small_prediction(real_engine, tiny_bundle, tmp_path_factory) -> dict:
    """The ``result`` event of one engine prediction on SAMPLE_AREA, for the tests that need a
    classified raster (export, evaluate) but not a prediction of their own."""
    from sparsevit_qgis.core.engine_runner import run_engine
    python, sample = real_engine
    out = tmp_path_factory.mktemp("small_prediction")
    outcome = run_engine(str(python), "predict", [
        str(sample), "--model", str(tiny_bundle), "--out", str(out), "--tile", "256",
        "--no-overview", "--area=" + ",".join(map(str, SAMPLE_AREA)), "--area-crs", "EPSG:4326"])
    assert outcome.ok, outcome.message + outcome.stderr[-2000:]
    return outcome.result


@pytest.fixture
def new_dock(qgis_iface):
    """``new_dock()`` makes a SparseViT panel; every panel made is shut down after the test."""
    from qgis.core import QgsApplication

    from sparsevit_qgis.gui.dock import SparseVitDock
    docks = []

    def make():
        dock = SparseVitDock(qgis_iface)
        docks.append(dock)
        return dock

    yield make
    for dock in docks:
        dock.shutdown()
        dock.deleteLater()
    QgsApplication.processEvents()


def wait_until(condition, timeout: float = 20.0, describe=None) -> float:
    """Process Qt events until ``condition()`` holds; the seconds waited. On timeout an
    AssertionError, with ``describe()`` (e.g. the panel's log) when given."""
    from qgis.core import QgsApplication
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        QgsApplication.processEvents()
        if condition():
            return time.monotonic() - t0
        time.sleep(0.02)
    raise AssertionError("timed out" + (f"; {describe()}" if describe else ""))


def wait_for_panel(dock, timeout: float = 120.0) -> float:
    """Wait until the panel's engine run is over (its events handled); fail with its log."""
    from qgis.core import QgsApplication
    took = wait_until(lambda: not dock.running, timeout, lambda: "log:\n" + dock.log.toPlainText())
    QgsApplication.processEvents()
    return took

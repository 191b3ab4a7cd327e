"""The plugin-engine contract (docs/protocol.md, resources/protocol.json) held by both sides:
the real engine's events and output roles against the file the plugin reads."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from conftest import REPO, SAMPLE_AREA

SPEC = json.loads((REPO / "resources" / "protocol.json").read_text())


def test_both_sides_read_one_protocol_file():
    from sparsevit import protocol as engine_protocol
    from sparsevit.predict.scene import _Outputs
    from sparsevit_qgis.core import protocol as plugin_protocol

    assert engine_protocol.version() == plugin_protocol.version() == SPEC["protocol"]
    assert engine_protocol.output_roles() == plugin_protocol.output_roles() == tuple(SPEC["output_roles"])
    # every output predict can write has a role, and no role is left without an output
    predict_roles = {k for k, v in SPEC["output_roles"].items() if "predict" in v.get("commands", ["predict"])}
    assert {f.name for f in dataclasses.fields(_Outputs)} == predict_roles
    named = [v for k, v in vars(plugin_protocol).items() if k.isupper() and isinstance(v, str)]
    assert named and set(named) <= set(SPEC["output_roles"])
    assert set(plugin_protocol.RASTER_ROLES) <= set(SPEC["output_roles"])


def test_real_engine_speaks_the_documented_protocol(real_engine, tiny_bundle, tmp_path):
    from sparsevit_qgis.core.engine_runner import run_engine

    python, sample = real_engine
    events: list[dict] = []
    outcome = run_engine(str(python), "predict", [
        str(sample), "--model", str(tiny_bundle), "--out", str(tmp_path), "--tile", "128",
        "--polygons", "--attention", "--no-overview", "--area=" + ",".join(map(str, SAMPLE_AREA)),
        "--area-crs", "EPSG:4326"], on_event=events.append)
    assert outcome.ok, outcome.message + outcome.stderr[-2000:]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and "result" in kinds
    assert set(kinds) <= set(SPEC["events"]), set(kinds) - set(SPEC["events"])
    for e in events:  # every documented field is present (values may be null)
        missing = set(SPEC["events"][e["event"]]["fields"]) - set(e)
        assert not missing, (e["event"], missing)
    start = events[0]
    assert start["protocol"] == SPEC["protocol"] and start["command"] == "predict"
    assert start["device"] == "cpu" and start["device_name"].startswith("CPU (")
    assert outcome.device == ("cpu", start["device_name"])
    assert events[-1]["exit_code"] == 0
    outputs = outcome.result["outputs"]
    assert set(outputs) <= set(SPEC["output_roles"]), set(outputs) - set(SPEC["output_roles"])
    assert {"landcover", "pseudomask", "confidence", "attention", "polygons", "run"} <= set(outputs)
    assert all(Path(p).is_file() for p in outputs.values())


def test_a_command_without_a_model_says_so_in_its_start_event(real_engine):
    from sparsevit_qgis.core.engine_runner import run_engine

    python, sample = real_engine
    outcome = run_engine(str(python), "info", [str(sample)])
    assert outcome.ok, outcome.message
    assert outcome.start["protocol"] == SPEC["protocol"] and outcome.device == (None, None)


def test_an_engine_of_another_protocol_is_stopped_with_a_way_out(fake_python):
    from sparsevit_qgis.core.engine_runner import run_engine

    t0 = time.monotonic()
    outcome = run_engine(str(fake_python), "oldproto", [])
    assert time.monotonic() - t0 < 10  # the fake would sleep 30 s
    assert not outcome.ok and not outcome.cancelled and outcome.result is None
    assert f"expects protocol {SPEC['protocol']}" in outcome.message
    assert "Install the engine shipped with this plugin" in outcome.message

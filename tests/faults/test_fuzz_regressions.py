"""Inputs the fuzzer (benchmarks/bench_faults.py) found; each one crashed before its fix."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.cli_runs import assert_clean_error, run_cli

CRASHERS = sorted((Path(__file__).parent / "crashers").glob("raster_*.tif"))


@pytest.mark.parametrize("path", CRASHERS, ids=lambda p: p.name)
def test_fuzzed_raster_gives_input_error(capsys, path):
    """Corrupt S1 strips: the decimated unit-detection read raised a bare RasterioIOError."""
    from sparsevit.errors import InputError
    from sparsevit.io.scene import open_s1
    with pytest.raises(InputError):
        open_s1(path).close()
    code, _, err = run_cli(capsys, ["--json", "info", str(path)])
    assert_clean_error(code, err, "info", path, exit_code=2)


# Found by the protocol fuzzer: these lines made EngineRunner._handle_line raise, which ended
# the whole run in the plugin.
PROTOCOL_CRASHERS = {
    "deep-nesting": '{"event": "result", "x": ' + "[" * 100000 + "]" * 100000 + "}",
    "fraction-text": json.dumps({"event": "progress", "stage": "predict", "fraction": "half"}),
    "fraction-object": json.dumps({"event": "progress", "stage": "predict", "fraction": {}}),
}


@pytest.mark.parametrize("line", PROTOCOL_CRASHERS.values(), ids=PROTOCOL_CRASHERS.keys())
def test_protocol_line_never_raises(line):
    from sparsevit_qgis.core.engine_runner import EngineOutcome, EngineRunner
    runner = EngineRunner("python", "info", on_progress=lambda *a: None)
    outcome = EngineOutcome(command=[])
    runner._handle_line(line + "\n", outcome)
    assert outcome.other_stdout or outcome.events
    if outcome.events:  # a progress line with a nonsense fraction is kept, fraction unknown
        assert outcome.events[0]["event"] == "progress"


def test_protocol_garbage_lines_are_kept_as_log():
    from sparsevit_qgis.core.engine_runner import EngineOutcome, EngineRunner
    logged = []
    runner = EngineRunner("python", "info", on_log=lambda lvl, msg: logged.append((lvl, msg)))
    outcome = EngineOutcome(command=[])
    for line in ['{"event": "prog', "\x00\ufffd日本", "[1, 2]", '{"no_event": 1}', "A" * 100000]:
        runner._handle_line(line + "\n", outcome)
    assert len(outcome.other_stdout) == 5 and all(lvl == "stdout" for lvl, _ in logged)

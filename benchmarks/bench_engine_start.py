"""How long the panel waits on the engine: seconds from launching ``python -m sparsevit --json``
to its first event and to its result, the way the plugin starts it (a fresh process each time).

Rows: ``info`` on the bundled sample (the panel's Inspect), ``predict`` on the sample (time to the
``start`` event, to the first stage and to the result), and ``--help``, which imports every
command module as every start did before the CLI imported only the named command. Cancel rows:
the plugin's own :class:`EngineRunner` (cancel file, SIGTERM, kill) cancels a ``predict`` 0.3 s
after launch (the engine is importing PyTorch and cannot read the cancel file yet) and once its
``predict`` stage runs; seconds from ``cancel()`` until the process is gone (goal <= 1 s).
Each row is the median of ``--repeats`` runs, all in one session so the ratios compare like
with like.
Run: ``.venv/bin/python benchmarks/bench_engine_start.py``; writes
``benchmarks/results/engine_start.json`` and ``engine_start.md``.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
SAMPLE = REPO / "resources" / "sample" / "Spain_7370579_S2Hand.tif"


def timed(args: list[str]) -> dict:
    """Seconds from launch to the first event, the first ``stage_start``, the ``result`` and exit."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "sparsevit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    marks: dict = {}
    for line in proc.stdout:
        now = time.perf_counter() - t0
        try:
            kind = json.loads(line).get("event")
        except ValueError:  # --help prints text
            kind = "text"
        marks.setdefault("first_event_s", now)
        if kind == "stage_start":
            marks.setdefault("first_stage_s", now)
        if kind == "result":
            marks["result_s"] = now
    proc.wait()
    marks["exit_s"] = time.perf_counter() - t0
    marks["returncode"] = proc.returncode
    return marks


def cancel_seconds(out: Path, when: str) -> float:
    """Seconds from the plugin runner's ``cancel()`` to the end of ``run()`` (process gone)."""
    sys.path.insert(0, str(REPO))
    from sparsevit_qgis.core.engine_runner import EngineRunner

    marks: dict = {}
    runner = None

    def on_event(event: dict) -> None:
        if when == "predicting" and event.get("event") == "stage_start" and event.get("stage") == "predict" \
                and "t" not in marks:
            marks["t"] = time.perf_counter()
            runner.cancel()

    runner = EngineRunner(sys.executable, "predict", [str(SAMPLE), "--out", str(out), "--no-overview"],
                          on_event=on_event)
    if when == "importing":
        def later():
            time.sleep(0.3)
            marks["t"] = time.perf_counter()
            runner.cancel()
        import threading
        threading.Thread(target=later, daemon=True).start()
    outcome = runner.run()
    if not outcome.cancelled:
        raise SystemExit(f"cancel while {when}: the run was not cancelled ({outcome.exit_code})")
    return time.perf_counter() - marks["t"]


def median(rows: list[dict], key: str):
    vals = [r[key] for r in rows if key in r]
    return round(statistics.median(vals), 3) if vals else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    res: dict = {"machine": platform.processor() or platform.machine(), "python": sys.version.split()[0],
                 "repeats": args.repeats, "rows": {}}
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            "info (Inspect)": lambda i: ["--json", "info", str(SAMPLE)],
            "predict sample": lambda i: ["--json", "predict", str(SAMPLE), "--out", str(Path(tmp) / f"p{i}"),
                                         "--no-overview"],
            "--help (imports every command)": lambda i: ["--help"],
        }
        for name, make in cases.items():
            runs = []
            for i in range(args.repeats):
                if name.startswith("predict"):
                    (Path(tmp) / f"p{i}").mkdir()
                runs.append(timed(make(i)))
            if any(r["returncode"] != 0 for r in runs):
                raise SystemExit(f"{name}: the engine failed (exit {[r['returncode'] for r in runs]})")
            res["rows"][name] = {k: median(runs, k) for k in ("first_event_s", "first_stage_s", "result_s", "exit_s")}
        res["cancel_s"] = {}
        for when in ("importing", "predicting"):
            took = []
            for i in range(args.repeats):
                (Path(tmp) / f"c{when}{i}").mkdir()
                took.append(cancel_seconds(Path(tmp) / f"c{when}{i}", when))
            res["cancel_s"][when] = {"median": round(statistics.median(took), 3), "max": round(max(took), 3)}
    info, helped = res["rows"]["info (Inspect)"], res["rows"]["--help (imports every command)"]
    res["info_vs_all_commands_ratio"] = round(helped["exit_s"] / info["exit_s"], 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine_start.json").write_text(json.dumps(res, indent=2) + "\n")
    lines = ["# Engine start as the panel sees it (`benchmarks/bench_engine_start.py`)", "",
             f"Median of {args.repeats} fresh processes each; {res['machine']}, Python {res['python']}.", "",
             "| run | first event s | first stage s | result s | exit s |", "|---|---|---|---|---|"]
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for name, r in res["rows"].items():
        lines.append(f"| {name} | {fmt(r['first_event_s'])} | {fmt(r['first_stage_s'])} | "
                     f"{fmt(r['result_s'])} | {fmt(r['exit_s'])} |")
    lines += ["", "| cancel (plugin's EngineRunner) | median s | max s |", "|---|---|---|"]
    for when, v in res["cancel_s"].items():
        label = {"importing": "0.3 s after launch (engine importing PyTorch)",
                 "predicting": "during the predict stage"}[when]
        lines.append(f"| {label} | {v['median']:.2f} | {v['max']:.2f} |")
    lines += ["", f"`info` exits {res['info_vs_all_commands_ratio']}x sooner than a start that imports "
                  "every command (torch included), as every start did before."]
    (RESULTS / "engine_start.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

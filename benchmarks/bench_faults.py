"""Fault suite + bounded fuzzing of the raster reader and the plugin's JSON-lines parser + Bandit.

Run: ``.venv/bin/python benchmarks/bench_faults.py [--seconds 60] [--skip-suite]``. Writes
``benchmarks/results/faults.json`` and ``faults.md`` and prints the table.

* suite: ``pytest tests/faults`` with a JUnit XML report -> ``cases`` / ``passed``.
* raster fuzz: seeded byte mutations (header, IFD entries, offsets/byte counts, truncation,
  junk) of small valid GeoTIFFs, fed to ``open_s2``/``open_s1``, a window read,
  ``decimated_stats`` and ``sparsevit info`` in-process. Anything but a
  :class:`~sparsevit.errors.SparseVitError` is a crash. Batches run in child processes (with
  an address-space limit), so a segfault or an OOM is counted, not fatal; the input being tried
  is saved first, so a killed child still leaves its crasher on disk.
* protocol fuzz: random, truncated, huge, unicode, deeply nested and wrongly typed lines into
  ``EngineRunner._handle_line``; it must never raise.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET  # nosec B405 - reads the JUnit report pytest just wrote
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
CRASHERS = REPO / "tests" / "faults" / "crashers"
PY = sys.executable

RASTER_CHILD = r"""
import contextlib, io, json, os, random, resource, struct, sys, warnings
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
warnings.simplefilter("ignore")
import numpy as np, rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window
from sparsevit.errors import SparseVitError
from sparsevit.io.scene import decimated_stats, open_s1, open_s2
from sparsevit.cli import main
import time
seeds_dir, work, seed, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
until = time.monotonic() + seconds
rng = random.Random(seed)
seeds = sorted(os.listdir(seeds_dir))

def mutate(data: bytearray) -> bytearray:
    kind = rng.choice(["flip", "int", "ifd", "truncate", "junk", "zero"])
    n = len(data)
    if kind == "truncate":
        return data[: rng.randrange(0, n)]
    if kind == "junk":
        at = rng.randrange(0, n)
        return data[:at] + bytearray(rng.randbytes(rng.randrange(1, 64))) + data[at:]
    head = min(n, rng.choice([16, 512, 4096, n]))
    if kind == "ifd" and n > 8:  # classic TIFF: IFD offset at byte 4, 12-byte entries
        ifd = struct.unpack("<I", bytes(data[4:8]))[0]
        if 0 < ifd < n - 14:
            entries = struct.unpack("<H", bytes(data[ifd:ifd + 2]))[0]
            e = ifd + 2 + 12 * rng.randrange(0, max(1, min(entries, 40)))
            field = rng.choice([2, 4, 8])  # type, count, value/offset
            val = rng.choice([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, rng.randrange(1 << 32)])
            if e + field + 4 <= n:
                data[e + field:e + field + (2 if field == 2 else 4)] = struct.pack(
                    "<H" if field == 2 else "<I", val & (0xFFFF if field == 2 else 0xFFFFFFFF))
            return data
    for _ in range(rng.randrange(1, 9)):
        at = rng.randrange(0, head)
        if kind == "int" and at + 4 <= n:
            value = rng.choice([0, 0xFFFFFFFF, 0x7FFFFFFF, 1 << 20, rng.randrange(1 << 32)])
            data[at:at + 4] = struct.pack("<I", value)
        elif kind == "zero":
            data[at] = 0
        else:
            data[at] ^= 1 << rng.randrange(8)
    return data

def target(path):
    try:
        s2 = open_s2(path, required=None)
    except SparseVitError:
        s2 = None
    if s2 is not None:
        with s2:
            w = Window(0, 0, min(64, s2.grid.width), min(64, s2.grid.height))
            s2.read(w, s2.band_names)
            decimated_stats(s2)
    else:
        with open_s1(path) as s1:
            s1.read(Window(0, 0, min(64, s1.grid.width), min(64, s1.grid.height)))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["--json", "info", path])
    if code == 1:  # the CLI's own "internal error" path: an uncaught exception inside
        raise RuntimeError("sparsevit info: internal error")

crashes = []
i = -1
while time.monotonic() < until:
    i += 1
    name = seeds[rng.randrange(len(seeds))]
    data = bytearray(open(os.path.join(seeds_dir, name), "rb").read())
    for _ in range(rng.choice([1, 1, 2, 3])):
        data = mutate(data)
    path = os.path.join(work, f"in_{seed}_{i}.tif")
    with open(path, "wb") as fh:
        fh.write(data)
    with open(os.path.join(work, "current"), "w") as fh:
        fh.write(path)
    try:
        target(path)
    except SparseVitError:
        pass
    except BaseException as exc:
        crashes.append({"input": path, "seed": name, "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
        continue
    os.remove(path)
print(json.dumps({"tried": i + 1, "crashes": crashes}))
"""


def make_seeds(folder: Path) -> None:
    import numpy as np
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS

    from sparsevit.bands import S2_BANDS_NO_CIRRUS
    t = Affine(10, 0, 500000, 0, -10, 5000000)
    rng = np.random.default_rng(0)
    variants = {
        "s2_plain.tif": dict(dtype="uint16", count=12),
        "s2_deflate_tiled.tif": dict(dtype="uint16", count=12, compress="deflate", tiled=True,
                                     blockxsize=16, blockysize=16),
        "s2_float_nodata.tif": dict(dtype="float32", count=12, nodata=-9999, compress="lzw"),
        "s1_db.tif": dict(dtype="float32", count=2),
    }
    for name, kw in variants.items():
        count = kw.pop("count")
        size = 32
        with rasterio.open(folder / name, "w", driver="GTiff", width=size, height=size, count=count,
                           crs=CRS.from_epsg(32633), transform=t, **kw) as ds:
            if count == 2:
                ds.write(rng.uniform(-25, -5, (2, size, size)).astype("float32"))
                ds.set_band_description(1, "VV")
                ds.set_band_description(2, "VH")
            else:
                ds.write(rng.integers(100, 3000, (count, size, size)).astype(kw["dtype"]))
                for i, n in enumerate(S2_BANDS_NO_CIRRUS, 1):
                    ds.set_band_description(i, n)


def fuzz_rasters(seconds: float, batch_seconds: float = 20) -> dict:
    work = Path(tempfile.mkdtemp(prefix="sv-fuzz-"))
    seeds = work / "seeds"
    seeds.mkdir()
    make_seeds(seeds)
    tried, crashes, seed, t0 = 0, [], 0, time.monotonic()
    env = {**os.environ, "CPL_LOG": os.devnull}
    while time.monotonic() - t0 < seconds:
        seed += 1
        left = max(1.0, min(batch_seconds, seconds - (time.monotonic() - t0)))
        proc = subprocess.run([PY, "-c", RASTER_CHILD, str(seeds), str(work), str(seed), str(left)],
                              capture_output=True, text=True, env=env, timeout=600)
        last = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode == 0 and last:
            res = json.loads(last[-1])
            tried += res["tried"]
            crashes += res["crashes"]
        else:  # the child died (segfault, OOM): the input it was on is the crasher
            current = (work / "current").read_text() if (work / "current").exists() else "?"
            crashes.append({"input": current, "seed": "?", "error": f"child died rc={proc.returncode}: "
                            + proc.stderr.strip()[-200:]})
            tried += int(Path(current).stem.split("_")[-1]) + 1 if current != "?" else 1
    CRASHERS.mkdir(parents=True, exist_ok=True)
    kept = []
    for c in crashes[:20]:
        src = Path(c["input"])
        if src.exists():
            dst = CRASHERS / f"raster_{len(kept):02d}.tif"
            shutil.copyfile(src, dst)
            kept.append({**c, "input": str(dst.relative_to(REPO))})
    shutil.rmtree(work, ignore_errors=True)
    return {"inputs": tried, "crashes": len(crashes), "batches": seed,
            "distinct_errors": sorted({c["error"].split(":")[0] for c in crashes}), "saved": kept}


def _protocol_lines(rng: random.Random):
    events = ["start", "stage_start", "progress", "stage_end", "log", "result", "error", "end", "???"]
    values = [None, True, 0, -1, 1e308, float("nan"), "x", "é日本\u202e", "", [], {}, [1, [2]],
              {"a": {"b": None}}, "1.5", "nan", 10 ** 30, "\x00"]

    def val():
        return rng.choice(values) if rng.random() < 0.8 else "".join(
            chr(rng.randrange(1, 0x2FFFF)) for _ in range(rng.randrange(0, 40)))
    while True:
        kind = rng.randrange(9)
        if kind <= 3:
            doc = {"event": rng.choice(events)}
            for key in rng.sample(["stage", "fraction", "done", "total", "level", "message", "problem",
                                   "path", "fix", "outputs", "time", "exit_code"], rng.randrange(0, 6)):
                doc[key] = val()
            text = json.dumps(doc, allow_nan=True)
            yield text[: rng.randrange(len(text) + 1)] if kind == 3 else text
        elif kind == 4:
            yield "".join(chr(rng.randrange(0, 0x10FFFF)) for _ in range(rng.randrange(0, 200))
                          ).encode("utf-8", "replace").decode("utf-8", "replace")
        elif kind == 5:
            depth = rng.choice([10, 1000, 100000])
            yield '{"event": "result", "x": ' + "[" * depth + "]" * depth + "}"
        elif kind == 6:
            yield '{"event": "log", "message": "' + "A" * rng.choice([10, 10 ** 5, 10 ** 6]) + '"}'
        elif kind == 7:
            yield json.dumps(rng.choice([[], 1, "event", None, [{"event": "end"}]]))
        else:
            yield "{" + "".join(rng.choice('{}[]":,event0123456789.eE-+ ') for _ in range(rng.randrange(60)))


def fuzz_protocol(seconds: float) -> dict:
    sys.path.insert(0, str(REPO))
    from sparsevit_qgis.core.engine_runner import EngineOutcome, EngineRunner

    sink = []
    runner = EngineRunner(PY, "info", on_event=sink.append, on_progress=lambda *a: sink.append(a),
                          on_stage=lambda *a: None, on_log=lambda *a: None,
                          on_result=lambda f: None, on_error=lambda f: None)
    rng = random.Random(1)
    gen = _protocol_lines(rng)
    tried, crashes, t0 = 0, {}, time.monotonic()
    while time.monotonic() - t0 < seconds:
        line = next(gen)
        tried += 1
        outcome = EngineOutcome(command=[])
        try:
            runner._handle_line(line + "\n", outcome)
        except BaseException as exc:  # must never happen: one bad line would kill the run
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            key = f"{type(exc).__name__} in {Path(frame.filename).name}:{frame.lineno} ({frame.name})"
            crashes.setdefault(key, {"count": 0, "example": line[:300]})
            crashes[key]["count"] += 1
        sink.clear()
    return {"inputs": tried, "crashes": sum(c["count"] for c in crashes.values()),
            "distinct": crashes}


def run_suite() -> dict:
    xml = Path(tempfile.mkdtemp()) / "junit.xml"
    t0 = time.monotonic()
    proc = subprocess.run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/faults",
                           f"--junitxml={xml}"], cwd=REPO, capture_output=True, text=True)
    root = ET.parse(xml).getroot()  # nosec B314 - our own pytest report
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    total = int(suite.get("tests"))
    bad = sum(int(suite.get(k, 0)) for k in ("failures", "errors"))
    skipped = int(suite.get("skipped", 0))
    return {"cases": total, "passed": total - bad - skipped, "skipped": skipped,
            "failed": bad, "seconds": round(time.monotonic() - t0, 1),
            "tail": proc.stdout.strip().splitlines()[-1:]}


def run_bandit() -> dict:
    exe = Path(PY).with_name("bandit")
    if not exe.exists():
        return {"findings": None, "note": "bandit not installed (.venv/bin/pip install bandit==1.7.10)"}
    proc = subprocess.run([str(exe), "-r", "engine/sparsevit", "sparsevit_qgis", "-f", "json", "-q"],
                          cwd=REPO, capture_output=True, text=True)
    doc = json.loads(proc.stdout)
    res = doc["results"]
    hm = [r for r in res if r["issue_severity"] in ("HIGH", "MEDIUM")]
    return {"findings": len(hm), "low": len(res) - len(hm),
            "nosec": doc["metrics"]["_totals"].get("nosec", 0),
            "high_medium": [f"{r['test_id']} {r['filename']}:{r['line_number']}" for r in hm],
            "low_ids": sorted({r["test_id"] for r in res if r not in hm})}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60, help="per fuzzer")
    ap.add_argument("--skip-suite", action="store_true")
    args = ap.parse_args()
    t0 = time.monotonic()
    suite = {"cases": 0, "passed": 0} if args.skip_suite else run_suite()
    raster = fuzz_rasters(args.seconds)
    proto = fuzz_protocol(args.seconds)
    bandit = run_bandit()
    out = {"cases": suite["cases"], "passed": suite["passed"],
           "fuzz_inputs": raster["inputs"] + proto["inputs"],
           "fuzz_crashes": raster["crashes"] + proto["crashes"],
           "bandit_findings": bandit["findings"], "seconds": round(time.monotonic() - t0, 1),
           "fuzz_seconds_each": args.seconds, "suite": suite, "raster_fuzz": raster,
           "protocol_fuzz": proto, "bandit": bandit,
           "python": sys.version.split()[0], "cpus": os.cpu_count()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "faults.json").write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")
    rows = [("fault/bad-input cases (pytest tests/faults)", out["cases"]), ("passed", out["passed"]),
            ("raster fuzz inputs / crashes", f"{raster['inputs']} / {raster['crashes']}"),
            ("protocol fuzz inputs / crashes", f"{proto['inputs']} / {proto['crashes']}"),
            ("Bandit high+medium findings", bandit["findings"]), ("total seconds", out["seconds"])]
    md = ["# Faults, fuzzing and Bandit", "", f"`benchmarks/bench_faults.py --seconds {args.seconds:g}` "
          f"on {os.cpu_count()} CPU cores.", "", "| what | value |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in rows]
    if proto["distinct"]:
        md += ["", "Protocol parser crashes (plugin side, `sparsevit_qgis/core/engine_runner.py`):", ""]
        md += [f"- `{k}` x{v['count']}" for k, v in proto["distinct"].items()]
    if raster["distinct_errors"]:
        md += ["", "Raster reader crashes: " + ", ".join(f"`{e}`" for e in raster["distinct_errors"])]
    (RESULTS / "faults.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory and time of writing a full Sentinel-2 tile (10980 x 10980) as a classified COG.

Each measurement runs in a fresh subprocess so only the writer's memory counts (ru_maxrss of
that child). Run: ``.venv/bin/python benchmarks/bench_io.py [--size N]``; writes
``benchmarks/results/io.json`` and ``io.md`` and prints the table.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
LIMIT_MB = 500

CHILD = r"""
import json, os, resource, sys, time
from dataclasses import dataclass
import numpy as np
from affine import Affine
from rasterio.crs import CRS
from sparsevit.io.scene import Grid
from sparsevit.io.tiles import tile_windows
from sparsevit.io.writers import ClassifiedWriter

size, out = int(sys.argv[1]), sys.argv[2]

@dataclass
class C:
    value: int
    name: str
    color: str

@dataclass
class S:
    name: str
    classes: list

scheme = S("bench", [C(i, f"class {i}", "#%02x%02x%02x" % (30 * i, 240 - 30 * i, 90)) for i in range(8)])
grid = Grid(CRS.from_epsg(32633), Affine(10, 0, 300000, 0, -10, 5300000), size, size)
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
with ClassifiedWriter(out, grid, scheme) as w:
    # Overlapping predictor-like tiles, each writing only its core: blocky class fields.
    for tile in tile_windows(size, size, 1024, 64):
        h, w_ = int(tile.core.height), int(tile.core.width)
        rng = np.random.default_rng(tile.row * 1000 + tile.col)
        coarse = rng.integers(0, 8, size=((h + 31) // 32, (w_ + 31) // 32), dtype=np.uint8)
        block = np.kron(coarse, np.ones((32, 32), np.uint8))[:h, :w_]
        block[rng.random((h, w_)) < 0.001] = 255
        w.write(block, tile.core)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "baseline_rss_mb": rss0,
                  "file_mb": os.path.getsize(out) / 2**20}))
"""


def measure(size: int) -> dict:
    with tempfile.TemporaryDirectory(dir=HERE) as tmp:
        out = str(Path(tmp) / f"classes_{size}.tif")
        proc = subprocess.run([sys.executable, "-c", CHILD, str(size), out],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"benchmark child failed:\n{proc.stderr}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        import rasterio
        with rasterio.open(out) as ds:
            result["overviews"] = ds.overviews(1)
            result["block_shapes"] = ds.block_shapes[0]
            result["layout"] = ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT")
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10980)
    args = ap.parse_args()
    r = measure(args.size)
    key = f"_{args.size}"
    data = {
        f"peak_rss_mb{key}": round(r["peak_rss_mb"], 1),
        f"baseline_rss_mb{key}": round(r["baseline_rss_mb"], 1),
        f"seconds{key}": round(r["seconds"], 2),
        f"file_mb{key}": round(r["file_mb"], 2),
        "overviews": r["overviews"], "block_shape": list(r["block_shapes"]),
        "layout": r["layout"], "limit_mb": LIMIT_MB,
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "io.json").write_text(json.dumps(data, indent=2) + "\n")
    md = "\n".join([
        "# Raster I/O benchmark (`benchmarks/bench_io.py`)", "",
        f"Classified uint8 raster, {args.size} x {args.size} px, written window by window "
        "(1024 px tiles, 64 px overlap, cores only) through `ClassifiedWriter` in a fresh process.", "",
        "| measure | value |", "|---|---|",
        f"| peak RSS (MB, limit {LIMIT_MB}) | {data[f'peak_rss_mb{key}']} |",
        f"| RSS after imports (MB) | {data[f'baseline_rss_mb{key}']} |",
        f"| seconds (write + COG layout + sidecars) | {data[f'seconds{key}']} |",
        f"| file size (MB) | {data[f'file_mb{key}']} |",
        f"| layout / blocks / overviews | {data['layout']} / {data['block_shape']} / {data['overviews']} |",
        "", f"Machine: {data['machine']}, {data['date']}.", ""])
    (RESULTS / "io.md").write_text(md)
    print(md)
    return 0 if data[f"peak_rss_mb{key}"] < LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())

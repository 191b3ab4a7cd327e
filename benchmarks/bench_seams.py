"""Tile seams in large-scene prediction: cut tile cores (before) vs blended tiles (after).

On the bundled sample (Sen1Floods11 Spain_7370579, 512 x 512 px) with the default model, at a
small tile (128 px, overlap 16: 25 tiles, 8 core borders) so there are many borders. For the
pseudomask and the land-cover map: the share of adjacent pixel pairs whose labels differ ACROSS a
tile-core border vs everywhere else (``ratio``; ~1 = no seam), and the same inside the overlap
strips, where blending hands over from one tile to the next, vs outside them
(``overlap_ratio``). Times: whole ``predict_scene`` (detailed level, no stats, no overview),
fastest of ``--repeats`` runs, configurations interleaved (the CPU is shared and noisy).

Memory: the blending band of a full 10980 px Sentinel-2 tile (default tile 256, 10 classes,
pseudomask + segmenter scores) is given by its size, and measured in a child process that feeds
synthetic scores for all 2401 tiles through :class:`BandBlender` into the three COG writers
(peak RSS = VmHWM; the model is not loaded: the blending's share of a real run's peak).

    python benchmarks/bench_seams.py                 # ~3 min on 2 shared cores
    python benchmarks/bench_seams.py --skip-memory   # without the 10980 px writer run
Writes benchmarks/results/seams.json + seams.md and the overview PNGs of the main comparison
(benchmarks/results/seams/).
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "engine"))

from sparsevit.bundle import default_model_path, load_bundle  # noqa: E402
from sparsevit.io.tiles import tile_windows  # noqa: E402
from sparsevit.predict import PredictOptions, predict_scene  # noqa: E402
from sparsevit.predict.blend import seam_ratio  # noqa: E402

SAMPLE = REPO / "resources" / "sample" / "Spain_7370579_S2Hand.tif"
# (name, tile, overlap, blend); the first two are the main before/after comparison
CONFIGS = [
    ("cut_128_16", 128, 16, False),
    ("blend_128_16", 128, 16, True),
    ("blend_128_32", 128, 32, True),
    ("blend_128_63", 128, 63, True),  # ~half overlap (the cap is tile // 2 - 1)
    ("cut_256_32", 256, 32, False),  # the bundle's default tiling
    ("blend_256_32", 256, 32, True),
    ("blend_256_64", 256, 64, True),
]


def run(bundle, name, tile, overlap, blend, out_root: Path, overview: bool = False) -> dict:
    out = out_root / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    opts = PredictOptions(tile=tile, overlap=overlap, blend=blend, stats=False, overview=overview,
                          level="detailed", threads=2)
    t0, c0 = time.perf_counter(), time.process_time()
    summary = predict_scene(bundle, SAMPLE, out, opts=opts)
    summary["wall"], summary["cpu"] = time.perf_counter() - t0, time.process_time() - c0
    return summary


def seams(summary: dict) -> dict:
    import rasterio
    res = {}
    c = summary["counts"]
    for key in ("pseudomask", "landcover"):
        with rasterio.open(summary["outputs"][key]) as ds:
            lab = ds.read(1)
        tiles = tile_windows(lab.shape[1], lab.shape[0], c["tile"], c["overlap"])
        r = seam_ratio(lab, tiles)
        res[key] = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()}
    return res


MEMORY_CHILD = r"""
import sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from rasterio.crs import CRS
from rasterio.transform import from_origin
from sparsevit.io.scene import Grid
from sparsevit.io.tiles import tile_windows
from sparsevit.io.writers import ClassifiedWriter, FloatWriter
from sparsevit.predict.blend import TileWeights
from sparsevit.predict.scene import _make_blender
from sparsevit.schemes import load_scheme
size, tile, overlap, out = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def hwm():  # VmHWM: this process's own peak (ru_maxrss would start at the parent's after fork)
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
base = hwm()
scheme = load_scheme("eurosat"); K = scheme.num_classes
grid = Grid(CRS.from_epsg(32630), from_origin(600000, 4300000, 10, 10), size, size)
tiles = tile_windows(size, size, tile, overlap)
lut = np.full(256, 255, np.uint8); lut[:K] = np.asarray(scheme.values, np.uint8)
counts = {"valid_pixels": 0}
writers = (ClassifiedWriter(out + "/lc.tif", grid, scheme), ClassifiedWriter(out + "/pm.tif", grid, scheme),
           FloatWriter(out + "/cf.tif", grid))
blender = _make_blender(tiles, grid, K, True, lut, writers, counts)
weights = TileWeights(tiles)
rng = np.random.default_rng(0)
seg = rng.random((K, tile, tile), dtype=np.float32); seg /= seg.sum(0)
pm = rng.random((3, tile, tile), dtype=np.float32)
valid = np.ones((tile, tile), bool)
t0 = time.perf_counter()
with writers[0], writers[1], writers[2]:
    for t in tiles:
        cls = (np.arange(3) + t.col + t.row) % K  # three distinct classes, changing tile to tile
        blender.add(t, weights(t), valid, {"pm": (pm, cls), "seg": (seg, None)})
    blender.finish()
    t_blend = time.perf_counter() - t0
print(base, hwm(), blender.nbytes() / 2**20, t_blend,
      time.perf_counter() - t0, counts["valid_pixels"], len(tiles))
"""


def memory_run(size: int, tile: int, overlap: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="seams_mem_") as tmp:
        out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(REPO / "engine"), str(size),
                              str(tile), str(overlap), tmp], capture_output=True, text=True, check=True)
    base, peak, band, t_blend, t_all, valid, n = out.stdout.split()[-7:]
    assert int(valid) == size * size, (valid, size)
    return {"size_px": size, "tile": tile, "overlap": overlap, "tiles": int(n),
            "blend_band_mb": round(float(band), 1), "peak_rss_mb": round(float(peak), 1),
            "rss_after_imports_mb": round(float(base), 1),
            # every tile blended and every row written into the staged GeoTIFFs
            "seconds_blend_and_write_rows": round(float(t_blend), 1),
            # + COG layout of the three rasters (slow here: random scores compress badly)
            "seconds_total": round(float(t_all), 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--memory-only", action="store_true",
                    help="only (re)measure the full-tile memory, into the existing seams.json")
    ap.add_argument("--configs", help="comma-separated subset of the configuration names")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.memory_only:
        report = json.loads((out_dir / "seams.json").read_text(encoding="utf-8"))
        report["memory_full_tile"] = memory_run(10980, 256, 32)
        (out_dir / "seams.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        write_table(report, out_dir / "seams.md")
        print((out_dir / "seams.md").read_text(encoding="utf-8"))
        return 0
    bundle = load_bundle(args.model)
    configs = [c for c in CONFIGS if not args.configs or c[0] in args.configs.split(",")]
    report: dict = {"benchmark": "seams", "scene": str(SAMPLE.relative_to(REPO)),
                    "model": str(Path(args.model).resolve().relative_to(REPO))
                    if Path(args.model).resolve().is_relative_to(REPO) else args.model,
                    "repeats": args.repeats, "runs": {},
                    "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cpu, "
                               f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"}
    times: dict[str, list[float]] = {c[0]: [] for c in configs}
    cpu: dict[str, list[float]] = {c[0]: [] for c in configs}
    with tempfile.TemporaryDirectory(prefix="seams_") as tmp:
        tmp = Path(tmp)
        for rep in range(args.repeats):
            for name, tile, overlap, blend in (configs if rep % 2 == 0 else configs[::-1]):
                s = run(bundle, name, tile, overlap, blend, tmp)
                times[name].append(s["wall"])
                cpu[name].append(s["cpu"])
                if rep == 0:
                    report["runs"][name] = {"tile": tile, "overlap": s["counts"]["overlap"],
                                            "blend": blend, "tiles": s["counts"]["tiles"],
                                            "seams": seams(s)}
                print(f"{name:<14} {s['wall']:6.2f} s wall {s['cpu']:6.2f} s CPU", flush=True)
        for name in times:
            report["runs"][name]["seconds"] = round(min(times[name]), 2)
            report["runs"][name]["seconds_all"] = [round(t, 2) for t in times[name]]
            report["runs"][name]["cpu_seconds"] = round(min(cpu[name]), 2)
            report["runs"][name]["cpu_seconds_all"] = [round(t, 2) for t in cpu[name]]
        pngs = out_dir / "seams"
        pngs.mkdir(exist_ok=True)
        for name, tile, overlap, blend in configs:
            if name in ("cut_128_16", "blend_128_16", "cut_256_32", "blend_256_32", "blend_256_64"):
                s = run(bundle, name, tile, overlap, blend, tmp, overview=True)
                shutil.copy(s["outputs"]["overview"], pngs / f"{name}.png")
    if not args.skip_memory:
        report["memory_full_tile"] = memory_run(10980, 256, 32)
    old = out_dir / "seams.json"
    if old.exists():  # the by-hand full-tile run (20 min here) is kept, not redone
        prev = json.loads(old.read_text(encoding="utf-8"))
        if "full_tile_real_run" in prev:
            report["full_tile_real_run"] = prev["full_tile_real_run"]
    (out_dir / "seams.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    write_table(report, out_dir / "seams.md")
    print((out_dir / "seams.md").read_text(encoding="utf-8"))
    return 0


def write_table(report: dict, path: Path) -> None:
    runs = report["runs"]
    lines = ["# Tile seams: cut cores vs blended tiles (`benchmarks/bench_seams.py`)", "",
             f"Scene `{report['scene']}` (512 x 512 px), model `{report['model']}`. `ratio`: share of "
             "adjacent pixel pairs with different labels across tile-core borders / the same "
             "share everywhere else (~1: no seam). `overlap`: the same inside the overlap strips "
             "(where blended tiles hand over) / outside them. Time: whole `predict_scene` "
             f"(detailed level, no stats/overview), fastest of {report['repeats']} interleaved "
             "runs, wall clock and CPU time of the process (all threads; steadier than the wall "
             "clock on this shared machine).", "",
             "| run | tile / overlap | tiles | blend | pseudomask ratio | pseudomask overlap | "
             "land cover ratio | land cover overlap | wall s | CPU s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        pm, lc = r["seams"]["pseudomask"], r["seams"]["landcover"]
        lines.append(f"| {name} | {r['tile']} / {r['overlap']} | {r['tiles']} | "
                     f"{'yes' if r['blend'] else 'no (cut)'} | {pm['ratio']:.2f} | "
                     f"{pm['overlap_ratio']:.2f} | {lc['ratio']:.2f} | {lc['overlap_ratio']:.2f} | "
                     f"{r['seconds']:.2f} | {r['cpu_seconds']:.2f} |")
    lines += ["", "Change rates behind the ratios (border / elsewhere):", ""]
    for name, r in runs.items():
        pm, lc = r["seams"]["pseudomask"], r["seams"]["landcover"]
        lines.append(f"- {name}: pseudomask {pm['border_change_rate']:.4f} / "
                     f"{pm['elsewhere_change_rate']:.4f}, land cover {lc['border_change_rate']:.4f} / "
                     f"{lc['elsewhere_change_rate']:.4f}")
    m = report.get("memory_full_tile")
    if m:
        lines += ["", f"Full Sentinel-2 tile ({m['size_px']} px, tile {m['tile']} / overlap "
                  f"{m['overlap']}, {m['tiles']} tiles): blending band {m['blend_band_mb']} MB; "
                  f"blender + the three COG writers alone (synthetic random scores, no model) "
                  f"peak {m['peak_rss_mb']} MB RSS ({m['rss_after_imports_mb']} MB after the imports), "
                  f"{m['seconds_blend_and_write_rows']} s to blend all tiles and write the rows, "
                  f"{m['seconds_total']} s with the COG layout of three incompressible rasters."]
    f = report.get("full_tile_real_run")
    if f:
        lines += ["", f"The real pipeline on a full tile (`bench_predict.py`'s 10980 px VRT, "
                  f"`sparsevit predict`, default model, blended): peak {f['peak_rss_mb']} MB "
                  f"(VmHWM; {f['peak_rss_mb_before']} MB before blending, `predict.json`), "
                  f"{f['seconds']} s on {f['note']}."]
    lines += ["", "Overviews (RGB | pseudomask | land cover): `benchmarks/results/seams/*.png`.", "",
              f"Machine: {report['machine']} (shared with other jobs: expect noise)."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())

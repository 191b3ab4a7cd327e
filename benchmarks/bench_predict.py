"""Large-scene prediction on the CPU: throughput, memory on a full Sentinel-2 tile, FLOP use.

    python benchmarks/bench_predict.py              # sample + 10980 px tile + 4x that area
    python benchmarks/bench_predict.py --skip-4x    # without the 21960 px run
    python benchmarks/bench_predict.py --quick      # smoke run with a smaller "tile"

The big rasters are VRTs that repeat the bundled Sen1Floods11 sample (real S2 pixels) on a
10 m UTM grid, so a full 110 x 110 km tile needs no 3 GB download or file. Each prediction runs
in a child process (``python -m sparsevit predict``, the path the plugin uses); its peak RSS is
the child's VmHWM, polled from /proc every 0.2 s. Writes benchmarks/results/predict.json + .md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "engine"))

from sparsevit.bundle import default_model_path, load_bundle  # noqa: E402
from sparsevit.refine.segmenter import predict_logits_padded  # noqa: E402

SAMPLE = REPO / "resources" / "sample" / "Spain_7370579_S2Hand.tif"
FULL_TILE_KM2 = 109.8 * 109.8


def repeat_vrt(path: Path, src: Path, size: int) -> Path:
    """A ``size`` x ``size`` px, 13-band VRT tiling ``src`` on a 10 m UTM grid."""
    import rasterio
    with rasterio.open(src) as ds:
        w, h, n, dtype = ds.width, ds.height, ds.count, ds.dtypes[0]
        desc = ds.descriptions
    gdal_type = {"int16": "Int16", "uint16": "UInt16"}[dtype]
    bands = []
    for b in range(1, n + 1):
        sources = []
        for y in range(0, size, h):
            for x in range(0, size, w):
                cw, ch = min(w, size - x), min(h, size - y)
                sources.append(
                    f'<SimpleSource><SourceFilename relativeToVRT="0">{src}</SourceFilename>'
                    f'<SourceBand>{b}</SourceBand><SrcRect xOff="0" yOff="0" xSize="{cw}" ySize="{ch}"/>'
                    f'<DstRect xOff="{x}" yOff="{y}" xSize="{cw}" ySize="{ch}"/></SimpleSource>')
        bands.append(f'<VRTRasterBand dataType="{gdal_type}" band="{b}"><Description>{desc[b - 1]}'
                     f'</Description><NoDataValue>0</NoDataValue>{"".join(sources)}</VRTRasterBand>')
    path.write_text(f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><SRS>EPSG:32630</SRS>'
                    f'<GeoTransform>600000, 10, 0, 4300000, 0, -10</GeoTransform>{"".join(bands)}'
                    f'</VRTDataset>')
    return path


def run_predict(raster: Path, out: Path, model: Path, threads: int, extra=(), device: str | None = None) -> dict:
    """One ``sparsevit predict`` in a child process: wall time, peak RSS, its result event."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "sparsevit", "--json", "predict", str(raster), "--out", str(out),
           "--model", str(model), "--threads", str(threads), "--overwrite", *extra]
    if device:
        cmd += ["--device", device]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # the child's own high-water mark (VmHWM); ru_maxrss from wait4 would start at this
    # process's peak, inherited across fork+exec
    hwm = {"kb": 0}

    def poll():
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    kb = next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM"))
                hwm["kb"] = max(hwm["kb"], kb)
            except (OSError, StopIteration, ValueError):
                pass
            time.sleep(0.2)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    stdout_lines = []
    for line in proc.stdout:  # drain as it comes: a full pipe would stall the child
        stdout_lines.append(line)
    _, status, usage = os.wait4(proc.pid, 0)
    watcher.join(timeout=1)
    seconds = time.perf_counter() - t0
    err = proc.stderr.read()
    if status != 0:
        raise RuntimeError(f"predict failed ({status}): {err[-2000:]}")
    result = next(json.loads(ln) for ln in stdout_lines if '"event": "result"' in ln)
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(hwm["kb"] / 1024, 1),
            "km2": result["km2"], "tiles": result["counts"]["tiles"],
            "engine_seconds": result["seconds"], "device": result["device"],
            "precision": result["counts"].get("precision")}


def _same_class(a: Path, b: Path) -> float:
    """Share of pixels whose land-cover class agrees between two runs' maps (read in blocks)."""
    import rasterio

    fa, fb = (next(d.glob("*_landcover.tif")) for d in (a, b))
    same = total = 0
    with rasterio.open(fa) as ra, rasterio.open(fb) as rb:
        for _, w in ra.block_windows(1):
            x, y = ra.read(1, window=w), rb.read(1, window=w)
            same += int((x == y).sum())
            total += x.size
    return round(same / max(total, 1), 5)


def matmul_peak_gflops(threads: int, n: int = 2048, repeats: int = 5, dtype=torch.float32) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def flops_figures(report: dict, model: Path, threads: int) -> None:
    """Achieved model FLOP/s in the full-tile run vs the matmul peak. The peak is the best of
    three measurements: taken while other jobs share the CPU it would come out low and flatter
    the fraction (an earlier run read 56 instead of 180 GFLOP/s that way)."""
    peak = max(matmul_peak_gflops(threads) for _ in range(3))
    flops = model_flops_per_tile(model, 256)
    tiles_per_s = report["tile"]["tiles"] / report["tile"]["seconds"]
    achieved = flops["total"] * tiles_per_s / 1e9
    report["matmul_peak_gflops"] = round(peak, 1)
    report["model_gflop_per_tile"] = {k: round(v / 1e9, 3) for k, v in flops.items()}
    report["achieved_gflops"] = round(achieved, 2)
    # the goal's yardstick is the float32 matmul peak; a bf16 run is also set against its own
    report["flops_fraction_of_peak"] = round(achieved / peak, 4)
    if report["tile"].get("precision") == "bf16":
        peak16 = max(matmul_peak_gflops(threads, dtype=torch.bfloat16) for _ in range(3))
        report["matmul_peak_gflops_bf16"] = round(peak16, 1)
        report["flops_fraction_of_bf16_peak"] = round(achieved / peak16, 4)
    else:
        report.pop("matmul_peak_gflops_bf16", None)
        report.pop("flops_fraction_of_bf16_peak", None)
    fp32 = report.get("tile_fp32")
    if fp32:
        report["achieved_gflops_fp32"] = round(flops["total"] * fp32["tiles"] / fp32["seconds"] / 1e9, 2)
        report["flops_fraction_of_peak_fp32"] = round(report["achieved_gflops_fp32"] / peak, 4)


def model_flops_per_tile(model_dir: Path, tile: int) -> dict:
    """FLOPs of one tile through the pipeline's networks (ViT, Grad-CAM backward, segmenter)."""
    from torch.utils.flop_counter import FlopCounterMode
    b = load_bundle(model_dir)
    x = torch.randn(2, len(b.s2_bands), tile, tile)
    counts = {}
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        b.classifier(x)
    counts["classifier"] = fc.get_total_flops() / x.shape[0]  # per tile
    # Grad-CAM: one backward through the last block per class (FlopCounterMode cannot follow
    # autograd.grad): backward ~ 2x forward of that block. Only when the bundle's pseudomask
    # method reads it (the class-token method of a patch-head model does not).
    from sparsevit.pseudomasks.generate import needs_gradcam
    counts["gradcam_estimate"] = 0.0
    if needs_gradcam([b.pseudomask.method], b.classifier):
        with torch.no_grad():
            tok, _ = b.classifier.embed(x)
            for blk in b.classifier.blocks[:-1]:
                tok, _ = blk(tok)
            with FlopCounterMode(display=False) as fc:
                b.classifier.blocks[-1](tok)
        counts["gradcam_estimate"] = 2 * b.classifier.config.num_classes * fc.get_total_flops() / x.shape[0]
    if b.segmenter is not None:
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            predict_logits_padded(b.segmenter, x)
        counts["segmenter"] = fc.get_total_flops() / x.shape[0]
    counts["total"] = sum(counts.values())
    return counts


def _previous(out_dir: Path) -> dict:
    try:
        return json.loads((out_dir / "predict.json").read_text())
    except (OSError, ValueError):
        return {}


def gpu_run(args, model: Path, out_dir: Path) -> int:
    """The full-tile run on a GPU, merged into the CPU results (one prepared call on a lent
    machine): the sample first (CUDA start-up and cuDNN autotuning), then the 10980 px tile."""
    report = _previous(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        warm = run_predict(SAMPLE, tmp / "sample", model, args.threads, device=args.device)
        vrt = repeat_vrt(tmp / "tile.vrt", SAMPLE, args.size)
        t = run_predict(vrt, tmp / "tile", model, args.threads, ["--no-overview"], device=args.device)
    report["tile_gpu"] = {**t, "size_px": args.size, "sample_warmup": warm}
    report["gpu_name"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else args.device
    if args.size == 10980:
        report["full_tile_seconds_gpu"] = t["seconds"]
        report.pop("gpu_note", None)
    (out_dir / "predict.json").write_text(json.dumps(report, indent=2))
    if "tile" in report:
        write_table(report, out_dir)
    print(json.dumps(report["tile_gpu"], indent=2))
    print(f"full tile on {report['gpu_name']}: {t['seconds']} s (goal <= 30 s on one H100)")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=10980)
    ap.add_argument("--skip-4x", action="store_true")
    ap.add_argument("--flops-only", action="store_true",
                    help="re-measure only the matmul peak (best of several tries, idle machine "
                         "wanted) and recompute flops_fraction_of_peak from the stored tile run")
    ap.add_argument("--device", help="cpu (default) or cuda: on a GPU machine only the full-tile run "
                    "is made and stored as full_tile_seconds_gpu in the existing predict.json")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.skip_4x = 1536, True
    model = Path(args.model)
    shown_model = model.relative_to(REPO) if model.is_relative_to(REPO) else model
    report: dict = {"benchmark": "predict", "model": str(shown_model),
                    "threads": args.threads, "machine": f"{platform.machine()}, {os.cpu_count()} cpu",
                    "quick": args.quick}
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.device and args.device.startswith("cuda"):
        return gpu_run(args, model, out_dir)
    if args.flops_only:
        report = _previous(out_dir)
        flops_figures(report, model, args.threads)
        (out_dir / "predict.json").write_text(json.dumps(report, indent=2))
        write_table(report, out_dir)
        return 0
    previous = _previous(out_dir)
    # carried over before the first save, so a run that fails half-way loses none of them
    if args.skip_4x and previous.get("tile_4x") and args.size == 10980:
        # the 4x-area run takes ~30 min: a --skip-4x rerun keeps the last one, labelled
        for key in ("tile_4x", "peak_rss_mb_4x", "rss_growth_4x"):
            report[key] = previous.get(key)
        report["tile_4x_from"] = previous.get("tile_4x_from") or (
            f"an earlier run with model {previous.get('model')} (10980 px peak then: "
            f"{previous.get('peak_rss_mb_10980')} MB)")
    # a CPU rerun keeps the GPU figures of an earlier --device cuda run
    for key in ("full_tile_seconds_gpu", "tile_gpu", "gpu_name"):
        report[key] = previous.get(key)

    def save():
        (out_dir / "predict.json").write_text(json.dumps(report, indent=2))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        s = run_predict(SAMPLE, tmp / "sample", model, args.threads)
        report["sample"] = s
        print("sample:", s, flush=True)
        vrt = repeat_vrt(tmp / "tile.vrt", SAMPLE, args.size)
        t = run_predict(vrt, tmp / "tile", model, args.threads, ["--no-overview"])
        report["tile"] = {**t, "size_px": args.size}
        rate = t["km2"] / (t["seconds"] / 60)
        report["km2_per_min_cpu"] = round(rate, 1)
        report["full_tile_minutes_cpu"] = round(FULL_TILE_KM2 / rate, 2)
        report["full_tile_measured"] = args.size == 10980
        if args.size == 10980:
            report["peak_rss_mb_10980"] = t["peak_rss_mb"]
        print("tile:", report["tile"], flush=True)
        save()
        report.pop("tile_fp32", None)
        if t.get("precision") == "bf16":  # side by side: the same tile in float32, maps compared
            t32 = run_predict(vrt, tmp / "tile_fp32", model, args.threads, ["--no-overview", "--precision", "fp32"])
            report["tile_fp32"] = {**t32, "size_px": args.size,
                                   "same_class_share": _same_class(tmp / "tile", tmp / "tile_fp32")}
            report["bf16_speedup"] = round(t32["seconds"] / t["seconds"], 3)
            print("tile fp32:", report["tile_fp32"], flush=True)
            save()
        if not args.skip_4x:
            vrt4 = repeat_vrt(tmp / "tile4.vrt", SAMPLE, args.size * 2)
            f = run_predict(vrt4, tmp / "tile4", model, args.threads, ["--no-overview"])
            report["tile_4x"] = {**f, "size_px": args.size * 2}
            report["peak_rss_mb_4x"] = f["peak_rss_mb"]
            report["rss_growth_4x"] = round(f["peak_rss_mb"] / t["peak_rss_mb"] - 1, 4)
            print("4x:", report["tile_4x"], flush=True)
            save()
    flops_figures(report, model, args.threads)
    if report["full_tile_seconds_gpu"] is None:
        report["gpu_note"] = ("not measured yet: on a GPU machine run "
                              "`.venv/bin/python benchmarks/bench_predict.py --device cuda`")
    save()
    write_table(report, out_dir)
    return 0


def write_table(report: dict, out_dir: Path) -> None:
    md = ["# Large-scene prediction (`benchmarks/bench_predict.py`)", "",
          f"Model `{report['model']}`, {report['threads']} threads, {report['machine']}.", "",
          "| run | px | km2 | tiles | seconds | km2/min | peak RSS MB |", "|---|---|---|---|---|---|---|"]
    for key in ("sample", "tile", "tile_fp32", "tile_4x"):
        if key in report:
            r = report[key]
            md.append(f"| {key} | {r.get('size_px', 512)} | {r['km2']:.0f} | {r['tiles']} | {r['seconds']:.0f} | "
                      f"{r['km2'] / (r['seconds'] / 60):.0f} | {r['peak_rss_mb']:.0f} |")
    md += ["", f"- full 110 x 110 km tile on this CPU: **{report['full_tile_minutes_cpu']} min** "
               f"({'measured' if report['full_tile_measured'] else 'extrapolated'}; goal <= 10)",
           f"- peak RSS 10980 px: **{report.get('peak_rss_mb_10980')} MB** (goal <= 3000); 4x area: "
           f"**{report.get('peak_rss_mb_4x')} MB** (growth {report.get('rss_growth_4x')}; goal < 0.20)"
           + (f" - 4x run from {report['tile_4x_from']}" if report.get("tile_4x_from") else ""),
           f"- model {report['model_gflop_per_tile']['total']} GFLOP per 256 px tile; achieved "
           f"{report['achieved_gflops']} GFLOP/s vs matmul peak {report['matmul_peak_gflops']} GFLOP/s: "
           f"**{report['flops_fraction_of_peak']:.1%}** of peak"
           + (f" (runs in {report['tile']['precision']}; {report['flops_fraction_of_bf16_peak']:.1%} of the "
              f"bf16 matmul peak {report['matmul_peak_gflops_bf16']} GFLOP/s)"
              if report.get("flops_fraction_of_bf16_peak") is not None else ""),
           *([f"- float32 side by side (`--precision fp32`, the default before): "
              f"{report['tile_fp32']['seconds']:.0f} s, {report['achieved_gflops_fp32']} GFLOP/s = "
              f"{report['flops_fraction_of_peak_fp32']:.1%} of the float32 peak; bf16 is "
              f"**{report['bf16_speedup']}x** faster and gives the same class on "
              f"{report['tile_fp32']['same_class_share']:.2%} of the pixels"] if report.get("tile_fp32") else []),
           (f"- GPU ({report['gpu_name']}): full tile in **{report['full_tile_seconds_gpu']} s** "
            f"(goal <= 30 s on one H100)" if report.get("full_tile_seconds_gpu") is not None
            else f"- GPU: {report.get('gpu_note')}"), ""]
    (out_dir / "predict.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())

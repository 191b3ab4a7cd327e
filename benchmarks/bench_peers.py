"""Side by side on the same raster: our predict, the exported ONNX model driven as Deepness drives
it, and a plain PyTorch tile loop.

    python benchmarks/bench_peers.py                       # the bundled sample, 3 repeats
    python benchmarks/bench_peers.py --size 2048 --repeat 1  # a 2048 px VRT repeating the sample
    python benchmarks/bench_peers.py --raster scene.tif --threads 4

Rows, each timed from a loaded model to the finished class map (model loading, ONNX export and
session creation are outside the timings and reported apart):

* **ours**: ``predict_scene`` with the bundled model (classifier + attention pseudomask +
  segmenter, blended overlaps, COG outputs and class areas in a temporary folder; overview off).
* **deepness-onnx**: ``sparsevit export-model`` output in onnxruntime, the way the Deepness QGIS
  plugin (PUTvision/qgis-plugin-deepness, ``MapProcessorSegmentation``) drives a segmentor with the
  file's metadata: its extended extent (the raster grown right and *up* to ``N * stride + tile``),
  tiles of ``tile_size`` with ``tiles_overlap`` percent, batch size 1 (its default: one tile per
  ``run()``), preprocessing ``x / 255`` then ``(x - mean) / std``, threshold ``seg_thresh``
  (0) and arg-max, each tile's core (half the overlap cut on inner sides) pasted into one uint8
  map, cropped to the raster. Not emulated: QGIS' raster-provider reads (rasterio reads the same
  windows), its final polygonisation into one vector layer per class, and the GUI.
* **torch-loop**: the same tiles, reads and stitching as deepness-onnx, the same graph
  (``DeepnessSegmenter``) in PyTorch, batch 1, ``torch.no_grad``, no reader thread.

All rows use ``--threads`` (torch intra-op threads; onnxruntime ``intra_op_num_threads``).
Writes benchmarks/results/peers.json + peers.md.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "engine"))
sys.path.insert(0, str(REPO / "benchmarks"))

from sparsevit.bundle import default_model_path, load_bundle  # noqa: E402
from sparsevit.export.onnx import (  # noqa: E402
    DEEPNESS_DIVISOR,
    DeepnessSegmenter,
    deepness_overlap_px,
    export_onnx,
    read_metadata,
)
from sparsevit.io.scene import open_s2  # noqa: E402
from sparsevit.predict.scene import PredictOptions, predict_scene  # noqa: E402

SAMPLE = REPO / "resources" / "sample" / "Spain_7370579_S2Hand.tif"


# --- Deepness' tiling and stitching (map_processor.py, extent_utils.py, tile_params.py) ----------
def deepness_layout(width: int, height: int, tile: int, overlap_px: int) -> dict:
    """Deepness' extended image for a whole-layer run: the raster padded on the right and on top
    so that it is ``N * stride + tile`` px each way; tile origins; the raster's rows/cols in it."""
    stride = tile - overlap_px

    def missing(n: int) -> int:
        if n <= tile:
            return tile - n
        return (stride - (n - tile) % stride) % stride

    mx, my = missing(width), missing(height)
    w_ext, h_ext = width + mx, height + my
    nx = round((w_ext - tile) / stride) + 1
    ny = round((h_ext - tile) / stride) + 1
    return {"stride": stride, "half": overlap_px // 2, "w_ext": w_ext, "h_ext": h_ext,
            "nx": nx, "ny": ny, "row0": my}  # the raster starts at row ``my`` (ymax was raised)


def deepness_core(ix: int, iy: int, lay: dict, tile: int) -> tuple[slice, slice, slice, slice]:
    """``TileParams.get_slice_on_full_image_for_copying`` and its slice on the tile."""
    s, h = lay["stride"], lay["half"]
    x0, y0 = ix * s, iy * s
    x_min, x_max = x0 + h, x0 + tile - h - 1
    y_min, y_max = y0 + h, y0 + tile - h - 1
    if ix == 0:
        x_min -= h
    if iy == 0:
        y_min -= h
    if ix == lay["nx"] - 1:
        x_max += h
    if iy == lay["ny"] - 1:
        y_max += h
    full = (slice(y_min, y_max + 1), slice(x_min, x_max + 1))
    on_tile = (slice(y_min - y0, y_max + 1 - y0), slice(x_min - x0, x_max + 1 - x0))
    return (*full, *on_tile)


class TileReader:
    """Raw band values as stored (what QGIS' provider block gives Deepness), mapped onto the
    model's input channels the way a user sets Deepness' channel mapping; outside the raster 0
    (QGIS' no-data fill)."""

    def __init__(self, raster: Path, bands: list[str]):
        import rasterio
        with open_s2(raster, required=None) as scene:  # which file band holds which S2 band
            src = [scene.bands[b] for b in bands]
        files = {s.path for s in src}
        if len(files) != 1:
            raise SystemExit("bench_peers needs one multi-band raster (Deepness reads one layer)")
        self.ds = rasterio.open(next(iter(files)))
        self.indexes = [s.index for s in src]
        self.dtype = self.ds.dtypes[0]

    def read(self, row: int, col: int, tile: int) -> np.ndarray:
        """[tile, tile, C] (NHWC, as Deepness builds it) for the window at ``row``, ``col``."""
        from rasterio.windows import Window
        out = np.zeros((len(self.indexes), tile, tile), dtype=self.dtype)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + tile, self.ds.height), min(col + tile, self.ds.width)
        if r1 > r0 and c1 > c0:
            out[:, r0 - row:r1 - row, c0 - col:c1 - col] = self.ds.read(
                self.indexes, window=Window(c0, r0, c1 - c0, r1 - r0))
        return np.transpose(out, (1, 2, 0))

    def close(self) -> None:
        self.ds.close()


def deepness_preprocess(tiles_nhwc: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``ModelBase.preprocessing``: channels limited, x / 255 in float32, standardised, NCHW."""
    x = np.float32(tiles_nhwc * 1. / DEEPNESS_DIVISOR)
    return np.transpose((x - mean) / std, (0, 3, 1, 2))


def deepness_run(reader: TileReader, infer, meta: dict, width: int, height: int) -> tuple[np.ndarray, int]:
    """One whole-layer Deepness segmentation; ``infer(batch NCHW float32) -> probs NCHW``.
    Returns the class map [height, width] (uint8) and the number of tiles."""
    tile = int(meta["tile_size"])
    lay = deepness_layout(width, height, tile, deepness_overlap_px(tile, int(meta["tiles_overlap"])))
    mean = np.array(meta["standardization_mean"], dtype=np.float32)
    std = np.array(meta["standardization_std"], dtype=np.float32)
    thresh = float(meta["seg_thresh"])
    full = np.zeros((lay["h_ext"], lay["w_ext"]), np.uint8)
    n = 0
    for iy in range(lay["ny"]):
        for ix in range(lay["nx"]):
            img = reader.read(iy * lay["stride"] - lay["row0"], ix * lay["stride"], tile)
            probs = infer(deepness_preprocess(img[None], mean, std))
            probs[probs < thresh] = 0.0
            labels = np.argmax(probs, axis=1)[0]
            fy, fx, ty, tx = deepness_core(ix, iy, lay, tile)
            full[fy, fx] = labels[ty, tx]
            n += 1
    # seg_small_segment 0: medianBlur(1) is a copy; then the crop to the raster (base extent)
    return full[lay["row0"]:lay["row0"] + height, :width], n


def onnx_on_our_tiles(reader: TileReader, infer, meta: dict, bundle, width: int, height: int) -> np.ndarray:
    """Untimed check: the ONNX file on our own tile layout (``tile_windows``, the bundle's
    overlap), each tile's core pasted: tells the tiling's share of a difference to ours."""
    from sparsevit.io.tiles import tile_windows
    mean = np.array(meta["standardization_mean"], dtype=np.float32)
    std = np.array(meta["standardization_std"], dtype=np.float32)
    out = np.zeros((height, width), np.uint8)
    for t in tile_windows(width, height, bundle.tile, bundle.overlap):
        img = reader.read(int(t.window.row_off), int(t.window.col_off), bundle.tile)
        labels = np.argmax(infer(deepness_preprocess(img[None], mean, std)), axis=1)[0]
        c = t.core
        out[int(c.row_off):int(c.row_off + c.height), int(c.col_off):int(c.col_off + c.width)] = \
            t.crop(labels[:int(t.window.height), :int(t.window.width)])
    return out


# --- the three rows -----------------------------------------------------------------------------
def run_ours(bundle, raster: Path, threads: int, tmp: Path, k: int) -> tuple[float, dict]:
    out = tmp / f"ours_{k}"
    out.mkdir()
    opts = PredictOptions(overview=False, threads=threads, overwrite=True)  # else the defaults
    t0 = time.perf_counter()
    summary = predict_scene(bundle, raster, out, opts=opts)
    return time.perf_counter() - t0, summary


def ours_labels(bundle, summary: dict) -> np.ndarray:
    """Our land-cover map as class indices (255 where no data)."""
    import rasterio
    with rasterio.open(summary["outputs"]["landcover"]) as ds:
        values = ds.read(1)
    lut = np.full(256, 255, np.uint8)
    for i, v in enumerate(bundle.scheme.values):
        lut[v] = i
    return lut[values]


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raster", default=str(SAMPLE), help="one multi-band S2 raster (default: the sample)")
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--size", type=int, default=0,
                    help="instead of the raster, a SIZE x SIZE px VRT repeating it (bench_predict's)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per row (median reported)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    model = Path(args.model)
    bundle = load_bundle(model)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        raster = Path(args.raster)
        if args.size:
            from bench_predict import repeat_vrt
            raster = repeat_vrt(tmp / "repeat.vrt", raster, args.size)
        with open_s2(raster, required=bundle.min_bands) as scene:
            width, height = scene.grid.width, scene.grid.height
            res = scene.grid.res_m()
        km2 = width * height * res[0] * res[1] / 1e6

        t0 = time.perf_counter()
        onnx_path = tmp / "model.onnx"
        exported = export_onnx(bundle, onnx_path)
        export_s = time.perf_counter() - t0
        meta = read_metadata(onnx_path)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # as Deepness
        so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
        t0 = time.perf_counter()
        sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        session_s = time.perf_counter() - t0
        name = sess.get_inputs()[0].name

        def infer_onnx(x):
            return sess.run(None, {name: x})[0]

        # the graph that was exported, in PyTorch: it reads what the ONNX file reads (Deepness'
        # standardised tensor, i.e. the digital numbers for the default "dn" export)
        # (its own copy: predict_scene turns the bundle's segmenter to channels_last in place,
        # which makes NCHW calls several times slower)
        graph = DeepnessSegmenter(copy.deepcopy(bundle.segmenter).float().eval(), bundle.normalizer,
                                  bundle.s2_bands, meta["sparsevit_bands"]).eval()

        def infer_torch(x):
            # contiguous NCHW: Deepness' transposed (NHWC-strided) array as it is made the
            # PyTorch graph 10-20x slower in a trial run; onnxruntime copies it anyway
            with torch.no_grad():
                return graph(torch.from_numpy(np.ascontiguousarray(x))).numpy()

        reader = TileReader(raster, meta["sparsevit_bands"])
        results: dict = {}
        try:
            # warm-up (one-time kernel set-up) outside the timings
            first = deepness_preprocess(reader.read(0, 0, int(meta["tile_size"]))[None],
                                        np.array(meta["standardization_mean"], np.float32),
                                        np.array(meta["standardization_std"], np.float32))
            infer_onnx(first)
            infer_torch(first)
            secs = {"ours": [], "deepness-onnx": [], "torch-loop": []}
            for k in range(args.repeat):  # interleaved: a load change hits every row alike
                s, summary = run_ours(bundle, raster, args.threads, tmp, k)
                secs["ours"].append(s)
                results["ours"] = summary
                s = timed(lambda: results.__setitem__("deepness-onnx", deepness_run(
                    reader, infer_onnx, meta, width, height)), 1)
                secs["deepness-onnx"] += s
                s = timed(lambda: results.__setitem__("torch-loop", deepness_run(
                    reader, infer_torch, meta, width, height)), 1)
                secs["torch-loop"] += s
                print(f"repeat {k + 1}/{args.repeat}: " + ", ".join(
                    f"{r} {v[-1]:.2f} s" for r, v in secs.items()), flush=True)
            ours_map = ours_labels(bundle, results["ours"])
            same_layout = onnx_on_our_tiles(reader, infer_onnx, meta, bundle, width, height)
        finally:
            reader.close()
    load_after = os.getloadavg()
    onnx_map, deepness_tiles = results["deepness-onnx"]
    torch_map, _ = results["torch-loop"]
    valid = ours_map != 255
    ours_s = statistics.median(secs["ours"])
    what = {"ours": "predict_scene: classifier + pseudomask + segmenter, blended, COGs + areas",
            "deepness-onnx": "exported ONNX in onnxruntime, Deepness' tiling/stitching, batch 1",
            "torch-loop": "same tiles/stitching, same graph in PyTorch, batch 1, no reader thread"}
    rows = []
    for r, v in secs.items():
        med = statistics.median(v)
        rows.append({"row": r, "what": what[r], "seconds": round(med, 3),
                     "seconds_min": round(min(v), 3), "seconds_all": [round(x, 3) for x in v],
                     "km2_per_min": round(km2 / (med / 60), 1),
                     "speed_vs_ours": round(ours_s / med, 2)})
    report = {
        "benchmark": "peers", "raster": _shown(Path(args.raster)), "size_px": args.size or None,
        "width": width, "height": height, "km2": round(km2, 2), "model": _shown(model),
        "threads": args.threads, "repeat": args.repeat,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpu",
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "tiles": {"ours": results["ours"]["counts"]["tiles"], "deepness": deepness_tiles},
        "rows": rows,
        "agreement": {
            "deepness_onnx_vs_torch_loop": round(float((onnx_map == torch_map).mean()), 6),
            "deepness_onnx_vs_ours": round(float((onnx_map[valid] == ours_map[valid]).mean()), 4),
            "onnx_on_our_tile_layout_vs_ours": round(float((same_layout[valid] == ours_map[valid]).mean()), 4),
        },
        "deepness_settings": {k: meta[k] for k in ("tile_size", "tiles_overlap", "resolution",
                                                   "seg_thresh", "seg_small_segment")}
        | {"overlap_px": meta["sparsevit_deepness_overlap_px"], "batch_size": 1},
        "onnx": {"export_seconds": round(export_s, 2), "session_seconds": round(session_s, 2),
                 "size_mb": exported["size_mb"], "onnxruntime": ort.__version__},
        "torch": torch.__version__,
        "command": "nice -n 10 .venv/bin/python benchmarks/bench_peers.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
    }
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "peers.json").write_text(json.dumps(report, indent=2))
    write_table(report, out_dir)
    return 0


def _shown(p: Path) -> str:
    p = p.resolve()
    return str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p)


def write_table(report: dict, out_dir: Path) -> None:
    load = report["loadavg_before"][0], report["loadavg_after"][0]
    shared = max(load) > 0.5 * (os.cpu_count() or 1)
    md = ["# Peers side by side (`benchmarks/bench_peers.py`)", "",
          f"Raster `{report['raster']}`" + (f" repeated into a {report['size_px']} px VRT"
                                            if report["size_px"] else "")
          + f" ({report['width']} x {report['height']} px, {report['km2']} km2), model "
          f"`{report['model']}`, {report['threads']} threads, {report['machine']}, median of "
          f"{report['repeat']} interleaved runs. Tiles: ours {report['tiles']['ours']}, "
          f"Deepness layout {report['tiles']['deepness']}.", "",
          "| row | what | seconds (median) | min | km2/min | speed vs ours |",
          "|---|---|---|---|---|---|"]
    for r in report["rows"]:
        md.append(f"| {r['row']} | {r['what']} | {r['seconds']:.2f} | {r['seconds_min']:.2f} | "
                  f"{r['km2_per_min']:.0f} | {r['speed_vs_ours']:.2f}x |")
    d = report["deepness_settings"]
    md += ["",
           f"- Deepness settings from the exported file's metadata: tile {d['tile_size']} px, overlap "
           f"{d['tiles_overlap']}% = {d['overlap_px']} px, {d['resolution']} cm/px, seg_thresh "
           f"{d['seg_thresh']}, seg_small_segment {d['seg_small_segment']}, batch size 1 (its default).",
           f"- Same class per pixel: deepness-onnx vs torch-loop "
           f"{report['agreement']['deepness_onnx_vs_torch_loop']:.4%}; deepness-onnx vs ours "
           f"{report['agreement']['deepness_onnx_vs_ours']:.2%}; the same ONNX file on our tile "
           f"layout (cores pasted) vs ours {report['agreement']['onnx_on_our_tile_layout_vs_ours']:.2%}. "
           "The gap is not the export: Deepness' grid starts above the raster (the "
           "extent is grown up and right to N x stride + tile, filled with no data) and this "
           "segmenter's output depends on each tile's whole context; ours also blends overlaps, "
           "and reads the input as predict does (the chip's nearest-neighbour 20/60 m bands "
           "smoothed, io/blocky_bands.py), while the other rows read the raster as stored, as "
           "Deepness would.",
           "- ours does more per tile than the other rows: the ViT classifier and its attention "
           "pseudomask as well as the segmenter, blending, and it writes COGs + class areas. The "
           "deepness-onnx row leaves out QGIS' raster reads and its polygonisation of the map "
           "(one vector layer per class), so Deepness itself is slower than that row.",
           f"- Outside the timings: ONNX export {report['onnx']['export_seconds']} s, session "
           f"creation {report['onnx']['session_seconds']} s ({report['onnx']['size_mb']} MB file, "
           f"onnxruntime {report['onnx']['onnxruntime']}, torch {report['torch']}).",
           f"- Load average (1 min) before/after: {load[0]} / {load[1]}"
           + (f" - the machine was **shared** with other work during the run (load above half of "
              f"its {os.cpu_count()} cores): absolute times are pessimistic and vary from run to "
              "run (see `seconds_all` in peers.json; `min` is the least disturbed run). Rows run "
              "interleaved, but they do not suffer alike: the batch-1 PyTorch loop (many small "
              "OpenMP regions per tile) loses most when a core is taken away."
              if shared else " (machine otherwise idle)."),
           f"- Reproduce: `{report['command']}`", ""]
    (out_dir / "peers.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())

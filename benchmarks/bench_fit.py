"""A simulated analyst: tag N tiles from a pixel reference, ``sparsevit fit``, score the untagged tiles.

    python benchmarks/bench_fit.py                    # N = 8, 16, 32, 64 on both scenes (~1 h on 2 cores)
    python benchmarks/bench_fit.py --n 32 --scenes sen1floods11

Scenes (real pixels, reference masks never shown to the model):

- ``sen1floods11``: the bundled Sentinel-2 chip (512 px, Spain) with its hand-labelled water,
  user classes water / land;
- ``mosaic``: 512 px mosaics of held-out real EuroSAT-MS patches (the 113 test patches the
  default model never saw), user scheme of 4 classes: Water (River, SeaLake), Built-up
  (Residential, Industrial, Highway), Cropland (AnnualCrop, PermanentCrop), Vegetation (Forest,
  Pasture, HerbaceousVegetation).

The analyst's tags are image-level: a tile holds each class covering >= 5 % of its labelled
pixels. N tiles of the 64 px grid are chosen at random (seeded); pixels of the untagged tiles
are scored (at N = 64 every tile of a 512 px chip is tagged: those rows score the tagged tiles
and say so). Each mosaic row also trains the same segmenter on the true pixel masks of the same
tiles (``supervised``): what pixel labels of those tiles would buy. Wall time: fit + map.
Writes ``benchmarks/results/fit.json`` and ``fit.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "engine"))

import rasterio  # noqa: E402
import torch  # noqa: E402

from sparsevit.bands import S2_BANDS_NO_CIRRUS  # noqa: E402
from sparsevit.evaluation.metrics import EvaluationSet  # noqa: E402
from sparsevit.fit.grid import write_grid  # noqa: E402
from sparsevit.io.scene import Grid, open_s2  # noqa: E402
from sparsevit.progress import Progress  # noqa: E402
from sparsevit.schemes import IGNORE  # noqa: E402

TILE = 64
SEN_CLASSES = {"name": "water_land", "title": "water / land",
               "classes": [{"value": 1, "name": "water", "color": "#1f78b4"},
                           {"value": 2, "name": "land", "color": "#b2df8a"}]}
MOSAIC_CLASSES = {"name": "user4", "title": "4 user classes",
                  "classes": [{"value": 1, "name": "Water", "color": "#1f78b4"},
                              {"value": 2, "name": "Built-up", "color": "#e31a1c"},
                              {"value": 3, "name": "Cropland", "color": "#ffd92f"},
                              {"value": 4, "name": "Vegetation", "color": "#33a02c"}]}
EUROSAT_TO_USER4 = {"AnnualCrop": 2, "Forest": 3, "HerbaceousVegetation": 3, "Highway": 1,
                    "Industrial": 1, "Pasture": 3, "PermanentCrop": 2, "Residential": 1,
                    "River": 0, "SeaLake": 0}  # -> index in MOSAIC_CLASSES


def sen1floods11_scene(work: Path) -> tuple[Path, np.ndarray, dict]:
    sample = REPO / "resources" / "sample"
    with rasterio.open(sample / "Spain_7370579_LabelHand.tif") as ds:
        lab = ds.read(1)
    ref = np.full(lab.shape, IGNORE, np.uint8)
    ref[lab == 1], ref[lab == 0] = 0, 1  # index 0 water, 1 land
    return sample / "Spain_7370579_S2Hand.tif", ref, SEN_CLASSES


def mosaic_scene(work: Path, index: int) -> tuple[Path, np.ndarray, dict]:
    """A 512 px scene of 4-6 EuroSAT classes from held-out MS patches, written as a GeoTIFF."""
    from sparsevit.datasets.eurosat_real import RealPatchScenes
    from sparsevit.schemes import load_scheme

    ds = RealPatchScenes(REPO / "data", "test", index + 1, 512, seed=2026, classes_per_scene=(4, 6),
                         augment=False, band_dropout=False)
    s = ds[index]
    names = load_scheme("eurosat").names
    lut = np.full(256, IGNORE, np.uint8)
    for i, n in enumerate(names):
        lut[i] = EUROSAT_TO_USER4[n]
    ref = lut[s.mask]
    path = work / f"mosaic{index}.tif"
    prof = dict(driver="GTiff", width=512, height=512, count=len(S2_BANDS_NO_CIRRUS), dtype="uint16",
                crs="EPSG:32630", transform=rasterio.transform.from_origin(500000, 4200000, 10, 10))
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(np.clip(np.nan_to_num(s.s2), 1, 65535).round().astype(np.uint16))
        for i, b in enumerate(S2_BANDS_NO_CIRRUS, 1):
            dst.set_band_description(i, b)
    return path, ref, MOSAIC_CLASSES


def tag_cells(grid_gpkg: Path, out_gpkg: Path, ref: np.ndarray, names: list[str], n: int, seed: int
              ) -> tuple[list[tuple[int, int]], int]:
    """Copy the grid with ``classes`` filled in for ``n`` random cells (classes >= 5 % of the
    cell's labelled pixels); returns the tagged (row, col) and the number of cells."""
    from sparsevit.export.classes import import_pyogrio

    raw = import_pyogrio().raw
    meta, _, wkb, fields = raw.read(str(grid_gpkg))
    names_f = list(meta["fields"])
    rows, cols = fields[names_f.index("row")], fields[names_f.index("col")]
    order = np.random.default_rng(seed).permutation(len(rows))[:n]
    tags = np.array([""] * len(rows), dtype=object)
    chosen = []
    for i in order:
        cell = ref[rows[i]:rows[i] + TILE, cols[i]:cols[i] + TILE]
        cnt = np.bincount(cell[cell != IGNORE].ravel(), minlength=len(names))[:len(names)]
        if cnt.sum() == 0:
            continue
        tags[i] = ";".join(names[k] for k in range(len(names)) if cnt[k] / cnt.sum() >= 0.05)
        chosen.append((int(rows[i]), int(cols[i])))
    fields[names_f.index("classes")] = tags
    raw.write(str(out_gpkg), wkb, fields, names_f, layer="tiles", driver="GPKG",
              geometry_type="Polygon", crs=meta["crs"])
    return chosen, len(rows)


def score(pred_path: Path, ref: np.ndarray, tagged: list[tuple[int, int]], names: list[str],
          values: list[int]) -> dict:
    with rasterio.open(pred_path) as ds:
        pred_vals = ds.read(1)
    lut = np.full(256, IGNORE, np.uint8)
    for i, v in enumerate(values):
        lut[v] = i
    pred = lut[pred_vals]
    target = ref.copy()
    scored_tagged = len(tagged) * TILE * TILE >= ref.size
    if not scored_tagged:
        for r, c in tagged:
            target[r:r + TILE, c:c + TILE] = IGNORE
    ev = EvaluationSet(len(names), class_names=names)
    ev.add("scene", pred, target)
    sc = ev.summary()["scores"]
    return {"miou": sc["miou"], "per_class_iou": dict(zip(names, sc["per_class"]["iou"])),
            "overall_accuracy": sc["overall_accuracy"], "scored_pixels": int((target != IGNORE).sum()),
            "scored_tagged_tiles": scored_tagged}


def supervised_run(fit_out: Path, raster: Path, ref: np.ndarray, classes: dict, out: Path, seed: int,
                   refine_epochs: int) -> Path:
    """The weak run's tiles and classifier, the segmenter trained on the tiles' TRUE masks."""
    from sparsevit.bundle import load_bundle, write_bundle_json
    from sparsevit.fit.labels import read_labels
    from sparsevit.fit.pipeline import FitOptions, fit_segmenter
    from sparsevit.fit.tiles import TaggedTiles
    from sparsevit.predict import PredictOptions, predict_scene
    from sparsevit.refine.checkpoint import save_segmenter
    from sparsevit.training import save_checkpoint

    weak = load_bundle(fit_out / "model")
    base = load_bundle(None)
    opts = FitOptions(seed=seed, refine_epochs=refine_epochs)
    with open_s2(raster, required=base.min_bands) as sc:
        labels = read_labels(fit_out / "labels.gpkg", [sc.grid], tile=TILE, scheme=classes)
        held = set(weak.card["tiles"]["holdout_ids"])  # the weak model's training tiles, no more
        tiles = TaggedTiles([sc], [t for t in labels.tiles if t.id not in held], base.s2_bands, labels.scheme)
    masks = {t.id: ref[t.row:t.row + t.size, t.col:t.col + t.size] for t in tiles.tags}
    seg, rcfg, _ = fit_segmenter(base, tiles, masks, weak.normalizer, opts, Progress())
    model = out / "model"
    model.mkdir(parents=True, exist_ok=True)
    names = list(labels.scheme.names)
    save_checkpoint(model / "classifier", weak.classifier, weak.normalizer, names, labels.scheme.name)
    save_segmenter(model / "segmenter", seg, in_channels=len(base.s2_bands), class_names=names,
                   normalizer=weak.normalizer, s2_bands=list(base.s2_bands), scheme=labels.scheme.name)
    (model / "scheme.json").write_text(json.dumps(labels.scheme.to_dict()))
    write_bundle_json(model, classifier="classifier", segmenter="segmenter", pseudomask=weak.pseudomask,
                      tile=weak.tile, overlap=weak.overlap, card={}, scheme="scheme.json")
    (out / "map").mkdir(exist_ok=True)
    s = predict_scene(load_bundle(model), raster, out / "map", opts=PredictOptions(level="detailed", overview=False))
    return Path(s["outputs"]["landcover"])


def one_run(name: str, raster: Path, ref: np.ndarray, classes: dict, n: int, seed: int, work: Path,
            supervised: bool, epochs: int, refine_epochs: int, spectral: bool = True) -> dict:
    from sparsevit.fit.pipeline import FitOptions, fit

    run = work / f"{name}_n{n}{'' if spectral else '_nospectral'}"
    run.mkdir(parents=True, exist_ok=True)
    with open_s2(raster, required=None) as sc:
        grid: Grid = sc.grid
    write_grid(run / "grid.gpkg", [grid], [raster.name], TILE)
    names = [c["name"] for c in classes["classes"]]
    tagged, cells = tag_cells(run / "grid.gpkg", run / "labels.gpkg", ref, names, n, seed)
    t0 = time.perf_counter()
    summary = fit([raster], run / "labels.gpkg", run, FitOptions(classes=classes, seed=seed, epochs=epochs,
                  refine_epochs=refine_epochs, holdout=0.0, spectral=spectral), Progress(bar=sys.stderr.isatty()))
    seconds = time.perf_counter() - t0
    values = [c["value"] for c in classes["classes"]]
    row = {"scene": name, "spectral": spectral, "n_tagged": len(tagged), "cells": cells,
           "fit_and_map_seconds": round(seconds, 1),
           "weak": score(Path(summary["outputs"]["landcover"]), ref, tagged, names, values),
           "pseudomask": score(Path(summary["outputs"]["pseudomask"]), ref, tagged, names, values)}
    if supervised:
        lc = supervised_run(run, raster, ref, classes, work / f"{name}_n{n}_supervised", seed, refine_epochs)
        row["supervised"] = score(lc, ref, tagged, names, values)
    return row


def table(rows: list[dict]) -> str:
    lines = ["| scene | N tagged | map mIoU | water IoU | pseudomask mIoU | supervised mIoU | fit + map s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        water = r["weak"]["per_class_iou"].get("water") or r["weak"]["per_class_iou"].get("Water")
        sup = r.get("supervised", {}).get("miou")
        note = " (tagged tiles scored)" if r["weak"]["scored_tagged_tiles"] else ""
        lines.append(f"| {r['scene']} | {r['n_tagged']}{note} | {r['weak']['miou']:.3f} | "
                     f"{'-' if water is None else f'{water:.3f}'} | {r['pseudomask']['miou']:.3f} | "
                     f"{'-' if sup is None else f'{sup:.3f}'} | {r['fit_and_map_seconds']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[8, 16, 32, 64])
    ap.add_argument("--scenes", nargs="+", default=["sen1floods11", "mosaic"], choices=("sen1floods11", "mosaic"))
    ap.add_argument("--mosaics", type=int, default=1, help="mosaic scenes per N")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--refine-epochs", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-supervised", action="store_true")
    ap.add_argument("--no-spectral", action="store_true", help="fit without the per-pixel sharpening")
    ap.add_argument("--keep", metavar="DIR", help="keep the runs (grids, tags, models, maps) in DIR")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "fit.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        scenes = []
        if "sen1floods11" in args.scenes:
            scenes.append(("sen1floods11", *sen1floods11_scene(work)))
        if "mosaic" in args.scenes:
            for i in range(args.mosaics):
                scenes.append((f"mosaic{i}", *mosaic_scene(work, i)))
        for n in args.n:
            for name, raster, ref, classes in scenes:
                row = one_run(name, raster, ref, classes, n, args.seed, work,
                              supervised=not args.no_supervised,
                              epochs=args.epochs, refine_epochs=args.refine_epochs,
                              spectral=not args.no_spectral)
                rows.append(row)
                print(table([row]).splitlines()[-1], flush=True)
    result = {"benchmark": "bench_fit", "tile": TILE, "threads": args.threads, "seed": args.seed,
              "epochs": args.epochs, "refine_epochs": args.refine_epochs,
              "loadavg_start": load0, "loadavg_end": os.getloadavg()[0],
              "command": "python benchmarks/bench_fit.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    md = (f"# bench_fit: a simulated analyst tags N tiles of {TILE} px\n\n"
          f"`{result['command']}`; {args.threads} threads, load average {load0:.1f} -> "
          f"{result['loadavg_end']:.1f} (shared machine). Scores on the untagged tiles' pixels.\n\n"
          + table(rows) + "\n")
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

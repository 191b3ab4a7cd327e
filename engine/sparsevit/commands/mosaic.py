"""``sparsevit mosaic build``: write the EuroSAT-mosaic benchmark set as GeoTIFFs.

    sparsevit mosaic build --eurosat data/eurosat_ms --out DIR --split test --scenes 300 --seed 0

Writes ``DIR/s2/<id>.tif`` (uint16 S2 L1C DN, band descriptions), ``DIR/mask/<id>.tif`` (uint8 class
index, 255 = ignore, colour table of the scheme), ``DIR/labels.json`` (settings, source-patch
split, per-scene labels, class fractions and source patches) and ``DIR/labels.csv``; read it back
with :class:`sparsevit.datasets.MosaicFolderDataset`. The same arguments give the same files.

Georeference: scenes are real pixels from many UTM zones, so no true location exists. Each scene
gets a synthetic but plausible place in EPSG:32632 (UTM 32N, central Europe, 10 m pixels): scene
i at easting 300000 + (i % 50) * (size*10 + 1000), northing 5500000 - (i // 50) * (size*10 + 1000),
so scenes tile side by side in QGIS without overlapping.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from ..datasets.mosaic import EuroSatMosaic
from ..errors import OutputError
from ..io.atomic import atomic_path, write_text_atomic
from ..progress import Progress

CRS = "EPSG:32632"
PIXEL_M = 10.0


def scene_transform(i: int, size: int):
    step = size * PIXEL_M + 1000.0
    return from_origin(300000.0 + (i % 50) * step, 5500000.0 - (i // 50) * step, PIXEL_M, PIXEL_M)


def register(subparsers) -> None:
    p = subparsers.add_parser("mosaic", help="build the EuroSAT-mosaic benchmark set",
                              description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mosaic_command", metavar="ACTION")
    b = sub.add_parser("build", help="write mosaic scenes, masks and labels to a folder")
    b.add_argument("--eurosat", default="data/eurosat_ms", help="EuroSAT-MS folder (default %(default)s)")
    b.add_argument("--out", required=True, help="output folder (created if missing)")
    b.add_argument("--split", choices=("train", "test"), default="test")
    b.add_argument("--scenes", type=int, default=300)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--epoch", type=int, default=0, help="train split only: which epoch's scenes")
    b.add_argument("--size", type=int, default=256)
    b.add_argument("--classes", choices=("eurosat", "dfc2020", "dfc2020_8"), default="eurosat")
    b.add_argument("--min-classes", type=int, default=1)
    b.add_argument("--max-classes", type=int, default=4)
    b.add_argument("--min-fraction", type=float, default=0.02,
                   help="smallest region kept and labelled, as a fraction of the scene")
    b.set_defaults(func=run_build)
    p.set_defaults(func=lambda args, progress: (p.print_help(), 1)[1])


def run_build(args: argparse.Namespace, progress: Progress) -> int:
    ds = EuroSatMosaic(args.eurosat, split=args.split, num_scenes=args.scenes, size=args.size,
                       seed=args.seed, classes_per_scene=(args.min_classes, args.max_classes),
                       min_fraction=args.min_fraction, classes=args.classes, epoch=args.epoch)
    meta = build_folder(ds, Path(args.out), progress)
    progress.result(out=str(args.out), scenes=len(meta["scenes"]), split=args.split)
    progress.log(f"wrote {len(meta['scenes'])} scenes to {args.out}")
    return 0


def build_folder(ds: EuroSatMosaic, out: Path, progress: Progress | None = None) -> dict:
    progress = progress or Progress(json_lines=False, bar=False)
    try:
        (out / "s2").mkdir(parents=True, exist_ok=True)
        (out / "mask").mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder ({exc.strerror or exc})", path=out,
                          fix="choose a folder you can write to") from exc
    scheme = ds.scheme
    cmap = {i: scheme.rgb(v) + (255,) for i, v in enumerate(scheme.values)}
    cmap[255] = (0, 0, 0, 0)
    scenes = []
    with progress.stage("mosaic", total=len(ds)) as st:
        for i in range(len(ds)):
            sample, sources = ds.generate(i)
            profile = dict(driver="GTiff", width=ds.size, height=ds.size, crs=CRS,
                           transform=scene_transform(i, ds.size), compress="deflate", tiled=True,
                           blockxsize=256 if ds.size % 256 == 0 else 128,
                           blockysize=256 if ds.size % 256 == 0 else 128)
            s2_rel, mask_rel = f"s2/{sample.id}.tif", f"mask/{sample.id}.tif"
            with atomic_path(out / s2_rel) as tmp:
                with rasterio.open(tmp, "w", count=sample.s2.shape[0], dtype="uint16",
                                   predictor=2, **profile) as dst:
                    # EuroSAT DNs are uint16: storing them as such is lossless and half the size
                    dst.write(sample.s2.astype(np.uint16))
                    dst.descriptions = ds.s2_bands
                    dst.update_tags(scheme=scheme.name, source="EuroSAT-MS mosaic",
                                    units="S2 L1C digital numbers (reflectance x 10000)")
            with atomic_path(out / mask_rel) as tmp:
                with rasterio.open(tmp, "w", count=1, dtype="uint8", nodata=255, **profile) as dst:
                    dst.write(sample.mask, 1)
                    dst.write_colormap(1, cmap)
                    dst.set_band_description(1, f"class index in scheme {scheme.name}")
                    dst.update_tags(1, **{f"class_{j}": n for j, n in enumerate(scheme.names)})
            counts = np.bincount(sample.mask.ravel(), minlength=256)[:scheme.num_classes]
            scenes.append({"id": sample.id, "s2": s2_rel, "mask": mask_rel,
                           "labels": scheme.label_names(sample.labels),
                           "fractions": {n: round(float(c) / sample.mask.size, 4)
                                         for n, c in zip(scheme.names, counts) if c},
                           "sources": sorted(set(sources))})
            st.advance()
    meta = {"format": "sparsevit-eurosat-mosaic", "version": 1, "scheme": scheme.name,
            "split": ds.split, "seed": ds.seed, "epoch": ds.epoch, "size": ds.size,
            "classes_per_scene": list(ds.classes_per_scene), "min_fraction": ds.min_fraction,
            "label_rule": "class present in the mask (every kept region covers >= min_fraction)",
            "s2_bands": list(ds.s2_bands), "crs": CRS, "pixel_size_m": PIXEL_M,
            "georeference": "synthetic placement in UTM 32N; see sparsevit.commands.mosaic",
            "source_patches": {k: list(v) for k, v in ds.source_ids.items()},
            "scenes": scenes}
    write_text_atomic(out / "labels.json", json.dumps(meta, indent=1) + "\n")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "s2", "mask", "labels"])
    for s in scenes:
        w.writerow([s["id"], s["s2"], s["mask"], ";".join(s["labels"])])
    write_text_atomic(out / "labels.csv", buf.getvalue())
    return meta

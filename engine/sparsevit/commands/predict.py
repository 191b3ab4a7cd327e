"""``sparsevit predict``: a Sentinel-2 (+ S1) raster of any size -> land-cover map and friends."""
from __future__ import annotations

from pathlib import Path

from ..bands import parse_band_order
from ..errors import InputError, OutputError
from .options import add_band_options, add_compute_options


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="map land cover on a Sentinel-2 (+ Sentinel-1) raster of any size",
        description="Tile the raster, run the classifier (attention pseudomask) and the refined "
                    "segmenter, and write a land-cover COG with colours and class names (the "
                    "model's classes and/or their coarse view, see --level), the "
                    "pseudomask, a confidence raster, class areas (CSV/JSON), optional polygons "
                    "and attention maps, and a PNG overview.")
    p.add_argument("s2", nargs="*", metavar="S2", help="multi-band raster, band folder or band files")
    p.add_argument("--scenes", metavar="LIST",
                   help="many scenes instead of S2: a text file (one path per line) or a folder of "
                        "scenes; each goes to OUT/<scene>/, finished ones are skipped (rerun to resume)")
    p.add_argument("--worker", metavar="I/N",
                   help="with --scenes: this process does every N-th scene from the I-th (0-based); "
                        "default from torchrun's RANK/WORLD_SIZE, else all")
    p.add_argument("--s1", nargs="+", metavar="PATH", help="Sentinel-1 VV/VH (models trained with S1)")
    p.add_argument("--model", help="model folder (bundle.json) or classifier checkpoint; "
                                   "default: the bundled default model")
    p.add_argument("--out", required=True, help="output folder (must exist)")
    p.add_argument("--name", help="file name stem of the outputs (default: the input's)")
    p.add_argument("--area", metavar="XMIN,YMIN,XMAX,YMAX",
                   help="only this rectangle, in the raster's CRS (or --area-crs)")
    p.add_argument("--area-crs", metavar="CRS", help="CRS of --area, e.g. EPSG:4326")
    p.add_argument("--tile", type=int, help="tile size in pixels (default: the model's)")
    p.add_argument("--overlap", type=int, help="tile overlap in pixels (default: the model's)")
    p.add_argument("--no-blend", action="store_true",
                   help="cut each tile's core out instead of blending overlapping tiles "
                        "(faster by a few percent, tile-shaped seams)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--attention", action="store_true", help="also write per-head attention maps")
    p.add_argument("--polygons", action="store_true", help="also write land-cover polygons (GeoPackage)")
    p.add_argument("--level", choices=("detailed", "coarse", "both"), default=None,
                   help="class level of the land-cover map: detailed (the model's classes, e.g. "
                        "the 10 EuroSAT ones), coarse (Water, Built-up, Cropland, Grassland, "
                        "Forest, through resources/mappings) or both; default: both, or detailed "
                        "for a model whose classes have no coarse mapping")
    p.add_argument("--no-stats", action="store_true", help="skip the class-area tables")
    p.add_argument("--no-cloud-mask", action="store_true",
                   help="map cloudy pixels too; by default they are no data in the maps, -1 in the "
                        "confidence and left out of the class areas (mask from the product's SCL / "
                        "MSK_CLASSI / MSK_CLOUDS_B00.gml / cloud_mask, else a brightness flag for thick "
                        "clouds; shadows projected where the input gives the sun's position)")
    p.add_argument("--no-overview", action="store_true", help="skip the PNG overview")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_compute_options(p)
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="bf16 autocast: ~1.8x faster segmenter on CPUs with AVX512-BF16/AMX, "
                        "slightly different maps (98.9 %% of a full tile's pixels the same); "
                        "auto = bf16 on GPUs and on CPUs with native bf16, else fp32")
    add_band_options(p)
    p.set_defaults(func=run, uses_device=True)


def _parse_area(text: str | None, area_crs: str | None, s2) -> tuple | None:
    if not text:
        return None
    try:
        vals = tuple(float(v) for v in text.split(","))
        assert len(vals) == 4 and vals[0] < vals[2] and vals[1] < vals[3]
    except (ValueError, AssertionError):
        raise InputError(f"--area '{text}' is not XMIN,YMIN,XMAX,YMAX",
                         fix="e.g. --area 500000,4200000,510000,4210000") from None
    if area_crs:
        from rasterio.warp import transform_bounds

        from ..export.vectorize import parse_crs
        from ..io.scene import open_s2
        with open_s2(s2, required=None) as sc:
            if sc.grid.crs is None:
                raise InputError("the raster has no CRS, so --area-crs cannot be used", path=s2[0],
                                 fix="give --area in pixel-grid coordinates of the raster")
            vals = transform_bounds(parse_crs(area_crs, "--area-crs"), sc.grid.crs, *vals, densify_pts=21)
    return vals


def _options(args, area=None):
    from ..predict import PredictOptions

    return PredictOptions(tile=args.tile, overlap=args.overlap, blend=not args.no_blend,
                          batch_size=args.batch_size, area=area,
                          attention=args.attention, polygons=args.polygons,
                          stats=not args.no_stats, overview=not args.no_overview,
                          overwrite=args.overwrite, device=args.device, threads=args.threads,
                          precision=args.precision,
                          band_order=parse_band_order(args.band_order), level=args.level,
                          radiometry=args.radiometry,
                          smooth_blocky=not args.keep_blocky_bands,
                          cloud_mask=not args.no_cloud_mask)


def _run_batch(args, progress) -> int:
    import os

    from ..bundle import load_bundle
    from ..predict.batch import predict_scenes, read_scene_list, worker_from
    from ..predict.levels import coarse_mapping

    for flag, given in (("--s1", args.s1), ("--name", args.name), ("--area", args.area)):
        if given:
            raise InputError(f"{flag} applies to one scene, not to --scenes",
                             fix="run predict on that scene alone")
    out = Path(args.out)
    if not out.is_dir():
        raise OutputError("output folder does not exist", path=out, fix="create it first")
    scenes = read_scene_list(args.scenes)
    worker = worker_from(args.worker)
    bundle = load_bundle(args.model)
    coarse_mapping(bundle, args.level)
    opts = _options(args)
    if opts.device in (None, "auto") and "LOCAL_RANK" in os.environ:
        import torch  # torchrun on a machine with GPUs: one GPU per local worker
        if torch.cuda.is_available():
            opts.device = f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
    record = predict_scenes(bundle, scenes, out, opts, worker, progress)
    progress.result(batch=record)
    if not progress.json_lines:
        print(f"worker {worker.rank + 1}/{worker.count}: {len(record['done'])} done, "
              f"{len(record['skipped'])} already finished, {len(record['failed'])} failed "
              f"({record['seconds']} s)")
        for f in record["failed"]:
            print(f"  failed: {f['scene']}: {f['error']}")
    return 2 if record["failed"] else 0  # each failure is a user error of its scene


def run(args, progress) -> int:
    if bool(args.scenes) == bool(args.s2):
        raise InputError("give either the scene (S2 ...) or --scenes LIST",
                         fix="e.g. 'sparsevit predict scene.tif --out maps' or "
                             "'sparsevit predict --scenes scenes.txt --out maps'")
    if args.scenes:
        return _run_batch(args, progress)
    if args.worker:
        raise InputError("--worker only applies to --scenes")
    s2 = args.s2 if len(args.s2) > 1 else args.s2[0]
    # importing the model code and reading the weights takes seconds on a CPU: the panel shows
    # it as a stage of its own instead of a bar stuck at 0 %
    with progress.stage("load model"):
        from ..bundle import load_bundle
        from ..predict import predict_scene
        from ..predict.levels import coarse_mapping
        bundle = load_bundle(args.model)
    coarse_mapping(bundle, args.level)  # a model without a coarse level fails now, not after hours
    opts = _options(args, _parse_area(args.area, args.area_crs, args.s2))
    s1 = None if not args.s1 else (args.s1 if len(args.s1) > 1 else args.s1[0])
    summary = predict_scene(bundle, s2, Path(args.out), s1=s1, opts=opts, progress=progress,
                            stem=args.name)
    if not progress.json_lines:
        print(f"land cover ({summary['device']}, {summary['seconds']} s"
              + (f", {summary['km2']} km2" if summary.get("km2") else "") + "):")
        for k, v in summary["outputs"].items():
            print(f"  {k:<17} {v}")
        for key in ("class_areas", "class_areas_coarse"):
            if key == "class_areas_coarse" and summary.get(key) and summary.get("class_areas"):
                print("  coarse:")
            for row in summary.get(key, []):
                if row["hectares"]:
                    print(f"  {row['name']:<22} {row['hectares']:>12.1f} ha  {row['percent']:5.1f} %")
    return 0

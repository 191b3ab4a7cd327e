"""``sparsevit fit``: train a model on your own image-level labels and map the raster with it.

    sparsevit grid scene.tif --out grid.gpkg            # then tag cells with the classes they contain
    sparsevit fit scene.tif --labels grid.gpkg --out runs/myfit
    sparsevit fit scene.tif --labels training.gpkg --field MC_info --classes myclasses.json --out runs/myfit

Labels: a tile grid whose ``classes`` field lists each cell's classes, or points, lines or
polygons with a class field (``--field``; a tile holds every class whose labels touch it).
Untagged tiles are unlabelled, not negatives. Writes ``OUT/model`` (a model bundle for
``sparsevit predict --model``), ``OUT/map`` (its map of every raster) and ``OUT/fit.json``.
"""
from __future__ import annotations

import argparse

from ..bands import parse_band_order
from .options import add_band_options, add_compute_options


def register(subparsers) -> None:
    p = subparsers.add_parser("fit", help="train on your own image-level tags and map the raster",
                              description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rasters", nargs="+", metavar="RASTER", help="Sentinel-2 raster(s), band folder or SAFE")
    p.add_argument("--labels", required=True, help="tile grid or labelled points/lines/polygons (any OGR format)")
    p.add_argument("--layer", help="layer of --labels (when it has several)")
    p.add_argument("--field", help="class field of a point/line/polygon layer (names or integer codes); "
                                   "omit for a tile grid")
    p.add_argument("--classes", metavar="SCHEME.json",
                   help="your class scheme (names, values, colours; format of resources/schemes); "
                        "default: the distinct label values")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--tile", type=int, help="tile size in px: for feature labels the tiles they tag (default: the "
                                            "model's tag tile, 64); for a grid the window each cell is read as "
                                            "(default: the grid's own cell size)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--base", metavar="MODEL", help="model to fine-tune (default: the bundled default model)")
    src.add_argument("--from-scratch", action="store_true", help="train a new network instead")
    p.add_argument("--epochs", type=int, default=8, help="classifier epochs (each >= 256 tile samples)")
    p.add_argument("--refine-epochs", type=int, default=12, help="segmenter epochs per iteration")
    p.add_argument("--iterations", type=int, default=2, help="refinement iterations")
    p.add_argument("--holdout", type=float, default=0.2, help="share of tagged tiles held out for the card")
    p.add_argument("--no-spectral", action="store_true",
                   help="train the segmenter on the attention pseudomasks as they are (default: "
                        "sharpened per pixel from the tiles' spectra first)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-predict", action="store_true", help="only train; do not map the rasters")
    p.add_argument("--resume", action="store_true", help="reuse the finished stages of an interrupted run")
    p.add_argument("--overwrite", action="store_true", help="replace a model and map already in --out")
    add_compute_options(p)
    add_band_options(p)
    p.set_defaults(func=run, uses_device=True)


def run(args, progress) -> int:
    from ..fit.pipeline import FitOptions, fit

    opts = FitOptions(layer=args.layer, field=args.field, classes=args.classes, tile=args.tile,
                      base=args.base, from_scratch=args.from_scratch, epochs=args.epochs,
                      refine_epochs=args.refine_epochs, iterations=args.iterations, holdout=args.holdout,
                      spectral=not args.no_spectral,
                      seed=args.seed, band_order=parse_band_order(args.band_order),
                      radiometry=args.radiometry, smooth_blocky=not args.keep_blocky_bands,
                      predict=not args.no_predict, resume=args.resume, overwrite=args.overwrite,
                      threads=args.threads, device=args.device)
    summary = fit(args.rasters, args.labels, args.out, opts, progress)
    if not progress.json_lines:
        print(f"fitted in {summary['seconds']} s: {summary['tiles']}")
        for k, v in summary["metrics"].items():
            print(f"  {k:<30} {v:.3f}")
        for k, v in summary["outputs"].items():
            print(f"  {k:<17} {v}")
    return 0

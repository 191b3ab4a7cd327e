"""``sparsevit export``: a classified raster as COG (any CRS), class polygons, or class areas."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io.writers import check_output_path

FORMATS = {".tif": "cog", ".tiff": "cog", ".gpkg": "gpkg", ".csv": "csv", ".json": "json"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export a classified raster as COG, polygons (GeoPackage) or class areas",
        description="Export a classified raster: a Cloud Optimized GeoTIFF (optionally in another "
                    "CRS, nearest-neighbour, colours and class names kept), class polygons in a "
                    "GeoPackage (one feature per patch, joined across processing blocks), or a class-area table "
                    "(CSV/JSON, hectares on the ground in any CRS). The format follows the "
                    "output extension unless --format is given. --reclass merges or renumbers "
                    "classes first; --classes then sets the names and colours written.")
    p.add_argument("classified", metavar="CLASSIFIED.tif", help="the classified raster")
    p.add_argument("--out", required=True, metavar="DST", help="output file (.tif, .gpkg, .csv, .json)")
    p.add_argument("--format", choices=("cog", "gpkg", "csv", "json"),
                   help="output format (default: from the --out extension)")
    p.add_argument("--crs", metavar="CRS", help="target CRS for cog/gpkg, e.g. EPSG:3035")
    p.add_argument("--resolution", type=float, metavar="SIZE",
                   help="cog: pixel size in target-CRS units (default: about the source's)")
    p.add_argument("--scheme", metavar="NAME",
                   help="class scheme (default: the raster's own class table)")
    p.add_argument("--classes", metavar="FILE.json",
                   help='names and colours to write, e.g. [{"value": 9, "name": "Lake", '
                        '"colour": "#1c0dff"}]; values left out keep their own (all formats)')
    p.add_argument("--reclass", metavar="MAPPING|FILE.json",
                   help="reclassify first: a mapping of resources/mappings (e.g. "
                        "eurosat_to_eurosat_coarse) or a file {\"classes\": [new classes], "
                        "\"map\": {\"old value\": new value or null}}; null and unmapped "
                        "values become nodata (all formats)")
    p.add_argument("--min-area-pixels", type=int, default=0, metavar="N",
                   help="gpkg: merge patches smaller than N pixels into their neighbour first")
    p.add_argument("--simplify", type=float, metavar="PIXELS",
                   help="gpkg: simplify polygon outlines by this tolerance in pixels")
    p.add_argument("--layer", help="gpkg: layer name (default: the output file name)")
    p.add_argument("--block-size", type=int, default=2048, metavar="PX",
                   help="gpkg: polygonize in blocks of PX pixels (bounds memory; patches crossing blocks are joined)")
    p.set_defaults(func=run)


def output_format(out: str | Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    suffix = Path(out).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"cannot tell the format from the extension '{suffix or '(none)'}'",
                         path=out, fix="name the output .tif, .gpkg, .csv or .json, or pass --format")
    return FORMATS[suffix]


def export(args: argparse.Namespace, progress=None) -> dict[str, Any]:
    fmt = output_format(args.out, args.format)
    src, out = Path(args.classified), Path(args.out)
    if not src.exists():
        raise InputError("classified raster not found", path=src, fix="check the path")
    if src.resolve() == out.resolve():
        raise InputError("the output would replace the input", path=out,
                         fix="choose another output path")
    check_output_path(out)
    if fmt != "gpkg":
        for opt in ("min_area_pixels", "simplify", "layer"):
            if getattr(args, opt):
                raise InputError(f"--{opt.replace('_', '-')} only applies to the gpkg format",
                                 fix="drop it or export to .gpkg")
    if fmt == "cog":
        from ..export.reproject import export_classified
        res = export_classified(src, out, args.crs, args.resolution, scheme=args.scheme,
                                classes=args.classes, reclass=args.reclass, progress=progress)
        return {"format": fmt, **res}
    if args.resolution is not None:
        raise InputError("--resolution only applies to the cog format", fix="drop it or export to .tif")
    if fmt == "gpkg":
        from ..export.vectorize import vectorize
        res = vectorize(src, out, args.scheme, min_area_pixels=args.min_area_pixels,
                        simplify=args.simplify, crs=args.crs, layer=args.layer,
                        block_size=args.block_size, classes=args.classes,
                        reclass=args.reclass, progress=progress)
        return {"format": fmt, **res}
    if args.crs:
        raise InputError("--crs does not apply to class areas: they are ground areas in any CRS",
                         fix="drop --crs")
    from ..export.stats import area_summary, write_areas_csv, write_areas_json
    summary = area_summary(src, args.scheme, classes=args.classes, reclass=args.reclass,
                           progress=progress)
    (write_areas_csv if fmt == "csv" else write_areas_json)(out, summary)
    return {"format": fmt, "path": str(out), **summary}


def run(args: argparse.Namespace, progress) -> int:
    result = export(args, progress)
    if progress is not None and progress.json_lines:
        progress.result(**result)
        return 0
    if result["format"] in ("csv", "json"):
        from ..export.stats import format_areas
        print(format_areas(result))
    elif result["format"] == "gpkg":
        print(f"{result['features']} polygons in {result['blocks']} block(s), CRS {result['crs']}")
    else:
        g = result["grid"]
        print(f"{g['width']} x {g['height']} px, CRS {g['crs']}, scheme {result['scheme']}")
    print(f"written: {result['path']}")
    return 0

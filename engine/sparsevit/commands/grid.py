"""``sparsevit grid``: an editable tile grid over a raster, for tagging tiles with their classes.

    sparsevit grid scene.tif --out grid.gpkg            # tiles of the default model's tag size
    sparsevit grid scene.tif --tile 128 --area=-0.78,38.09,-0.74,38.12 --area-crs EPSG:4326 --out grid.gpkg

Tag the cells (field ``classes``: class names joined by ";", e.g. in QGIS with the plugin's
tagging tool or the attribute table), then train with ``sparsevit fit scene.tif --labels grid.gpkg``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..bands import parse_band_order
from .options import add_band_options

# the default model's first training stage saw single 64 px patches: the scale its tags mean
DEFAULT_TAG_TILE = 64


def register(subparsers) -> None:
    p = subparsers.add_parser("grid", help="write a tile grid (GeoPackage) to tag with classes",
                              description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rasters", nargs="+", metavar="RASTER", help="Sentinel-2 raster(s), band folder or SAFE")
    p.add_argument("--out", required=True, help="the grid GeoPackage to write (*.gpkg)")
    p.add_argument("--tile", type=int, help="cell size in pixels (default: the model's tag tile, 64 px)")
    p.add_argument("--model", help="the model whose tag tile size to use (default: the bundled model)")
    p.add_argument("--area", metavar="XMIN,YMIN,XMAX,YMAX", help="only this rectangle (raster CRS or --area-crs)")
    p.add_argument("--area-crs", metavar="CRS", help="CRS of --area, e.g. EPSG:4326")
    add_band_options(p, radiometry=False)
    p.set_defaults(func=run)


def _tag_tile(model) -> int:
    """The model's tag tile from its bundle.json card, without loading the model (no torch)."""
    import json

    from ..paths import default_model_path

    folder = Path(model) if model else default_model_path()
    meta = folder / "bundle.json"
    if not meta.is_file():
        return DEFAULT_TAG_TILE
    try:
        card = json.loads(meta.read_text(encoding="utf-8")).get("card", {})
        return int(card.get("tag_tile", DEFAULT_TAG_TILE))
    except (ValueError, TypeError, AttributeError):
        return DEFAULT_TAG_TILE


def run(args, progress) -> int:
    from rasterio.windows import from_bounds

    from ..fit.grid import write_grid
    from ..io.scene import open_s2
    from .predict import _parse_area

    tile = args.tile if args.tile is not None else _tag_tile(args.model)
    grids, windows = [], []
    for r in args.rasters:
        with open_s2(r, band_order=parse_band_order(args.band_order), required=None) as sc:
            grids.append(sc.grid)
            area = _parse_area(args.area, args.area_crs, [r])
            windows.append(None if area is None else from_bounds(*area, transform=sc.grid.transform))
    summary = write_grid(args.out, grids, [Path(r).name for r in args.rasters], tile, windows)
    progress.result(**summary)
    if not progress.json_lines:
        print(f"{summary['cells']} cells of {tile} px -> {summary['outputs']['grid']} (layer '{summary['layer']}')")
    return 0

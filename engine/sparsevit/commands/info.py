"""``sparsevit info``: what the engine finds in a Sentinel-1/2 input and what it would do with it."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from ..bands import S2_RESOLUTION_M, parse_band_order
from ..errors import InputError
from ..io.processing_level import LevelPlan, plan_for_scene
from ..io.scene import S1Scene, S2Scene, _expand, _open, ensure_has_data, open_s1, open_s2
from ..model_bands import read_model_bands, read_trained_level
from ..paths import default_model_path
from .options import add_band_options


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "info", help="show the bands, grid and CRS found in Sentinel-2/Sentinel-1 rasters",
        description="Show which Sentinel-2/1 bands are found (and how), the grid, CRS, "
                    "resolution, no-data share, value range and what the engine would do.")
    p.add_argument("rasters", nargs="+", metavar="RASTER",
                   help="a multi-band raster, a folder with one file per band, or band files")
    p.add_argument("--s1", nargs="+", metavar="PATH",
                   help="Sentinel-1 VV/VH input to align with the Sentinel-2 input")
    p.add_argument("--model", metavar="MODEL",
                   help="model folder or .safetensors whose band needs to check the input against "
                        "(default: the bundled default model)")
    add_band_options(p)
    p.set_defaults(func=run)


def _group(rasters: Sequence[str | Path]) -> list[list[Path]]:
    """Several single-band files form one product; anything else is one product per path."""
    paths = [Path(r) for r in rasters]
    # a zipped SAFE product is a product, not a band file (GDAL's SENTINEL2 driver would claim it)
    if len(paths) > 1 and all(p.is_file() and p.suffix.lower() != ".zip" for p in paths):
        counts = []
        for p in paths:
            with _open(p) as ds:
                counts.append(ds.count)
        if all(c == 1 for c in counts):
            return [paths]
    return [[p] for p in paths]


def _open_any(paths: list[Path], band_order, radiometry: str | None = None,
              smooth_blocky: bool = True) -> S2Scene | S1Scene:
    try:
        return open_s2(paths, band_order=band_order, required=None, radiometry=radiometry,
                       smooth_blocky=smooth_blocky)
    except InputError as s2_err:
        if band_order or "no Sentinel-2 bands" not in s2_err.problem:
            raise
        try:
            return open_s1(paths)
        except InputError as s1_err:
            if "missing Sentinel-1 bands" not in s1_err.problem:
                raise
            raise InputError("neither Sentinel-2 bands (B01..B12) nor Sentinel-1 VV/VH found",
                             path=", ".join(str(p) for p in _expand(paths)),
                             fix="name the bands (descriptions or file names) or pass --band-order"
                             ) from s1_err


def _nominal(band: str, res_m: float) -> float:
    """Geographic grids give 58 m for a 60 m band; say 60 m when that is what it is."""
    nominal = S2_RESOLUTION_M.get(band, res_m)
    return float(nominal) if abs(res_m - nominal) <= 0.15 * nominal else res_m


def _fmt_m(v: float) -> str:
    return f"{v:.0f} m" if v >= 5 else f"{v:.2f} m"


def _level_plan(scene: S2Scene, mb, model_path) -> LevelPlan:
    """What ``predict`` does about the input's processing level (see io/processing_level.py)."""
    used = [b for b in scene.band_names if b in mb.s2_bands]
    return plan_for_scene(scene, used, read_trained_level(model_path), mb.flexible)[0]


def describe(paths: Sequence[str | Path], s1: Sequence[str | Path] | None = None,
             band_order: Sequence[str] | None = None, model: str | Path | None = None,
             radiometry: str | None = None, smooth_blocky: bool = True) -> dict:
    """Everything ``info`` reports about one product, as a JSON-able dict; ``model`` (default:
    the bundled default model) is the model whose band needs the input is checked against."""
    scene = _open_any([Path(p) for p in paths], band_order, radiometry, smooth_blocky)
    s1_scene = None
    try:
        info = {"source": [str(p) for p in paths], **scene.to_dict()}
        stats = ensure_has_data(scene)
        info["stats"] = stats
        info["nodata_share"] = stats["nodata_share"]
        ranges = [(b["min"], b["max"]) for b in stats["bands"].values() if b["min"] is not None]
        info["value_range"] = [min(r[0] for r in ranges), max(r[1] for r in ranges)] if ranges else None
        actions: list[str] = []
        radio = getattr(scene, "radiometry", None)
        if radio is not None and ranges:
            conv = [(radio.value(b, s["min"]), radio.value(b, s["max"]))
                    for b, s in stats["bands"].items() if s["min"] is not None]
            info["value_range_model"] = [min(c[0] for c in conv), max(c[1] for c in conv)]
        if radio is not None and radio.applied:
            actions.append(f"convert the values to the model's DN (reflectance x 10000, no offset): "
                           f"{radio.formula()} ({', '.join(radio.sources)})")
        if isinstance(scene, S2Scene):
            target_m = max(scene.grid.res_m())
            for b in scene.resampled():
                actions.append(f"resample {b} {_fmt_m(_nominal(b, scene.bands[b].res_m))} -> "
                               f"{_fmt_m(_nominal('B02', target_m))} (bilinear)")
            smoothed = scene.smoothing.factors if scene.smoothing is not None else {}
            native_coarse = [b for b in scene.band_names
                             if S2_RESOLUTION_M[b] > 10 and b not in scene.resampled() and b not in smoothed]
            if smoothed:
                actions.append(f"smooth {', '.join(smoothed)} (nearest-neighbour blocks of this export) "
                               "to a bilinear upsampling of their native pixels")
            actions.append(f"mask clouds with {scene.clouds.describe()} (predict --no-cloud-mask maps them)")
            if native_coarse and target_m < 15:
                actions.append(f"{', '.join(native_coarse)} already on the {_fmt_m(target_m)} grid: read as is")
            model_path = model if model is not None else default_model_path()
            mb = read_model_bands(model_path)
            levels = _level_plan(scene, mb, model_path)
            plan = mb.plan(scene.band_names, levels.dropped)
            info["model_bands"] = {"model": str(model or default_model_path()), **plan,
                                   "required": list(mb.required), "levels": levels.to_dict()}
            if plan["lacking_required"]:
                actions.append(mb.describe(scene.band_names, levels.dropped)
                               + " (add the band files or pass --band-order)")
            else:
                actions.append(mb.describe(scene.band_names, levels.dropped))
            if levels.describe():
                actions.append(levels.describe())
            if plan["ignored"]:
                actions.append(f"{', '.join(plan['ignored'])} present but not used by the model")
            if s1:
                s1_scene = open_s1(s1, target=scene)
                s1_info = s1_scene.to_dict()
                s1_info["stats"] = ensure_has_data(s1_scene)
                info["s1"] = s1_info
                info["s1_units"] = s1_scene.units
                actions.append("S1 reprojected onto the S2 grid (bilinear)" if s1_scene.reprojected
                               else "S1 already on the S2 grid: read as is")
                if s1_scene.units == "linear":
                    actions.append("S1 linear power -> dB (10*log10)")
        else:
            info["s1_units"] = scene.units
            actions.append("S1 linear power -> dB (10*log10)" if scene.units == "linear"
                           else "S1 in dB: used as is")
        if scene.grid.crs is None:
            actions.append("no CRS: outputs will carry the pixel grid only (not georeferenced)")
        info["actions"] = actions
        return info
    finally:
        scene.close()
        if s1_scene is not None:
            s1_scene.close()


def format_text(info: dict) -> str:
    g = info["grid"]
    lines = [f"{', '.join(info['source'])}"]
    if info["kind"] == "S2":
        lines.append(f"  Sentinel-2: {len(info['bands'])} bands"
                     + (f", missing {', '.join(info['missing'])}" if info["missing"] else ""))
    else:
        lines.append(f"  Sentinel-1: {', '.join(info['bands'])}, units {info['units']}")
    for name, b in info["bands"].items():
        lines.append(f"    {name:<4} {_fmt_m(b['res_m']):>7}  {Path(b['path']).name}#{b['index']}"
                     f"  (by {b['how']})")
    size = (f"{_fmt_m(max(g['res_m']))} ({g['res'][0]:.6g} x {g['res'][1]:.6g} CRS units)"
            if g["crs"] else f"pixel size {g['res'][0]:g} (no CRS: not georeferenced)")
    lines.append(f"  grid: {g['width']} x {g['height']} px, {size}, CRS {g['crs'] or 'none'}")
    lines.append(f"  bounds: {', '.join(f'{v:.6g}' for v in g['bounds'])}")
    vr = info.get("value_range")
    lines.append(f"  dtype {info.get('dtype', 'float32')}, nodata {info.get('nodata')}, "
                 f"no-data share {100 * (info['nodata_share'] or 0):.1f}%, "
                 f"values {vr[0]:g} .. {vr[1]:g}" if vr else "  values: none valid")
    radio = info.get("radiometry")
    if radio:
        what = ", ".join(x for x in (radio["level"], radio["baseline"] and f"baseline {radio['baseline']}")
                         if x) or "level and baseline unknown"
        lines.append(f"  radiometry: {what}; input {radio['input']} (from {radio['source']})"
                     + (f"; level/baseline from {radio['product_info_from']}"
                        if radio.get("product_info_from") else ""))
        offsets = {(c["scale"], c["offset"]) for c in radio["bands"].values()}
        applied = (f"{radio['formula']}" if len(offsets) == 1 else
                   "; ".join(f"{b} x{c['scale']:g} {c['offset']:+g}" for b, c in radio["bands"].items()))
        vm = info.get("value_range_model")
        lines.append(f"    -> model DN (reflectance x 10000, no offset): {applied}"
                     + (f"; values {vm[0]:g} .. {vm[1]:g}" if vm and radio["applied"] else ""))
    if "s1" in info:
        s1 = info["s1"]
        lines.append(f"  S1: {', '.join(s1['inputs'])}: units {s1['units']}, "
                     f"CRS {s1['native_grid']['crs']}, {s1['native_grid']['width']} x "
                     f"{s1['native_grid']['height']} px")
    lines.append("  the engine will:")
    lines += [f"    - {a}" for a in info["actions"]]
    warnings_ = info.get("warnings", []) + info.get("s1", {}).get("warnings", [])
    if warnings_:
        lines.append("  warnings:")
        lines += [f"    ! {w}" for w in warnings_]
    return "\n".join(lines)


def run(args: argparse.Namespace, progress) -> int:
    band_order = parse_band_order(args.band_order)
    products = [describe(group, s1=args.s1, band_order=band_order, model=args.model,
                         radiometry=getattr(args, "radiometry", None),
                         smooth_blocky=not getattr(args, "keep_blocky_bands", False))
                for group in _group(args.rasters)]
    if progress is not None and progress.json_lines:
        progress.result(products=products)
    else:
        print("\n\n".join(format_text(p) for p in products))
    return 0

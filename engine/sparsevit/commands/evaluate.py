"""``sparsevit evaluate``: score a classified raster against a reference raster or labelled points."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io.atomic import write_text_atomic
from ..io.writers import check_output_path
from ..schemes import ClassScheme, load_mapping, load_scheme


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="score a classified raster against a reference raster or labelled points",
        description="Confusion-matrix scores (mIoU, overall/average accuracy, per-class IoU and "
                    "F1) of a classified raster against a reference class raster (reprojected "
                    "on the fly if needed) or a point layer with a class field.")
    p.add_argument("--pred", required=True, metavar="PRED.tif", help="the classified raster")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ref", metavar="REF.tif", help="reference class raster (its grid is scored)")
    src.add_argument("--points", metavar="POINTS", help="labelled points (GeoPackage, GeoJSON, Shapefile)")
    p.add_argument("--field", help="with --points: the field holding the class value or name")
    p.add_argument("--layer", help="with --points: the layer to read (default: the only point layer)")
    p.add_argument("--scheme", metavar="NAME",
                   help="class scheme of the prediction (default: the raster's own class table)")
    p.add_argument("--ref-scheme", metavar="NAME",
                   help="class scheme of the reference raster / point labels when it differs")
    p.add_argument("--mapping", metavar="NAME",
                   help="class mapping from the reference's scheme to the prediction's "
                        "(resources/mappings, e.g. igbp17_to_dfc2020)")
    p.add_argument("--uncovered", choices=("ignore", "miss"), default="ignore",
                   help="with --ref: reference pixels the prediction does not cover are left out "
                        "(default) or counted as misses")
    p.add_argument("--out", metavar="REPORT.json", help="also write the full report as JSON")
    p.set_defaults(func=run)


def _pred_scheme(pred: str, name: str | None) -> ClassScheme | None:
    from ..export.classes import raster_scheme
    return raster_scheme(pred, name, required=False)


def _codes(path, limit: int = 8) -> str:
    """The distinct values of a reference raster (read at a coarse overview: a hint, not a census)."""
    import numpy as np
    import rasterio

    with rasterio.open(path) as src:
        h, w = max(1, min(src.height, 1024)), max(1, min(src.width, 1024))
        vals = np.unique(src.read(1, out_shape=(h, w), masked=True).compressed())
    shown = ", ".join(str(v) for v in vals[:limit])
    return shown + (", ..." if len(vals) > limit else "") if len(vals) else "none"


def _mapping_names() -> list[str]:
    from ..paths import resource
    return sorted(p.stem for p in resource("mappings").glob("*.json"))


def _ref_map(pred_scheme: ClassScheme, ref_scheme: ClassScheme | None, mapping) -> dict[int, int]:
    """Reference code -> prediction class index; unmapped reference codes are not scored."""
    if mapping is not None:
        out = {}
        for src_name, dst_name in mapping.pairs:
            if dst_name is not None:
                out[mapping.source.by_name(src_name).value] = pred_scheme.index_of(
                    pred_scheme.by_name(dst_name).value)
        return out
    ref_scheme = ref_scheme or pred_scheme
    return {c.value: pred_scheme.index_of(pred_scheme.by_name(c.name).value)
            for c in ref_scheme.classes if pred_scheme.has_name(c.name)}


def evaluate(args: argparse.Namespace, progress=None) -> dict[str, Any]:
    mapping = load_mapping(args.mapping) if args.mapping else None
    pred_scheme = _pred_scheme(args.pred, args.scheme)
    if mapping is not None and pred_scheme is not None and \
            mapping.target.names != pred_scheme.names:
        raise InputError(f"mapping '{mapping.name}' maps to '{mapping.target.name}' but the "
                         f"prediction uses '{pred_scheme.name}'",
                         fix="choose a mapping whose target is the prediction's scheme")
    if args.points:
        if not args.field:
            raise InputError("--points needs --field (the attribute holding the class)",
                             fix="add --field NAME")
        from ..evaluation.points import evaluate_points
        if pred_scheme is None:
            raise InputError("prediction carries no class table, so point labels cannot be "
                             "matched to its classes", path=args.pred, fix="pass --scheme NAME")
        scheme_map = mapping
        if scheme_map is None and args.ref_scheme:
            ref = load_scheme(args.ref_scheme)
            scheme_map = {}
            for c in ref.classes:  # same class names, other values
                target = c.name if pred_scheme.has_name(c.name) else None
                scheme_map[c.value] = scheme_map[c.name] = target
        return evaluate_points(args.pred, args.points, args.field, layer=args.layer,
                               scheme_map=scheme_map, scheme=pred_scheme, progress=progress)
    if args.field or args.layer:
        raise InputError("--field/--layer only apply to --points", fix="drop them for --ref")
    from ..evaluation.rasters import evaluate_rasters
    if pred_scheme is None:
        if progress is not None:
            progress.log("prediction has no class table and no --scheme: raster values are "
                         "taken as class indices 0..K-1", level="warning")
        return evaluate_rasters(args.pred, args.ref, uncovered=args.uncovered, progress=progress)
    ref_scheme = load_scheme(args.ref_scheme) if args.ref_scheme else None
    if ref_scheme is None and mapping is None:
        from ..export.classes import raster_scheme
        ref_scheme = raster_scheme(args.ref, None, required=False)
        if ref_scheme is None:  # its codes could mean anything: scoring them as ours is nonsense
            raise InputError(
                f"the reference has no class table, so its codes ({_codes(args.ref)}) cannot be "
                f"matched to the classes of '{pred_scheme.name}'", path=args.ref,
                fix="give --ref-scheme NAME (its codes are that scheme's values) or --mapping NAME "
                    f"(resources/mappings: {', '.join(_mapping_names()) or 'none'}); a reference of "
                    "the prediction's own scheme: --ref-scheme " + str(pred_scheme.name))
    ref_map = _ref_map(pred_scheme, ref_scheme, mapping)
    if not ref_map:
        raise InputError("no reference class matches a prediction class", path=args.ref,
                         fix="give --ref-scheme or --mapping")
    pred_map = {v: i for i, v in enumerate(pred_scheme.values)}
    out = evaluate_rasters(args.pred, args.ref, pred_map, ref_map,
                           num_classes=pred_scheme.num_classes, class_names=list(pred_scheme.names),
                           uncovered=args.uncovered, progress=progress)
    out["scheme"] = pred_scheme.name
    return out


def _f(v) -> str:
    return "   n/a" if v is None else f"{v:6.3f}"


def format_report(report: dict[str, Any]) -> str:
    pc = report["per_class"]
    names = report.get("class_names") or [str(i) for i in range(report["num_classes"])]
    lines = []
    if "point_counts" in report:
        c = report["point_counts"]
        skipped = ", ".join(f"{k} {c[k]}" for k in ("outside", "nodata", "no_geometry",
                                                     "no_label", "ignored") if c[k])
        lines.append(f"points: {c['scored']} scored of {c['total']}"
                     + (f" (skipped: {skipped})" if skipped else ""))
    else:
        cov = report.get("coverage")
        lines.append(f"pixels scored: {report['pixels']}"
                     + ("" if cov is None else f", prediction covers {100 * cov:.1f}% of the reference"))
    lines.append(f"mIoU {_f(report['miou'])}   OA {_f(report['overall_accuracy'])}   "
                 f"AA {_f(report['average_accuracy'])}   mean F1 {_f(report['mean_f1'])}")
    width = max(len(n) for n in names + ["class"])
    lines.append(f"  {'class':<{width}}     IoU      F1  support")
    for i, name in enumerate(names):
        lines.append(f"  {name:<{width}}  {_f(pc['iou'][i])}  {_f(pc['f1'][i])}  {pc['support'][i]:>7}")
    for w in report.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def run(args: argparse.Namespace, progress) -> int:
    if args.out:
        check_output_path(args.out)
    report = evaluate(args, progress)
    text = json.dumps(report, indent=2, allow_nan=False) + "\n"
    if args.out:
        write_text_atomic(args.out, text)
        report_path = str(Path(args.out))
    else:
        report_path = None
    if progress is not None and progress.json_lines:
        progress.result(**report, report=report_path)
    else:
        print(format_report(report))
        if report_path:
            print(f"report: {report_path}")
    return 0

"""``sparsevit export-model``: a model bundle's segmenter as ONNX for the Deepness QGIS plugin."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export-model", help="export a model's segmenter as ONNX (for the Deepness QGIS plugin)",
        description="Export the bundle's refined segmenter as an ONNX file (opset 17, float32) "
                    "with the metadata the Deepness QGIS plugin reads (model type, class names, "
                    "resolution, tile size, overlap, standardisation). Input: the raw Sentinel-2 "
                    "digital numbers of the listed bands in that order, [N, bands, tile, tile]; "
                    "normalisation is inside the graph. Output: class probabilities "
                    "[N, classes, tile, tile]. See sparsevit/export/onnx.py.")
    p.add_argument("model", metavar="BUNDLE", help="model folder with bundle.json "
                   "(e.g. resources/models/default)")
    p.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the ONNX file to write")
    p.add_argument("--bands", metavar="BANDS",
                   help="input channels in this order (default: the model's bands), comma-"
                        "separated, or a preset: esa (13 bands of an L1C stack; B10 is read and "
                        "ignored), esa12, eurosat. A band-flexible model gets the bands left out "
                        "as absent, e.g. --bands B02,B03,B04,B08 for a 4-band raster")
    p.add_argument("--input-units", choices=("dn", "dn255"), default="dn",
                   help="dn (default): the graph reads digital numbers; Deepness' division by 255 "
                        "is undone through its standardization metadata. dn255: the graph reads "
                        "DN/255 itself (for Deepness versions without standardization metadata)")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help="fix the batch dimension (default: free; Deepness then lets you choose)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, progress) -> int:
    from ..bundle import load_bundle
    from ..export.onnx import export_onnx
    from ..io.writers import check_output_path

    out = Path(args.onnx)
    check_output_path(out)
    bundle = load_bundle(args.model)
    with progress.stage("export-model"):
        result = export_onnx(bundle, out, bands=args.bands, input_units=args.input_units,
                             batch_size=args.batch_size, progress=progress)
    if progress.json_lines:
        progress.result(**result)
        return 0
    m = result["metadata"]
    print(f"input  {result['input_shape']}: {m['sparsevit_input']}")
    print(f"       bands {', '.join(result['bands'])}"
          + (f"; absent: {', '.join(m['sparsevit_absent_bands'])}" if m["sparsevit_absent_bands"] else ""))
    print(f"output {result['output_shape']}: class probabilities, {', '.join(m['class_names'].values())}")
    print(f"Deepness: tile {m['tile_size']} px, overlap {m['tiles_overlap']}% "
          f"({m['sparsevit_deepness_overlap_px']} px), resolution {m['resolution']} cm/px")
    print(f"written: {result['path']} ({result['size_mb']} MB)")
    return 0

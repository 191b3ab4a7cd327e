"""``sparsevit pseudomasks``: Stage 2 on a dataset - pseudomasks of every method, scored.

    sparsevit pseudomasks --model runs/tiny/model.safetensors --dataset eurosat-mosaic \\
        --data data/eurosat_ms --split test --scenes 200 --out runs/pm

Writes ``OUT/<method>/<id>.tif`` (class index per pixel, 255 = uncertain with --ignore-uncertain)
and ``OUT/pseudomasks.json`` (per-image facts: predicted classes, fallbacks; and, when the
dataset has true masks, mIoU/OA/AA/per-class scores of every method over every image).
"""
from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

from ..datasets.factory import DATASETS
from ..errors import InputError, OutputError
from ..progress import Progress
from ..pseudomasks.postprocess import METHODS

ALL_METHODS = tuple(METHODS)


def register(subparsers) -> None:
    p = subparsers.add_parser("pseudomasks", help="pseudomasks from a trained classifier (Stage 2)",
                              description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="classifier checkpoint or model folder")
    p.add_argument("--dataset", choices=DATASETS, required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--split", choices=("train", "test"), default="test")
    p.add_argument("--scenes", type=int, default=200, help="eurosat-mosaic: number of scenes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", default="top1_fill,gradcam,attention_faithful,attention",
                   help=f"comma-separated, from {', '.join(ALL_METHODS)}")
    p.add_argument("--attn-blocks", type=int, default=1, help="read the last K blocks (0: all)")
    p.add_argument("--relabel", action="store_true",
                   help="also the relabel pass on every attention method (written as <method>_relabel)")
    p.add_argument("--ignore-uncertain", action="store_true",
                   help="write uncertain pixels as 255 (for training a segmenter on them)")
    p.add_argument("--use-image-labels", action="store_true",
                   help="build each mask from the scene's KNOWN image-level labels instead of the "
                        "classifier's predicted set (training scenes, before refinement)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--out", required=True, help="output folder (created; must be empty)")
    p.set_defaults(func=run, uses_device=True)


def run(args, progress: Progress) -> int:
    import rasterio

    from ..bundle import load_bundle
    from ..datasets.factory import open_dataset
    from ..evaluation.metrics import EvaluationSet
    from ..io.atomic import atomic_path, write_text_atomic
    from ..pseudomasks.generate import PseudomaskOptions, iter_dataset_pseudomasks

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    bad = [m for m in methods if m not in ALL_METHODS]
    if bad:
        raise OutputError(f"unknown method(s) {', '.join(bad)}", fix=f"use {', '.join(ALL_METHODS)}")
    bundle = load_bundle(args.model)
    if "attention_class_tokens" in methods and not bundle.classifier.config.class_tokens:
        raise InputError("attention_class_tokens needs a classifier trained with class tokens",
                         path=args.model, fix="train one with `sparsevit train --class-tokens` "
                         "or choose another method")
    ds = open_dataset(args.dataset, args.data, args.split, s1=bundle.has_s1, scenes=args.scenes,
                      seed=args.seed)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise OutputError("output folder is not empty", path=out, fix="choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    relabel = tuple(m for m in methods if m.startswith("attention")) if args.relabel else ()
    opts = PseudomaskOptions(methods=methods, attn_blocks=args.attn_blocks or len(bundle.classifier.blocks),
                             relabel=relabel)
    names = list(ds.scheme.names)
    evals: dict[str, EvaluationSet] = {}
    per_image = []
    colormap = {i: tuple(int(c[j:j + 2], 16) for j in (1, 3, 5)) for i, c in enumerate(ds.scheme.colors)}
    for sample, masks in iter_dataset_pseudomasks(bundle.classifier, bundle.normalizer, ds, opts,
                                                  batch_size=args.batch_size, use_s1=bundle.has_s1,
                                                  progress=progress, use_image_labels=args.use_image_labels):
        rec = {"id": sample.id}
        for m, pm in masks.items():
            labels = pm.with_ignore() if args.ignore_uncertain else pm.labels
            folder = out / m
            folder.mkdir(exist_ok=True)
            with atomic_path(folder / f"{sample.id}.tif") as tmp, warnings.catch_warnings():
                # dataset scenes carry no georeference; the masks are images, not maps
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                with rasterio.open(tmp, "w", driver="GTiff", width=labels.shape[1], height=labels.shape[0],
                                   count=1, dtype="uint8", nodata=255, compress="deflate") as dst:
                    dst.write(labels.astype(np.uint8), 1)
                    dst.write_colormap(1, colormap)
            rec[m] = {k: pm.info.get(k) for k in ("predicted_classes", "fallback", "n_clusters",
                                                   "uncertain_fraction") if k in pm.info}
            if sample.mask is not None:
                ev = evals.setdefault(m, EvaluationSet(len(names), class_names=names))
                ev.add(sample.id, pm.labels, sample.mask, info={"fallback": pm.info.get("fallback")})
        per_image.append(rec)
    scores = {m: ev.summary() for m, ev in evals.items()}
    doc = {"model": str(args.model), "dataset": args.dataset, "data": str(args.data),
           "split": args.split, "classes_from": "image labels" if args.use_image_labels else "classifier",
           "methods": list(methods) + [f"{m}_relabel" for m in relabel],
           "images": len(per_image), "scores": scores, "per_image": per_image}
    write_text_atomic(out / "pseudomasks.json", json.dumps(doc, indent=2, default=float))
    summary = {m: {"miou": s["scores"]["miou"], "images": s["counts"]["images"],
                   "fallback": s["counts"]["fallback"]} for m, s in scores.items()}
    progress.result(out=str(out), images=len(per_image), scores=summary)
    if not progress.json_lines:
        print(f"{len(per_image)} images -> {out}")
        for m, s in summary.items():
            print(f"  {m:<22} mIoU {s['miou']:.4f}  ({s['fallback']} fallbacks)")
    return 0

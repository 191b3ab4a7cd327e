"""``sparsevit refine``: Stage 3 - train the segmenter on pseudomasks, iterate, score.

    sparsevit pseudomasks --model CLS --dataset eurosat-mosaic --data data/eurosat_ms \\
        --split train --scenes 400 --methods attention --ignore-uncertain --out runs/pm
    sparsevit refine --model CLS --dataset eurosat-mosaic --data data/eurosat_ms \\
        --scenes 400 --masks runs/pm/attention --iterations 2 --out runs/refine --bundle

``--masks`` holds ``<id>.tif`` class-index masks (255 = ignore) for the training scenes;
``--supervised`` trains on the dataset's true masks instead (the upper bound). Writes
``OUT/segmenter_it<k>.*`` and ``OUT/refine.json`` (test scores of every iteration); ``--bundle``
also makes OUT a model folder for ``sparsevit predict`` (classifier copied in, bundle.json).
"""
from __future__ import annotations

import argparse
import json
import shutil
import warnings
from pathlib import Path

import numpy as np

from ..datasets.factory import DATASETS
from ..errors import InputError, OutputError
from ..progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("refine", help="train/iterate the segmenter on pseudomasks (Stage 3)",
                              description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the classifier (its normalisation and bands are reused)")
    p.add_argument("--dataset", choices=DATASETS, required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--scenes", type=int, default=400, help="eurosat-mosaic: training scenes")
    p.add_argument("--test-scenes", type=int, default=200, help="eurosat-mosaic: test scenes")
    p.add_argument("--seed", type=int, default=0)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--masks", help="folder of <id>.tif pseudomasks of the training scenes")
    src.add_argument("--supervised", action="store_true", help="train on the true masks")
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--segmenter", default="unet-mnv3")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--class-weighting", choices=("none", "balanced"), default="balanced",
                   help="balanced: cross-entropy weighted by inverse label frequency (default)")
    p.add_argument("--ignore-below", type=float, default=0.5,
                   help="next-iteration masks: softmax confidence below this -> ignore")
    p.add_argument("--no-image-labels", action="store_true",
                   help="next-iteration masks may use every class, not only the scene's image-level "
                        "labels (the default restricts them: it2 otherwise learns it1's confusions)")
    p.add_argument("--from-scratch", action="store_true",
                   help="train every iteration from scratch (default: iteration k>=2 starts from "
                        "iteration k-1 at 0.3x the learning rate)")
    p.add_argument("--no-evaluate", action="store_true", help="skip scoring on the test split")
    p.add_argument("--bundle", action="store_true", help="make OUT a model folder for predict")
    p.add_argument("--out", required=True)
    p.set_defaults(func=run, uses_device=True)


def read_mask_folder(folder: Path, ids: list[str]) -> dict[str, np.ndarray]:
    import rasterio

    missing = [i for i in ids if not (folder / f"{i}.tif").is_file()]
    if missing:
        raise InputError(f"{len(missing)} of {len(ids)} training scenes have no mask (first: {missing[0]}.tif)",
                         path=folder, fix="make them with 'sparsevit pseudomasks --split train' "
                                          "for the same dataset, --scenes and --seed")
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        for i in ids:
            with rasterio.open(folder / f"{i}.tif") as src:
                out[i] = src.read(1)
    return out


def run(args, progress: Progress) -> int:
    from ..bundle import PseudomaskSettings, load_bundle, write_bundle_json
    from ..datasets.factory import open_dataset
    from ..io.atomic import write_text_atomic
    from ..refine.checkpoint import save_segmenter
    from ..refine.iterate import RefineConfig, evaluate_segmenter, refine, train_on_masks
    from ..refine.train import SegTrainConfig
    from ..training.checkpoint import checkpoint_paths

    cls = load_bundle(args.model)
    train_ds = open_dataset(args.dataset, args.data, "train", s1=cls.has_s1, scenes=args.scenes,
                            seed=args.seed)
    test_ds = None if args.no_evaluate else open_dataset(
        args.dataset, args.data, "test", s1=cls.has_s1, scenes=args.test_scenes, seed=args.seed)
    if list(train_ds.scheme.names) != list(cls.scheme.names):
        raise InputError("the classifier's classes differ from the dataset's", path=args.model,
                         fix="refine with the dataset the classifier was trained on")
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise OutputError("output folder is not empty", path=out, fix="choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    cfg = RefineConfig(segmenter=args.segmenter, iterations=args.iterations,
                       ignore_below=args.ignore_below, crop=args.crop or None,
                       image_labels=not args.no_image_labels,
                       warm_start_lr=None if args.from_scratch else 0.3,
                       train=SegTrainConfig(epochs=args.epochs, batch_size=args.batch_size,
                                            lr=args.lr, seed=args.seed,
                                            class_weighting=args.class_weighting))
    in_ch = len(cls.s2_bands) + (2 if cls.has_s1 else 0)
    report = {"config": cfg.to_dict(), "dataset": args.dataset, "scenes": len(train_ds),
              "masks": args.masks or "true masks", "iterations": {}}
    saved = []

    def save(tag, seg, hist):
        scores = evaluate_segmenter(seg, test_ds, cls.normalizer, cls.has_s1) if test_ds else None
        path = save_segmenter(out / f"segmenter_{tag}", seg, in_channels=in_ch,
                              class_names=list(cls.scheme.names), normalizer=cls.normalizer,
                              s2_bands=list(cls.s2_bands), has_s1=cls.has_s1, scheme=cls.scheme.name,
                              training={"history": hist, **report["config"]},
                              metrics=None if scores is None else scores["scores"])
        saved.append(path)
        report["iterations"][tag] = {"history": hist, "scores": scores}
        if scores:
            progress.log(f"{tag}: test mIoU {scores['scores']['miou']:.4f}")

    if args.supervised:
        seg, hist = train_on_masks(train_ds, None, cls.normalizer, in_ch, cfg, cls.has_s1,
                                   progress=progress, stage="supervised")
        save("supervised", seg, hist)
    else:
        masks = read_mask_folder(Path(args.masks), [train_ds[i].id for i in range(len(train_ds))])
        refine(train_ds, masks, cls.normalizer, in_ch, cfg, cls.has_s1, progress=progress,
               on_iteration=lambda it, seg, hist: save(f"it{it}", seg, hist))
    write_text_atomic(out / "refine.json", json.dumps(report, indent=2, default=float))
    if args.bundle:
        weights, meta, _ = checkpoint_paths(cls.path if not cls.path.is_dir() else cls.path / "classifier")
        for f in (weights, meta):
            shutil.copy2(f, out / ("classifier" + "".join(f.suffixes[-1:])))
        write_bundle_json(out, classifier="classifier", segmenter=saved[-1].stem,
                          pseudomask=cls.pseudomask if cls.path.is_dir() else PseudomaskSettings())
    progress.result(out=str(out), segmenters=[str(p) for p in saved],
                    scores={k: (v["scores"] or {}).get("scores", {}).get("miou")
                            for k, v in report["iterations"].items()})
    return 0

"""``sparsevit train``: train the gated multimodal ViT classifier on image-level labels.

    sparsevit train --dataset eurosat-mosaic --data data/eurosat_ms --config tiny --epochs 10 \\
        --lambda-l0 1.0 --out runs/tiny --crop 128

Writes ``OUT/last.*`` after every epoch (resume with ``--resume OUT/last.safetensors``),
``OUT/model.safetensors`` + ``model.json`` at the end and, when heads closed,
``OUT/model_pruned.*`` with the closed heads physically removed (same outputs, faster).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..bands import S2_BANDS_NO_CIRRUS
from ..errors import InputError
from ..progress import Progress

DATASETS = ("eurosat-mosaic", "dfc2020", "bigearthnet-v2")


def register(subparsers) -> None:
    from ..models.configs import list_configs
    p = subparsers.add_parser("train", help="train the gated ViT classifier (Stage 1)",
                              description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, required=True)
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--config", default="tiny", choices=list_configs(), help="architecture")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--gate-lr", type=float, default=0.05)
    p.add_argument("--lambda-l0", type=float, default=0.0,
                   help="weight of the L0 penalty (mean over heads of P(gate open))")
    p.add_argument("--keep-heads-in-last", type=int, default=0, metavar="K",
                   help="the last K blocks each keep at least one open head")
    p.add_argument("--class-tokens", action="store_true",
                   help="one class token per class instead of CLS (for attention_class_tokens masks)")
    p.add_argument("--patch-head", action="store_true",
                   help="also a classifier on every patch token (a CAM the class-token masks fuse with)")
    p.add_argument("--s1", action="store_true", help="also use Sentinel-1 (VV, VH)")
    p.add_argument("--crop", type=int, default=128, help="training crop in px (0: none)")
    p.add_argument("--normalization", choices=("dataset_stats", "per_image_max"),
                   default="dataset_stats")
    p.add_argument("--resume", metavar="CKPT", help="continue from OUT/last.safetensors")
    p.add_argument("--init-from", metavar="CKPT", help="start from these weights")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-scenes", type=int, default=1000, help="eurosat-mosaic: per epoch")
    p.add_argument("--val-scenes", type=int, default=200, help="eurosat-mosaic: test scenes")
    p.add_argument("--workers", type=int, default=0, help="data loader processes")
    p.set_defaults(func=run, uses_device=True)


def build_datasets(args: argparse.Namespace) -> tuple[Any, Any, float | None, bool]:
    """(train set, validation set, crop relabel fraction, generate-at-crop-size)."""
    root = Path(args.data)
    if not root.exists():
        raise InputError("dataset folder does not exist", path=root,
                         fix="point --data at the downloaded dataset")
    mods = ("s1", "s2") if args.s1 else ("s2",)
    if args.dataset == "eurosat-mosaic":
        from ..datasets import EuroSatMosaic
        if args.s1:
            raise InputError("EuroSAT-mosaic has no Sentinel-1 images", path=root,
                             fix="drop --s1 or train on dfc2020 / bigearthnet-v2")
        # scenes are generated, so make them at the crop size instead of cropping 256 px ones
        size = args.crop or 256
        train = EuroSatMosaic(root, "train", num_scenes=args.train_scenes, size=size,
                              seed=args.seed, bands=S2_BANDS_NO_CIRRUS)
        val = EuroSatMosaic(root, "test", num_scenes=args.val_scenes, size=256, seed=args.seed,
                            bands=S2_BANDS_NO_CIRRUS)
        return train, val, None, True
    if args.dataset == "dfc2020":
        from ..datasets import DFC2020Dataset
        # the paper trains on DFC2020 "validation" and evaluates on "test"
        train = DFC2020Dataset(root, "validation", modalities=mods)
        val = DFC2020Dataset(root, "test", modalities=mods)
        return train, val, 0.10, False
    from ..datasets import BigEarthNetV2Dataset
    train = BigEarthNetV2Dataset(root, "train", modalities=mods)
    val = BigEarthNetV2Dataset(root, "validation", modalities=mods)
    return train, val, None, False


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..models.configs import get_config
    from ..training.loop import TrainConfig, check_dataset, train

    train_set, val_set, crop_fraction, generated = build_datasets(args)
    check_dataset(train_set, args.data)
    if len(val_set) == 0:
        val_set = None
    mcfg = get_config(args.config, s2_bands=tuple(train_set.s2_bands), has_s1=bool(args.s1),
                      num_classes=train_set.scheme.num_classes,
                      keep_heads_in_last=args.keep_heads_in_last, class_tokens=args.class_tokens,
                      patch_head=args.patch_head)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      gate_lr=args.gate_lr, lambda_l0=args.lambda_l0, seed=args.seed,
                      crop=None if (generated or not args.crop) else args.crop,
                      crop_label_fraction=crop_fraction, normalization=args.normalization,
                      num_workers=args.workers)
    out = Path(args.out)
    if not out.parent.exists():
        raise InputError("parent of the output folder does not exist", path=out.parent,
                         fix="create it or choose another --out")
    result = train(mcfg, train_set, val_set, cfg, out_dir=out, progress=progress,
                   resume=args.resume, init_from=args.init_from,
                   scheme=getattr(train_set.scheme, "name", None),
                   data_description={"dataset_name": args.dataset, "data": str(args.data),
                                     "s1": bool(args.s1), "crop": args.crop})
    net = result.model
    progress.result(checkpoint=str(result.checkpoint),
                    pruned_checkpoint=None if result.pruned_checkpoint is None
                    else str(result.pruned_checkpoint),
                    pruned_share=net.pruned_share(), open_heads_per_block=net.open_heads_per_block(),
                    macro_f1=result.metrics.get("macro_f1"), mAP=result.metrics.get("mAP"),
                    seconds=round(result.seconds, 1))
    progress.log(f"model written to {result.checkpoint}"
                 + (f" (pruned: {result.pruned_checkpoint})" if result.pruned_checkpoint else ""))
    return 0

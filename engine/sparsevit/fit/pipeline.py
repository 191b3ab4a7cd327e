"""``sparsevit fit``: from a raster and the analyst's image-level tags to a model bundle and a map.

1. **labels** -> tags of square tiles (:mod:`sparsevit.fit.labels`); a seeded share of the tagged
   tiles is held out for the card's metrics.
2. **classifier**: the base model's pruned, gated-and-pruned ViT (the bundled default model's by
   default) with new class tokens and heads for the analyst's classes, fine-tuned on the tagged
   tiles (``--from-scratch``: a new tiny ViT, no pruning).
3. **pseudomasks** of the training tiles from their tags (the base model's pseudomask method).
4. **refine**: the base segmenter with a new last layer, fine-tuned on the pseudomasks, two
   iterations (it2 learns it1's confident masks restricted to each tile's tags).
5. **bundle** (``OUT/model``: classifier, segmenter, ``scheme.json``, card) and the **map** of every
   raster (``OUT/map``, the outputs of ``sparsevit predict``).

Seeded; every stage reports progress and honours cancel; ``resume`` reuses the classifier and
pseudomasks of an interrupted run with the same inputs and settings (``OUT/.fit-work``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..bands import S2_BANDS_NO_CIRRUS
from ..bundle import ModelBundle, PseudomaskSettings, load_bundle, write_bundle_json
from ..errors import InputError, OutputError
from ..io.atomic import write_text_atomic
from ..io.processing_level import plan_for_scene
from ..io.scene import open_s2
from ..models import SparseViT, get_config
from ..progress import Progress, null_progress
from ..pseudomasks.generate import PseudomaskOptions, iter_dataset_pseudomasks
from ..refine.checkpoint import save_segmenter
from ..refine.iterate import RefineConfig, refine
from ..refine.segmenter import with_num_classes
from ..refine.train import SegTrainConfig, predict_segmenter
from ..schemes import ClassScheme
from ..training import TrainConfig, evaluate, save_checkpoint, train
from ..training.checkpoint import load_model
from ..training.data import TorchSampleDataset
from ..training.normalization import compute_stats
from .labels import Labels, read_labels
from .spectral import spectral_refine
from .tiles import TaggedTiles

RGB = ("B02", "B03", "B04")
TAG_FRACTION = 0.05  # a class "is in" a tile of the map when it covers this share (the tags' rule)


@dataclass
class FitOptions:
    layer: str | None = None
    field: str | None = None
    classes: str | Path | dict | None = None  # scheme JSON (path) or dict; None: the label values
    tile: int | None = None  # tag tile in px; None: the base model's (64 for the default model)
    base: str | Path | None = None  # base model bundle; None: the bundled default model
    from_scratch: bool = False
    epochs: int = 8  # classifier epochs; an epoch sees every training tile >= 1x, >= 256 samples
    # per refinement iteration, an epoch >= 128 samples; bench_fit at N = 32: 6 -> 20 epochs raised
    # Sen1Floods11 water IoU 0.56 -> 0.70 but lowered the 4-class mosaic mIoU 0.56 -> 0.47
    refine_epochs: int = 12
    iterations: int = 2
    holdout: float = 0.2
    spectral: bool = True  # sharpen the pseudomasks per pixel (fit/spectral.py)
    seed: int = 0
    batch_size: int = 16
    band_order: Sequence[str] | None = None
    radiometry: str | None = None
    smooth_blocky: bool = True  # see io/blocky_bands.py
    predict: bool = True
    resume: bool = False
    overwrite: bool = False
    threads: int | None = None
    device: str | None = None

    def key(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("predict", "resume", "overwrite", "threads", "device"):
            d.pop(k)
        return json.loads(json.dumps(d, default=str))


def _repeat(n: int, at_least: int) -> int:
    return max(1, math.ceil(at_least / max(n, 1)))


def _split(labels: Labels, share: float, seed: int) -> tuple[list, list]:
    tiles = labels.tiles
    n_hold = int(round(share * len(tiles))) if len(tiles) >= 5 and share > 0 else 0
    order = np.random.default_rng(seed).permutation(len(tiles))
    hold = {int(i) for i in order[:n_hold]}
    return [t for i, t in enumerate(tiles) if i not in hold], [t for i, t in enumerate(tiles) if i in hold]


def _inputs_key(rasters: Sequence[Path], labels_path: Path, opts: FitOptions) -> str:
    h = hashlib.sha256()
    for p in [*rasters, labels_path]:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    h.update(json.dumps(opts.key(), sort_keys=True).encode())
    return h.hexdigest()[:16]


def new_classifier(base: ModelBundle | None, scheme: ClassScheme, seed: int) -> SparseViT:
    """The base classifier (its pruned architecture and weights) with fresh class tokens and heads
    for ``scheme``; or a new tiny band-flexible ViT without a base."""
    torch.manual_seed(seed)
    if base is None:
        cfg = get_config("tiny", s2_bands=S2_BANDS_NO_CIRRUS, num_classes=scheme.num_classes,
                         band_flexible=True, required_bands=RGB, stem="conv", class_tokens=True,
                         patch_head=True, gated=False)
        return SparseViT(cfg)
    cfg = dataclasses.replace(base.classifier.config, num_classes=scheme.num_classes)
    model = SparseViT(cfg)
    src, dst = base.classifier.state_dict(), model.state_dict()
    # everything whose shape does not depend on the classes is kept
    dst.update({k: v.float() for k, v in src.items() if k in dst and dst[k].shape == v.shape})
    model.load_state_dict(dst)
    return model


def _tag_f1(pred: np.ndarray, truth: np.ndarray) -> float:
    """Macro-F1 over classes of image-level sets (rows = tiles)."""
    f1 = []
    for c in range(truth.shape[1]):
        tp = float(np.sum(pred[:, c] & truth[:, c]))
        fp, fn = float(np.sum(pred[:, c] & ~truth[:, c])), float(np.sum(~pred[:, c] & truth[:, c]))
        if tp + fp + fn:
            f1.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1)) if f1 else float("nan")


def _segmenter_tag_f1(seg, tiles: TaggedTiles, norm) -> float | None:
    if not len(tiles):
        return None
    k = tiles.scheme.num_classes
    preds = []
    for lab, _ in predict_segmenter(seg, (norm(s.s2, None) for s in tiles), 8):
        counts = np.bincount(lab.ravel(), minlength=256)[:k]
        preds.append(counts / max(counts.sum(), 1) >= TAG_FRACTION)
    truth = np.stack([t.labels > 0.5 for t in tiles.tags])
    return _tag_f1(np.stack(preds), truth)


def fit_segmenter(base: ModelBundle | None, tiles: TaggedTiles, masks: dict, norm, opts: FitOptions,
                  progress: Progress):
    """``(segmenter, RefineConfig, segmenter name)``: the base segmenter with a new last layer
    (or a new one) trained on ``masks`` of ``tiles`` (tile id -> class indices, 255 ignore),
    refined ``opts.iterations`` times. ``benchmarks/bench_fit.py`` also calls it with the tiles'
    true masks (the fully supervised comparison)."""
    seg_init = None
    seg_name: str | dict = "unet-mnv3-flex"
    if base is not None and base.segmenter is not None:
        seg_init = with_num_classes(base.segmenter.float(), tiles.scheme.num_classes, seed=opts.seed)
        seg_name = base.segmenter_doc["segmenter"]
    rcfg = RefineConfig(segmenter=seg_name, iterations=opts.iterations, crop=None,
                        warm_start_lr=0.3 if seg_init is None else 1.0,
                        train=SegTrainConfig(epochs=opts.refine_epochs, batch_size=8,
                                             lr=1e-3 if seg_init is None else 3e-4, seed=opts.seed,
                                             class_weighting="balanced"))
    data = tiles.with_repeat(_repeat(len(tiles), 128))
    segs = refine(data, masks, norm, len(tiles.s2_bands), rcfg, progress=progress, init=seg_init)
    return segs[-1].eval(), rcfg, seg_name


def fit(rasters: Sequence[str | Path], labels_path: str | Path, out_dir: str | Path,
        opts: FitOptions | None = None, progress: Progress | None = None) -> dict:
    """Run every stage (module doc); returns the JSON-safe summary also sent as the result event."""
    opts = opts or FitOptions()
    progress = progress or null_progress()
    t0 = time.perf_counter()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    if opts.device == "auto":
        opts = dataclasses.replace(opts, device=None)
    if not 0 <= opts.holdout < 1:
        raise InputError(f"--holdout must be in [0, 1), got {opts.holdout}")
    if opts.epochs < 1 or opts.refine_epochs < 1 or opts.iterations < 1:
        raise InputError("--epochs, --refine-epochs and --iterations must be >= 1")
    rasters = [Path(r) for r in rasters]
    for r in rasters:
        if not r.exists():
            raise InputError("raster not found", path=r, fix="check the path")
    labels_path = Path(labels_path)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError("the output folder is a file", path=out, fix="choose a folder for --out")
    out.mkdir(parents=True, exist_ok=True)
    model_dir, map_dir = out / "model", out / "map"
    if model_dir.exists() and not opts.overwrite:
        raise OutputError("a model already exists in the output folder", path=model_dir,
                          fix="choose another --out or pass --overwrite")

    base = None if opts.from_scratch else load_bundle(opts.base)
    tile = int(opts.tile or (base.card.get("tag_tile", 64) if base is not None else 64))
    bands = tuple(base.s2_bands) if base is not None else S2_BANDS_NO_CIRRUS
    required = base.min_bands if base is not None else RGB
    scenes = [open_s2(r, band_order=opts.band_order, required=required, radiometry=opts.radiometry,
                      smooth_blocky=opts.smooth_blocky)
              for r in rasters]
    try:
        with progress.stage("labels", total=None):
            # a grid's cells are read at their own size unless --tile says otherwise
            labels = read_labels(labels_path, [s.grid for s in scenes],
                                 tile=tile if (opts.field is not None or opts.tile) else None, layer=opts.layer,
                                 field=opts.field, scheme=opts.classes,
                                 raster_names=[r.name for r in rasters])
        scheme = labels.scheme
        tile = labels.tiles[0].size
        if scheme.num_classes < 2:
            raise InputError(f"the labels hold one class only ({scheme.names[0]})", path=labels_path,
                             fix="tag tiles of at least two classes (e.g. water and land)")
        progress.log(f"labels: {len(labels.tiles)} tagged tiles of {tile} px, classes "
                     + ", ".join(f"{n} {c}" for n, c in labels.class_counts().items()))
        untrained = [n for n, c in labels.class_counts().items() if c == 0]
        if untrained:
            progress.log(f"no tile is tagged with {', '.join(untrained)}: the model cannot learn "
                         "those classes", level="warning")
        train_tags, hold_tags = _split(labels, opts.holdout, opts.seed)
        if base is not None:
            trained_level = base.card.get("trained_on_level")
        else:  # from scratch the model learns its rasters' level, when they share one
            known = {s.radiometry.level if s.radiometry is not None else None for s in scenes}
            trained_level = known.pop() if len(known) == 1 else None
        level_plans = [plan_for_scene(s, [b for b in bands if b in s.bands], trained_level,
                                      base.band_flexible if base is not None else True)[0]
                       for s in scenes]
        for r, lp in zip(rasters, level_plans):
            if lp.describe():
                progress.log(f"{Path(r).name}: {lp.describe()}", level="warning")
        all_tiles = TaggedTiles(scenes, train_tags + hold_tags, bands, scheme, progress=progress,
                                levels=level_plans)
    finally:
        for s in scenes:
            s.close()
    if all_tiles.dropped:
        progress.log(f"{len(all_tiles.dropped)} tagged tiles are mostly no-data and were left out",
                     level="warning")
    train_tiles = all_tiles.subset({t.id for t in train_tags})
    hold_tiles = all_tiles.subset({t.id for t in hold_tags})
    if len(train_tiles) == 0:
        raise InputError("no tagged tile holds enough valid pixels to train on", path=labels_path,
                         fix="tag tiles inside the image data")

    work = out / ".fit-work"
    key = _inputs_key(rasters, labels_path, opts)
    state = {}
    if opts.resume and (work / "state.json").is_file():
        state = json.loads((work / "state.json").read_text())
        if state.get("key") != key:
            progress.log("--resume: the inputs or settings changed since the interrupted run; "
                         "starting again", level="warning")
            state = {}
    else:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(exist_ok=True)
    state["key"] = key

    card: dict = {"kind": "fit", "scheme": scheme.to_dict(), "tag_tile": tile,
                  "sources": [str(r) for r in rasters], "labels": labels.report,
                  "base_model": None if base is None else str(base.path),
                  "settings": opts.key(), "trained_on_level": trained_level,
                  "tiles": {"tagged": len(labels.tiles), "train": len(train_tiles), "holdout": len(hold_tiles),
                            "dropped_no_data": len(all_tiles.dropped),
                            # which tiles the card's held-out metrics come from (and a benchmark
                            # may compare with: the same training tiles)
                            "holdout_ids": sorted(t.id for t in hold_tags)}}
    if base is not None and base.card.get("required_bands"):
        card["required_bands"] = list(base.card["required_bands"])
    card["bands"] = list(bands)

    # -- classifier ---------------------------------------------------------------------------
    norm = base.normalizer if base is not None else compute_stats(iter(train_tiles),
                                                                  description="the tagged tiles")
    ck = work / "classifier"
    if state.get("classifier") and ck.with_suffix(".safetensors").is_file():
        classifier = load_model(ck.with_suffix(".safetensors"))[0].eval()
        progress.log("--resume: classifier of the interrupted run reused")
    else:
        init = new_classifier(base, scheme, opts.seed)
        init_ck = save_checkpoint(work / "init", init, norm, list(scheme.names), scheme.name)
        data = train_tiles.with_repeat(_repeat(len(train_tiles), 256))
        res = train(init.config, data, None,
                    TrainConfig(epochs=opts.epochs, batch_size=opts.batch_size,
                                lr=3e-4 if base is not None else 1e-3, gate_lr=0.0, crop=None,
                                warmup_fraction=0.1, seed=opts.seed, device=opts.device),
                    progress=progress, init_from=init_ck, normalizer=norm, class_names=list(scheme.names),
                    scheme=scheme.name)
        classifier = res.model.eval()
        save_checkpoint(ck, classifier, norm, list(scheme.names), scheme.name)
        state["classifier"] = True
        write_text_atomic(work / "state.json", json.dumps(state))
    metrics: dict = {}
    if len(hold_tiles):
        ev = evaluate(classifier, TorchSampleDataset(hold_tiles, norm, train=False), list(scheme.names),
                      batch_size=16)
        metrics["holdout_classifier_macro_f1"] = ev["macro_f1"]
    progress.check_cancelled()

    # -- pseudomasks --------------------------------------------------------------------------
    pm = base.pseudomask if base is not None else PseudomaskSettings(method="attention_class_tokens",
                                                                     attn_blocks=0)
    masks_file = work / "pseudomasks.safetensors"  # no pickle: the work folder is just files
    if state.get("pseudomasks") and masks_file.is_file():
        from safetensors.numpy import load_file
        masks = load_file(str(masks_file))
        progress.log("--resume: pseudomasks of the interrupted run reused")
    else:
        popts = PseudomaskOptions(methods=(pm.method,), attn_blocks=pm.attn_blocks or len(classifier.blocks),
                                  method_options={pm.method: dict(pm.options)})
        masks = {s.id: res[pm.method].with_ignore()
                 for s, res in iter_dataset_pseudomasks(classifier, norm, train_tiles, popts,
                                                        progress=progress, use_image_labels=True)}
        from safetensors.numpy import save_file
        save_file({k: np.ascontiguousarray(v) for k, v in masks.items()}, str(masks_file))
        state["pseudomasks"] = True
        write_text_atomic(work / "state.json", json.dumps(state))
    if opts.spectral:
        with progress.stage("spectral refinement", total=None):
            masks, card["spectral_refinement"] = spectral_refine(train_tiles, masks, norm, opts.seed)
    progress.check_cancelled()

    # -- refinement ---------------------------------------------------------------------------
    segmenter, rcfg, seg_name = fit_segmenter(base, train_tiles, masks, norm, opts, progress)
    f1 = _segmenter_tag_f1(segmenter, hold_tiles, norm)
    if f1 is not None:
        metrics["holdout_map_tag_f1"] = f1
    progress.check_cancelled()

    # -- bundle -------------------------------------------------------------------------------
    card["metrics"] = metrics
    card["classifier"] = {"pruned_share": round(classifier.pruned_share(), 4),
                          "open_heads_per_block": classifier.open_heads_per_block()}
    card["segmenter"] = {"name": seg_name if isinstance(seg_name, str) else "base segmenter",
                         "iterations": rcfg.iterations,
                         "fine_tuned_from_base": base is not None and base.segmenter is not None}
    stage = Path(tempfile.mkdtemp(prefix=".model-", dir=out))
    try:
        save_checkpoint(stage / "classifier", classifier, norm, list(scheme.names), scheme.name,
                        metrics=metrics, half=True)
        save_segmenter(stage / "segmenter", segmenter, in_channels=len(bands), class_names=list(scheme.names),
                       normalizer=norm, s2_bands=list(bands), scheme=scheme.name, training=rcfg.to_dict(),
                       metrics=metrics, half=True)
        write_text_atomic(stage / "scheme.json", json.dumps(scheme.to_dict(), indent=2))
        card["seconds_to_train"] = round(time.perf_counter() - t0, 1)
        tile_px = base.tile if base is not None else 256
        overlap = base.overlap if base is not None else 32
        write_bundle_json(stage, classifier="classifier", segmenter="segmenter", pseudomask=pm,
                          tile=tile_px, overlap=overlap, card=card, scheme="scheme.json")
        write_text_atomic(stage / "MODEL_CARD.md", model_card(card))
        if model_dir.exists():
            shutil.rmtree(model_dir)
        stage.chmod(0o755)
        stage.rename(model_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    summary: dict = {"outputs": {"model": str(model_dir)}, "scheme": scheme.to_dict(), "metrics": metrics,
                     "tiles": card["tiles"], "labels": labels.report, "tag_tile": tile}

    # -- map ----------------------------------------------------------------------------------
    if opts.predict:
        from ..predict import PredictOptions, predict_scene

        bundle = load_bundle(model_dir)
        map_dir.mkdir(exist_ok=True)
        maps = []
        for r in rasters:
            s = predict_scene(bundle, r, map_dir, opts=PredictOptions(
                level="detailed", overwrite=opts.overwrite, band_order=opts.band_order,
                radiometry=opts.radiometry, smooth_blocky=opts.smooth_blocky, threads=opts.threads,
                device=opts.device), progress=progress)
            maps.append(s)
        summary["outputs"].update(maps[0]["outputs"])
        summary["maps"] = [m["outputs"] for m in maps]
    shutil.rmtree(work, ignore_errors=True)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    write_text_atomic(out / "fit.json", json.dumps(summary, indent=2, default=str))
    summary["outputs"]["fit"] = str(out / "fit.json")
    progress.result(**summary)
    return summary


def model_card(c: dict) -> str:
    m = c.get("metrics", {})
    rows = "\n".join(f"| {k} | {v:.3f} |" for k, v in m.items() if isinstance(v, (int, float))) or \
        "| (no held-out tiles) | - |"
    classes = ", ".join(f"{k['name']} ({k['value']})" for k in c["scheme"]["classes"])
    return f"""# SparseViT model fitted to an analyst's tags (`sparsevit fit`)

- **Classes**: {classes} (scheme.json).
- **Trained on**: {c['tiles']['train']} tagged tiles of {c['tag_tile']} px of
  {', '.join(Path(s).name for s in c['sources'])}
  (labels: {Path(c['labels']['labels']).name}, {c['labels']['kind']}); {c['tiles']['holdout']} tiles held out.
- **Base model**: {c['base_model'] or 'none (trained from scratch)'}; classifier
  {c['classifier']['pruned_share']:.0%} of heads pruned; segmenter {c['segmenter']['name']},
  {c['segmenter']['iterations']} refinement iterations.
- Trained in {c.get('seconds_to_train', 0):.0f} s. Only image-level tags were used.

## Held-out tiles
| metric | value |
|---|---|
{rows}

`holdout_classifier_macro_f1`: the classifier's image-level tags on the held-out tiles;
`holdout_map_tag_f1`: classes covering >= 5 % of the map of each held-out tile vs its tags.
Neither is a pixel accuracy: check the map against imagery before relying on it.
"""

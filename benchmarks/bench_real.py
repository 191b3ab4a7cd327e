"""Real-scene benchmark: does the bundled model map real Sentinel-2 data correctly?

    .venv/bin/python benchmarks/bench_real.py [--model resources/models/default] [--previous DIR]

Everything here is real, held-out data carried by the repository (``data/``, ``resources/sample``):

1. EuroSAT-MS test patches (113 patches never trained on, nor their RGB twins): patch accuracy
   of the classifier (top class) with all bands (``eurosat_ms_accuracy``), with the three RGB
   bands only (``eurosat_ms_accuracy_rgb``), and on the real 8-bit RGB twins brought to DN by
   the committed calibration (``eurosat_rgb_twin_accuracy``).
2. Sen1Floods11 chip (hand-labelled water): water IoU of the coarse map (``sen1floods11_water_iou``).
3. BigEarthNet v1/v2 patches (38, L2A, none trained on): image-level F1 of the coarse classes
   found in the map (a class counts as found when it covers >= 5% of the patch) against the
   patch labels mapped by ``bigearthnet19_to_eurosat_coarse`` (``bigearthnet_coarse_f1``).
4. Mosaics of the held-out MS patches (200 scenes, 256 px): pixel mIoU of the land-cover map,
   detailed and coarse (``mosaic_miou``, ``mosaic_miou_coarse``) and of the pseudomask.
5. A PNG overview and coarse class shares for every real scene (``real_overviews/``).

``--previous`` runs the same on another model (e.g. the model this one replaces) side by side.
Writes ``benchmarks/results/real.json`` and ``real.md``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "engine"))

from sparsevit.bands import S2_BANDS_NO_CIRRUS  # noqa: E402
from sparsevit.bundle import load_bundle  # noqa: E402
from sparsevit.datasets import (  # noqa: E402
    BigEarthNetV1Dataset,
    BigEarthNetV2Dataset,
    rgb_calibration,
)
from sparsevit.datasets.eurosat import read_eurosat_patch  # noqa: E402
from sparsevit.datasets.eurosat_real import RGB_BANDS, RealPatchScenes, ms_patches  # noqa: E402
from sparsevit.devices import auto_precision  # noqa: E402
from sparsevit.evaluation.metrics import EvaluationSet  # noqa: E402
from sparsevit.io.atomic import write_text_atomic  # noqa: E402
from sparsevit.io.processing_level import array_for_model  # noqa: E402
from sparsevit.predict import PredictOptions, predict_scene  # noqa: E402
from sparsevit.pseudomasks.generate import (  # noqa: E402
    PseudomaskOptions,
    iter_dataset_pseudomasks,
    pseudomasks_for_batch,
)
from sparsevit.refine.segmenter import predict_logits_padded  # noqa: E402
from sparsevit.schemes import load_mapping  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
DATA = REPO / "data"
FOUND_FRACTION = 0.05
PRECISION = "fp32"  # set by --precision
SCENES = {  # every real scene the repository carries, with what a person sees in its RGB
    "spain_sen1floods11": (REPO / "resources/sample/Spain_7370579_S2Hand.tif",
                           "rural farmland with villages, a motorway and a river (L1C)"),
    "major_tom_se_asia": (DATA / "major_tom/S2B_MSIL2A_20200223T032739_N9999_R018_T48QUE_20230924T183543",
                          "rivers, fields, villages, reservoirs (L2A)"),
    "ssl4eo_l1c_2020_06": (DATA / "ssl4eo_s12/s2c/0000200", "SSL4EO-S12 site, L1C, first date"),
    "ssl4eo_l2a_2020_06": (DATA / "ssl4eo_s12/s2a/0000200", "SSL4EO-S12 site, L2A, first date"),
}


def _first_date(folder: Path) -> Path:
    subs = sorted(p for p in folder.iterdir() if p.is_dir())
    return subs[0] if subs else folder


def _with_bands(s2: np.ndarray, have: tuple[str, ...], bundle) -> np.ndarray:
    """Raw DN [len(have), H, W] -> the model's band order, absent bands NaN, an input of another
    processing level than the model's handled as predict does (judged from B09/B8A)."""
    trained = bundle.card.get("trained_on_level") if isinstance(bundle.card, dict) else None
    return array_for_model(s2.astype(np.float32, copy=False), have, bundle.s2_bands, trained,
                           bundle.band_flexible)[0]


def _can_read(bundle, bands) -> bool:
    return set(bundle.min_bands) <= set(bands)


@torch.no_grad()
def _classify(bundle, arrays: list[np.ndarray]) -> np.ndarray:
    x = torch.stack([bundle.normalizer(a) for a in arrays])
    return torch.sigmoid(bundle.classifier.eval()(x)).numpy()


def _segment(bundle, array: np.ndarray) -> np.ndarray:
    """The land-cover classes ``predict`` maps for one image: the segmenter's, else (a bundle
    without one) the pseudomask's."""
    x = bundle.normalizer(array)[None]
    if bundle.segmenter is None:
        pm = bundle.pseudomask
        opts = PseudomaskOptions(methods=(pm.method,), threshold=pm.threshold,
                                 attn_blocks=pm.attn_blocks or len(bundle.classifier.blocks),
                                 method_options={pm.method: pm.options})
        (masks,), _ = pseudomasks_for_batch(bundle.classifier.eval(), x, opts)
        return masks[pm.method].labels.astype(np.uint8)
    with torch.no_grad():
        return predict_logits_padded(bundle.segmenter.eval(), x)[0].argmax(0).numpy().astype(np.uint8)


def patch_accuracy(bundle) -> dict:
    names = list(bundle.scheme.names)
    patches = ms_patches(DATA, "test")
    rows = {}
    ms = [read_eurosat_patch(p, S2_BANDS_NO_CIRRUS).astype(np.float32) for _, _, p in patches]
    truth = np.array([ci for _, ci, _ in patches])
    full = [_with_bands(a, S2_BANDS_NO_CIRRUS, bundle) for a in ms]
    rows["eurosat_ms_accuracy"] = float((_classify(bundle, full).argmax(1) == truth).mean())
    rgb_idx = [S2_BANDS_NO_CIRRUS.index(b) for b in RGB_BANDS]
    if _can_read(bundle, RGB_BANDS):
        rgb = [_with_bands(a[rgb_idx], RGB_BANDS, bundle) for a in ms]
        pred_rgb = _classify(bundle, rgb).argmax(1)
        rows["eurosat_ms_accuracy_rgb"] = float((pred_rgb == truth).mean())
        cal = rgb_calibration.load(DATA / "eurosat_rgb" / "calibration.json")
        twins = rgb_calibration.read_rgb_zip(DATA / "eurosat_rgb" / "EuroSAT_RGB.zip", [n for n, _, _ in patches])
        tw = [_with_bands(cal.to_dn(twins[n][1])[::-1], RGB_BANDS, bundle) for n, _, _ in patches]
        rows["eurosat_rgb_twin_accuracy"] = float((_classify(bundle, tw).argmax(1) == truth).mean())
    else:
        rows["eurosat_ms_accuracy_rgb"] = None
        rows["eurosat_rgb_twin_accuracy"] = None
        rows["rgb_note"] = f"the model needs {', '.join(bundle.min_bands)}: it cannot read RGB-only input"
    # the land-cover map's majority class per patch, as an analyst reading the map would see it
    maj = np.array([np.bincount(_segment(bundle, a).ravel(), minlength=len(names)).argmax() for a in full])
    rows["eurosat_ms_accuracy_map_majority"] = float((maj == truth).mean())
    pred = _classify(bundle, full).argmax(1)
    per_class = {n: float((pred[truth == i] == i).mean()) for i, n in enumerate(names)}
    rows["eurosat_ms_accuracy_per_class"] = per_class
    rows["eurosat_ms_test_patches"] = len(patches)
    return rows


def water(bundle) -> dict:
    from sparsevit.recipes.default_model import sen1floods11_water
    w = sen1floods11_water(bundle, precision=PRECISION)
    return {"sen1floods11_water_iou": w["water_iou"], "sen1floods11_overall_accuracy": w["overall_accuracy"],
            "sen1floods11_water_px_true": w["water_pixels_true"],
            "sen1floods11_water_px_pred": w["water_pixels_predicted"]}


def bigearthnet(bundle) -> dict:
    to_coarse = load_mapping("eurosat_to_eurosat_coarse")
    ben_map = load_mapping("bigearthnet19_to_eurosat_coarse")
    coarse = to_coarse.target
    k = coarse.num_classes
    sets = [BigEarthNetV2Dataset(DATA / "bigearthnet_v2"), BigEarthNetV2Dataset(DATA / "bigearthnet_v2_more"),
            BigEarthNetV1Dataset(DATA / "bigearthnet_v1")]
    tp = np.zeros(k)
    fp = np.zeros(k)
    fn = np.zeros(k)
    rows = []
    lut = to_coarse.lut
    for ds in sets:
        for i in range(len(ds)):
            s = ds[i]
            true_idx = set(coarse.to_index(ben_map.lut[np.flatnonzero(s.labels)]).tolist()) - {255}
            labels = _segment(bundle, _with_bands(s.s2, ds.s2_bands, bundle))
            values = np.asarray(bundle.scheme.values, np.uint8)[labels]
            cidx = coarse.to_index(lut[values])
            share = np.bincount(cidx.ravel(), minlength=256)[:k] / cidx.size
            found = set(np.flatnonzero(share >= FOUND_FRACTION).tolist())
            for c in range(k):
                tp[c] += (c in found) and (c in true_idx)
                fp[c] += (c in found) and (c not in true_idx)
                fn[c] += (c not in found) and (c in true_idx)
            rows.append({"id": s.id, "true": sorted(coarse.names[c] for c in true_idx),
                         "found": sorted(coarse.names[c] for c in found)})
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    support = tp + fn
    micro = float(2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1))
    return {"bigearthnet_coarse_f1": micro,
            "bigearthnet_coarse_macro_f1": float(f1[support > 0].mean()),
            "bigearthnet_coarse_f1_per_class": {coarse.names[c]: float(f1[c]) for c in range(k)},
            "bigearthnet_patches": len(rows), "bigearthnet_rows": rows}


def mosaics(bundle, scenes: int) -> dict:
    names = list(bundle.scheme.names)
    coarse = load_mapping("eurosat_to_eurosat_coarse")
    cidx_lut = coarse.target.to_index(coarse.lut[np.asarray(bundle.scheme.values)])  # class index -> coarse index
    ds = RealPatchScenes(DATA, "test", num_scenes=scenes, size=256)
    det = EvaluationSet(len(names), class_names=names)
    crs = EvaluationSet(coarse.target.num_classes, class_names=list(coarse.target.names))
    pmv = EvaluationSet(len(names), class_names=names)
    preds = {}
    for i in range(len(ds)):
        s = ds[i]
        labels = _segment(bundle, _with_bands(s.s2, ds.s2_bands, bundle))
        preds[s.id] = labels
        det.add(s.id, labels, s.mask)
        crs.add(s.id, cidx_lut[labels].astype(np.uint8), cidx_lut[s.mask].astype(np.uint8))
    pm = bundle.pseudomask
    opts = PseudomaskOptions(methods=(pm.method,), threshold=pm.threshold,
                             attn_blocks=pm.attn_blocks or len(bundle.classifier.blocks),
                             method_options={pm.method: pm.options})
    for s, res in iter_dataset_pseudomasks(bundle.classifier, bundle.normalizer, ds, opts):
        pmv.add(s.id, res[pm.method].labels, s.mask)
    d, c, p = (e.summary()["scores"] for e in (det, crs, pmv))
    return {"mosaic_miou": d["miou"], "mosaic_miou_coarse": c["miou"], "mosaic_pseudomask_miou": p["miou"],
            "mosaic_overall_accuracy": d["overall_accuracy"], "mosaic_scenes": scenes,
            "mosaic_per_class_iou": dict(zip(names, d["per_class"]["iou"])),
            "mosaic_coarse_per_class_iou": dict(zip(coarse.target.names, c["per_class"]["iou"]))}


def classifier_f1(model, normalizer, scenes: int) -> float:
    """Macro-F1 of a classifier's image-level labels on the held-out patch mosaics."""
    from sparsevit.training import evaluate
    from sparsevit.training.data import TorchSampleDataset
    ds = RealPatchScenes(DATA, "test", num_scenes=scenes, size=256)
    scores = evaluate(model.eval(), TorchSampleDataset(ds, normalizer, train=False), list(ds.scheme.names),
                      batch_size=16)
    return float(scores["macro_f1"])


def overviews(bundle, tag: str, tmp: Path, out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    coarse = load_mapping("eurosat_to_eurosat_coarse")
    res = {}
    for key, (path, what) in SCENES.items():
        src = path if path.suffix == ".tif" or path.name.startswith("S2") else _first_date(path)
        run = tmp / f"ov_{key}"
        run.mkdir()
        try:
            s = predict_scene(bundle, src, run, stem=key,
                              opts=PredictOptions(overview=True, stats=False, precision=PRECISION))
        except Exception as exc:  # a scene the model cannot read is a result, not a crash
            res[key] = {"error": str(exc), "what": what}
            continue
        shutil.copy(s["outputs"]["overview"], out_dir / f"{key}_{tag}.png")
        with rasterio.open(s["outputs"]["landcover"]) as lc:
            det = lc.read(1)
        valid = det != 255
        cvals = coarse.lut[det[valid]]
        shares = {n: round(float((cvals == coarse.target.by_name(n).value).mean()), 4)
                  for n in coarse.target.names}
        dshares = {n: round(float((det[valid] == v).mean()), 4)
                   for n, v in zip(bundle.scheme.names, bundle.scheme.values)}
        res[key] = {"what": what, "input": str(src.relative_to(REPO)), "coarse_shares": shares,
                    "detailed_shares": dshares, "overview": f"real_overviews/{key}_{tag}.png",
                    "bands_used": s["counts"]["bands"]["used"] if "bands" in s["counts"] else None}
    return res


def evaluate(model: Path, tag: str, scenes: int, base: str | None = None,
             results: Path = RESULTS) -> dict:
    bundle = load_bundle(model)
    t0 = time.perf_counter()
    row: dict = {"model": str(model.relative_to(REPO)) if model.is_relative_to(REPO) else str(model),
                 "band_flexible": bundle.band_flexible, "required_bands": list(bundle.min_bands),
                 "pruned_share": round(bundle.classifier.pruned_share(), 4),
                 "size_mb": round(sum(f.stat().st_size for f in model.iterdir()) / 2**20, 2),
                 "classifier_macro_f1": classifier_f1(bundle.classifier, bundle.normalizer, scenes)}
    if base:
        from sparsevit.training.checkpoint import load_model, normalizer_from_config
        bm, bdoc = load_model(base)
        row["unpruned_classifier_macro_f1"] = classifier_f1(bm, normalizer_from_config(bdoc), scenes)
        row["pruning_cost_points"] = round(100 * (row["unpruned_classifier_macro_f1"] - row["classifier_macro_f1"]), 2)
    # the models run at predict's precision (bf16 where the CPU has it): the figures are the maps' own
    with tempfile.TemporaryDirectory() as tmp, \
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=PRECISION == "bf16"):
        tmp = Path(tmp)
        for part in (patch_accuracy(bundle), water(bundle), bigearthnet(bundle),
                     mosaics(bundle, scenes), {"scenes": overviews(bundle, tag, tmp, results / "real_overviews")}):
            row.update(part)
    row["precision"] = PRECISION
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


GOALS = {"eurosat_ms_accuracy": 0.90, "eurosat_ms_accuracy_rgb": 0.85, "sen1floods11_water_iou": 0.80,
         "mosaic_miou_coarse": 0.75}
KEYS = ["eurosat_ms_accuracy", "eurosat_ms_accuracy_rgb", "eurosat_rgb_twin_accuracy",
        "eurosat_ms_accuracy_map_majority",
        "sen1floods11_water_iou", "bigearthnet_coarse_f1", "bigearthnet_coarse_macro_f1",
        "mosaic_miou", "mosaic_miou_coarse", "mosaic_pseudomask_miou", "classifier_macro_f1",
        "unpruned_classifier_macro_f1", "pruning_cost_points", "pruned_share", "size_mb"]


def markdown(res: dict) -> str:
    models = [m for m in ("current", "previous") if m in res]
    fmt = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = ["# Real-scene benchmark (`benchmarks/bench_real.py`)", "",
             f"Held-out real data only; {res['current']['mosaic_scenes']} mosaic scenes; models run in "
             f"{res['current'].get('precision', 'fp32')} (as predict runs them on this CPU). "
             f"Models: " + ", ".join(f"{m} = `{res[m]['model']}`" for m in models) + "."
             + (f" Previous: {res['previous_note']}" if res.get("previous_note") else ""), "",
             "| figure | " + " | ".join(models) + " | goal |", "|---|" + "---|" * len(models) + "---|"]
    for k in KEYS:
        goal = GOALS.get(k)
        lines.append(f"| `{k}` | " + " | ".join(fmt(res[m].get(k)) for m in models)
                     + f" | {'>= ' + str(goal) if goal else ''} |")
    lines += ["", "## Real scenes: coarse class shares of the land-cover map", "",
              "| scene | model | Water | Built-up | Cropland | Grassland | Forest | overview |",
              "|---|---|---|---|---|---|---|---|"]
    for key in SCENES:
        for m in models:
            sc = res[m]["scenes"].get(key, {})
            if "error" in sc:
                lines.append(f"| {key} | {m} | error: {sc['error'][:80]} | | | | | |")
                continue
            sh = sc["coarse_shares"]
            lines.append(f"| {key} | {m} | " + " | ".join(f"{100 * sh[n]:.0f}%" for n in
                         ("Water", "Built-up", "Cropland", "Grassland", "Forest"))
                         + f" | [{sc['overview']}]({sc['overview']}) |")
    lines += ["", "## Per-class patch accuracy (all bands)", "", "| class | " + " | ".join(models) + " |",
              "|---|" + "---|" * len(models)]
    for n in res["current"]["eurosat_ms_accuracy_per_class"]:
        lines.append(f"| {n} | " + " | ".join(fmt(res[m]["eurosat_ms_accuracy_per_class"][n]) for m in models) + " |")
    lines += ["", "## BigEarthNet coarse F1 per class", "", "| class | " + " | ".join(models) + " |",
              "|---|" + "---|" * len(models)]
    for n in res["current"]["bigearthnet_coarse_f1_per_class"]:
        lines.append(f"| {n} | " + " | ".join(fmt(res[m]["bigearthnet_coarse_f1_per_class"][n]) for m in models) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(REPO / "resources" / "models" / "default"))
    ap.add_argument("--previous", default=None, help="another model folder, measured side by side")
    ap.add_argument("--previous-note", default=None, help="what the previous model is, for the table")
    ap.add_argument("--scenes", type=int, default=200)
    ap.add_argument("--base-classifier", default=None,
                    help="the unpruned classifier the model was pruned from: macro-F1 side by side")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                    help="as predict's --precision (auto: bf16 on a CPU with native bf16)")
    ap.add_argument("--out", default=str(RESULTS / "real.json"))
    ap.add_argument("--update-card", action="store_true",
                    help="write the figures into the model's bundle.json card and MODEL_CARD.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    global PRECISION
    PRECISION = args.precision if args.precision != "auto" else auto_precision(torch.device("cpu"))
    results = Path(args.out).resolve().parent  # the overviews go beside the figures
    res = {"benchmark": "real", "threads": args.threads,
           "current": evaluate(Path(args.model).resolve(), "current", args.scenes, args.base_classifier,
                               results)}
    if args.previous:
        res["previous"] = evaluate(Path(args.previous).resolve(), "previous", args.scenes, results=results)
        res["previous_note"] = args.previous_note
    for k in KEYS:
        res[k] = res["current"].get(k)
    res["goals"] = {k: {"goal": g, "value": res["current"].get(k),
                        "met": res["current"].get(k) is not None and res["current"][k] >= g}
                    for k, g in GOALS.items()}
    out = Path(args.out)
    write_text_atomic(out, json.dumps(res, indent=2, default=float) + "\n")
    md = markdown(res)
    write_text_atomic(out.with_suffix(".md"), md)
    print(md)
    if args.update_card:
        update_card(Path(args.model), res["current"])
    return 0


def known_wrong(row: dict) -> list[str]:
    """What the model still gets wrong, from the figures (for the model card)."""
    out = []
    weak = {k: v for k, v in row["eurosat_ms_accuracy_per_class"].items() if v < 0.7}
    if weak:
        worst_first = sorted(weak.items(), key=lambda kv: kv[1])
        out.append("Held-out patches of " + ", ".join(f"{k} ({v:.0%})" for k, v in worst_first)
                   + " are often misclassified (patch accuracy below 70%).")
    ben = {k: v for k, v in row["bigearthnet_coarse_f1_per_class"].items() if v < 0.5}
    if ben:
        out.append("On BigEarthNet (L2A, Austria/Portugal/Finland...) the coarse classes "
                   + ", ".join(f"{k} (F1 {v:.2f})" for k, v in ben.items()) + " are found unreliably.")
    w = row.get("sen1floods11_water_iou")
    if w is not None and w < 0.8:
        out.append(f"Water on the Sen1Floods11 sample: IoU {w:.2f} (below the 0.80 goal).")
    return out


def update_card(model: Path, row: dict) -> None:
    from sparsevit.recipes.default_model import REAL_FIGURES, model_card
    meta = model / "bundle.json"
    doc = json.loads(meta.read_text(encoding="utf-8"))
    real = {k: row.get(k) for _, k in REAL_FIGURES}
    real["known_wrong"] = known_wrong(row)
    real["measured_by"] = "benchmarks/bench_real.py"
    doc["card"]["real_data"] = real
    write_text_atomic(meta, json.dumps(doc, indent=2, default=float))
    write_text_atomic(model / "MODEL_CARD.md", model_card(doc["card"]))
    print(f"model card updated: {model / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    sys.exit(main())

"""Pseudomasks and refinement on EuroSAT-mosaic: does attention beat Grad-CAM and top-1 fill,
and how close does refinement come to full supervision?

Protocol (CPU, 2 threads, seeded):
1. Classifier: the tiny gated ViT trained on fresh 128 px TRAIN scenes every epoch (lambda 0),
   then a pruned copy: fine-tuned with the L0 penalty (keep >= 1 head in the last block, the
   one the masks read) and physically pruned.
2. Pseudomasks for a fixed set of 256 px TEST scenes (source patches disjoint from training)
   with every method; every image counted (fallbacks recorded, none dropped).
3. Refinement: pseudomasks (best attention method, uncertain pixels ignored) of fixed 256 px
   TRAIN scenes -> segmenter it1 -> its confident masks -> it2; the same segmenter trained on
   the TRUE masks of the same scenes is the fully supervised upper bound. Scored on TEST scenes.

    python benchmarks/bench_pseudomasks.py            # full run
    python benchmarks/bench_pseudomasks.py --quick    # smoke run (~3 min)
Writes benchmarks/results/pseudomasks.json and pseudomasks.md and prints the table.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "engine"))
sys.path.insert(0, str(REPO / "benchmarks"))

from sparsevit.bands import S2_BANDS_NO_CIRRUS  # noqa: E402
from sparsevit.datasets import EuroSatMosaic  # noqa: E402
from sparsevit.evaluation.metrics import EvaluationSet  # noqa: E402
from sparsevit.models import get_config, prune_heads  # noqa: E402
from sparsevit.pseudomasks.generate import PseudomaskOptions, iter_dataset_pseudomasks  # noqa: E402
from sparsevit.recipes.default_model import prune_and_recover  # noqa: E402
from sparsevit.refine.iterate import RefineConfig, evaluate_segmenter, refine, train_on_masks  # noqa: E402
from sparsevit.refine.train import SegTrainConfig  # noqa: E402
from sparsevit.training import TrainConfig, load_model, save_checkpoint, train  # noqa: E402

# (entry name, method, model, attn_blocks, method options)
VARIANTS = [
    ("top1_fill", "top1_fill", "full", 1, {}),
    ("gradcam", "gradcam", "full", 1, {}),
    ("attention_faithful", "attention_faithful", "full", 1, {}),
    ("attention_faithful_all_blocks", "attention_faithful", "full", 0, {}),
    ("attention_match_clusters", "attention", "full", 1, {"mode": "clusters"}),
    ("attention_match_heads", "attention", "full", 1, {"mode": "heads"}),
    ("attention_match_heads_all_blocks", "attention", "full", 0, {"mode": "heads"}),
    ("attention_weighted", "attention_weighted", "full", 1, {}),
    ("attention_weighted_all_blocks", "attention_weighted", "full", 0, {}),
]
ATTENTION_CANDIDATES = [v[0] for v in VARIANTS if v[0].startswith("attention_") and
                        not v[0].startswith("attention_faithful")]


def score_pseudomasks(model, norm, ds, variants, relabel_of=None):
    """EvaluationSet per variant over every test scene."""
    names = list(ds.scheme.names)
    evals = {v[0]: EvaluationSet(len(names), class_names=names) for v in variants}
    by_blocks: dict[int, list] = {}
    for v in variants:
        by_blocks.setdefault(v[3] or len(model.blocks), []).append(v)
    for blocks, vs in by_blocks.items():
        for entry, method, _, _, opts in vs:
            o = PseudomaskOptions(methods=(method,), attn_blocks=blocks,
                                  method_options={method: opts},
                                  relabel=(method,) if entry == relabel_of else ())
            for s, masks in iter_dataset_pseudomasks(model, norm, ds, o, batch_size=16):
                pm = masks[method]
                evals[entry].add(s.id, pm.labels, s.mask, info={"fallback": pm.info.get("fallback")})
                if entry == relabel_of:
                    name = "attention_relabel"
                    evals.setdefault(name, EvaluationSet(len(names), class_names=names))
                    evals[name].add(s.id, masks[f"{method}_relabel"].labels, s.mask,
                                    info={"fallback": pm.info.get("fallback")})
    return evals


def timed_postprocess(model, norm, ds, method, opts, blocks, n=32):
    """ms per 256x256 image for everything after the ViT forward: median over the images with
    >= 2 predicted classes (the path that clusters/matches/fills) and over all images."""
    from sparsevit.pseudomasks.extract import classifier_evidence
    from sparsevit.pseudomasks.postprocess import make_pseudomask
    x = torch.stack([norm(ds[i].s2) for i in range(n)])
    ev = classifier_evidence(model, x, attn_blocks=blocks or len(model.blocks), gradcam=True)
    times, multi = [], []
    for i in range(n):
        t0 = time.perf_counter()
        pm = make_pseudomask(method, ev.probs[i], x.shape[-2:], head_maps=ev.head_maps[i],
                             class_maps=ev.gradcam[i], **opts)
        times.append(time.perf_counter() - t0)
        if pm.info.get("n_predicted", 0) >= 2:
            multi.append(times[-1])
    return {"multi_label_ms": round(1000 * float(np.median(multi)), 3) if multi else None,
            "all_images_ms": round(1000 * float(np.median(times)), 3), "multi_label_images": len(multi),
            "images": n}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data", default=str(REPO / "data" / "eurosat_ms"))
    ap.add_argument("--classifier", help="use this trained classifier checkpoint instead of training")
    ap.add_argument("--pruned", help="use this pruned classifier checkpoint instead of fine-tuning")
    ap.add_argument("--train-scenes", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--lambda-l0", type=float, default=0.25)
    ap.add_argument("--ft-epochs", type=int, default=3)
    ap.add_argument("--recover-epochs", type=int, default=2)
    ap.add_argument("--test-scenes", type=int, default=200)
    ap.add_argument("--refine-scenes", type=int, default=400)
    ap.add_argument("--refine-epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--save-models", help="folder to keep the trained classifier/segmenters")
    args = ap.parse_args(argv)
    if args.quick:
        args.train_scenes, args.epochs, args.ft_epochs, args.recover_epochs = 64, 1, 1, 1
        args.test_scenes, args.refine_scenes, args.refine_epochs = 16, 16, 1
    torch.set_num_threads(args.threads)
    t_all = time.perf_counter()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    bands = S2_BANDS_NO_CIRRUS
    train_ds = EuroSatMosaic(args.data, split="train", num_scenes=args.train_scenes, size=128,
                             seed=args.seed, bands=bands)
    test_ds = EuroSatMosaic(args.data, split="test", num_scenes=args.test_scenes, size=256,
                            seed=args.seed, bands=bands)
    # refinement scenes: training sources, an epoch the classifier never saw
    refine_ds = EuroSatMosaic(args.data, split="train", num_scenes=args.refine_scenes, size=256,
                              seed=args.seed + 101, bands=bands)
    names = list(train_ds.scheme.names)
    report: dict = {"benchmark": "pseudomasks", "dataset": "eurosat-mosaic", "quick": args.quick,
                    "seed": args.seed, "threads": args.threads, "test_scenes": args.test_scenes,
                    "test_size_px": 256, "refine_scenes": args.refine_scenes,
                    "classes": names, "protocol": __doc__.split("Protocol")[1].split("    python")[0].strip()}

    def save():
        report["seconds"] = round(time.perf_counter() - t_all, 1)
        (out_dir / "pseudomasks.json").write_text(json.dumps(report, indent=2, default=float))

    keep = Path(args.save_models) if args.save_models else None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # --- 1. classifiers ------------------------------------------------------------------
        if args.classifier:
            model, doc = load_model(args.classifier)
            from sparsevit.training.checkpoint import normalizer_from_config
            norm = normalizer_from_config(doc)
            ck = Path(args.classifier)
        else:
            mcfg = get_config("tiny", s2_bands=bands, num_classes=len(names), keep_heads_in_last=1)
            print(f"classifier: {args.epochs} epochs x {args.train_scenes} fresh 128 px scenes", flush=True)
            r = train(mcfg, train_ds, None, TrainConfig(epochs=args.epochs, batch_size=32, lr=1e-3,
                      seed=args.seed, crop=None, gate_lr=0.0), out_dir=(keep or tmp) / "classifier")
            model, norm, ck = r.model.eval(), r.normalizer, r.checkpoint
            report["classifier"] = {"epochs": args.epochs, "seconds": round(r.seconds, 1),
                                    "train_images_per_s": round(r.train_images_per_s, 1)}
        if args.pruned:
            pruned, _ = load_model(args.pruned)
        else:
            # exactly the default model's recipe: L0 fine-tune, physical pruning, recovery
            mcfg = get_config("tiny", s2_bands=bands, num_classes=len(names), keep_heads_in_last=1)
            pruned = prune_and_recover(mcfg, train_ds, ck, norm, args.lambda_l0, args.ft_epochs,
                                       args.recover_epochs, args.seed, tmp)
            if keep:
                save_checkpoint(keep / "classifier_pruned", pruned, norm, names, "eurosat")
        pruned.eval()
        report["pruned_model"] = {"lambda_l0": args.lambda_l0, "ft_epochs": args.ft_epochs,
                                  "recover_epochs": args.recover_epochs, "pruned_share": round(pruned.pruned_share(), 4),
                                  "open_heads_per_block": pruned.open_heads_per_block()}
        print(f"pruned: {pruned.pruned_share():.0%} of heads closed, open per block "
              f"{pruned.open_heads_per_block()}", flush=True)

        # --- 2. pseudomasks on test scenes ---------------------------------------------------
        t0 = time.perf_counter()
        evals = score_pseudomasks(model, norm, test_ds, VARIANTS)
        summaries = {k: v.summary() for k, v in evals.items()}
        best = max(ATTENTION_CANDIDATES, key=lambda k: summaries[k]["scores"]["miou"])
        _, method, _, blocks, opts = next(v for v in VARIANTS if v[0] == best)
        extra = score_pseudomasks(model, norm, test_ds, [(best, method, "full", blocks, opts)],
                                  relabel_of=best)
        summaries["attention_relabel"] = extra["attention_relabel"].summary()
        pr = score_pseudomasks(pruned, norm, test_ds, [("attention_pruned", method, "pruned", blocks, opts)])
        summaries["attention_pruned"] = pr["attention_pruned"].summary()
        report["pseudomask_seconds"] = round(time.perf_counter() - t0, 1)
        report["attention_is"] = best
        miou = {k: round(v["scores"]["miou"], 4) for k, v in summaries.items()}
        miou["attention"] = miou[best]
        report["miou"] = miou
        report["scores"] = summaries
        save()
        print("pseudomask mIoU:", json.dumps(miou), flush=True)

        # --- speed ---------------------------------------------------------------------------
        pp = timed_postprocess(model, norm, test_ds, method, opts, blocks, n=min(64, len(test_ds)))
        report["postprocess_timing"] = pp
        report["postprocess_ms"] = pp["multi_label_ms"] if pp["multi_label_ms"] is not None else pp["all_images_ms"]
        import bench_postprocess as bp
        from sparsevit.pseudomasks.fill import nearest_fill, nearest_fill_reference
        labels, assigned = bp.fill_case()
        fast = bp.median_ms(lambda: nearest_fill(labels, assigned), 20)
        slow = bp.median_ms(lambda: nearest_fill_reference(labels, assigned), 1 if args.quick else 3)
        report["fill_ms"] = {"distance_transform": round(fast, 3), "per_pixel_loop": round(slow, 1)}
        report["fill_speedup"] = round(slow / fast, 1)
        save()

        # --- 3. refinement ---------------------------------------------------------------------
        opts_used = PseudomaskOptions(methods=(method,), attn_blocks=blocks or len(model.blocks),
                                      method_options={method: opts})
        pm_train, pm_eval = {}, EvaluationSet(len(names), class_names=names)
        for s, masks in iter_dataset_pseudomasks(model, norm, refine_ds, opts_used, batch_size=16):
            pm_train[s.id] = masks[method].with_ignore()
            pm_eval.add(s.id, masks[method].labels, s.mask)
        report["refine_train_pseudomask_miou"] = round(pm_eval.summary()["scores"]["miou"], 4)
        report["refine_train_ignored_fraction"] = round(float(np.mean(
            [np.mean(m == 255) for m in pm_train.values()])), 4)
        rcfg = RefineConfig(iterations=2, crop=128, train=SegTrainConfig(
            epochs=args.refine_epochs, batch_size=8, lr=1e-3, seed=args.seed))
        report["refine_config"] = rcfg.to_dict()
        in_ch = len(bands)
        histories = {}

        def on_it(it, seg, hist):
            s = evaluate_segmenter(seg, test_ds, norm)
            summaries[f"refined_it{it}"] = s
            miou[f"refined_it{it}"] = round(s["scores"]["miou"], 4)
            histories[f"it{it}"] = hist
            report["refine_history"] = histories
            save()
            print(f"refined it{it}: mIoU {s['scores']['miou']:.4f} ({hist['seconds']:.0f} s)", flush=True)

        refine(refine_ds, pm_train, norm, in_ch, rcfg, on_iteration=on_it)
        seg, hist = train_on_masks(refine_ds, None, norm, in_ch, rcfg, stage="fully_supervised")
        s = evaluate_segmenter(seg, test_ds, norm)
        summaries["fully_supervised"] = s
        miou["fully_supervised"] = round(s["scores"]["miou"], 4)
        histories["fully_supervised"] = hist
        report["refined_it2_fraction_of_supervised"] = round(miou["refined_it2"] / max(miou["fully_supervised"], 1e-9), 4)
        report["goals"] = {
            "attention_beats_gradcam_by_5pts": miou["attention"] - miou["gradcam"] >= 0.05,
            "attention_beats_top1_by_5pts": miou["attention"] - miou["top1_fill"] >= 0.05,
            "refined_it2_ge_90pct_supervised": report["refined_it2_fraction_of_supervised"] >= 0.9,
            "fill_speedup_ge_100": report["fill_speedup"] >= 100,
        }
        save()

    write_table(report, out_dir / "pseudomasks.md")
    print((out_dir / "pseudomasks.md").read_text())
    return 0


def write_table(report: dict, path: Path) -> None:
    sc = report["scores"]
    lines = ["# Pseudomasks and refinement on EuroSAT-mosaic (`benchmarks/bench_pseudomasks.py`)", "",
             f"{report['test_scenes']} test scenes of 256 px (sources disjoint from training); "
             f"every image counted. `attention` = best of our variants: `{report['attention_is']}`. "
             f"Pruned model: {report['pruned_model']['pruned_share']:.0%} of heads closed "
             f"(open per block {report['pruned_model']['open_heads_per_block']}).", "",
             "| entry | mIoU | OA | AA | images | fallbacks |", "|---|---|---|---|---|---|"]
    for k in ["top1_fill", "gradcam", "attention_faithful", "attention_faithful_all_blocks",
              "attention_match_clusters", "attention_match_heads", "attention_match_heads_all_blocks",
              "attention_weighted", "attention_weighted_all_blocks", "attention_pruned",
              "attention_relabel", "refined_it1", "refined_it2", "fully_supervised"]:
        if k in sc:
            s, counts = sc[k]["scores"], sc[k]["counts"]
            lines.append(f"| {k} | {s['miou']:.4f} | {s['overall_accuracy']:.4f} | "
                         f"{s['average_accuracy']:.4f} | {counts['images']} | {counts['fallback']} |")
    lines += ["", f"Refined it2 / fully supervised: **{report.get('refined_it2_fraction_of_supervised')}** (goal >= 0.9).",
              f"Post-processing per 256x256 image (`{report['attention_is']}`): **{report['postprocess_ms']} ms**; "
              f"nearest fill speed-up vs per-pixel loop: **{report['fill_speedup']}x** "
              f"({report['fill_ms']['distance_transform']} ms vs {report['fill_ms']['per_pixel_loop']} ms).",
              f"Goals: {json.dumps(report.get('goals'))}", f"Total {report['seconds']} s, seed {report['seed']}, "
              f"{report['threads']} threads."]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())

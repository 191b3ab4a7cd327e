"""Head pruning on EuroSAT-mosaic: how many heads can close before macro-F1 drops 2 points?

Protocol (CPU, 2 threads): train the tiny gated ViT (by default with the default model's class
tokens + patch head; ``--architecture cls`` for the paper's CLS token) with lambda = 0 on fresh
128 px training scenes every epoch (baseline), then fine-tune a copy for a few epochs at each lambda (lambda = 0
included, so every entry has the same number of epochs; its score is ``macro_f1_unpruned``).
Scores are on a fixed set of 256 px TEST scenes (disjoint source patches), with the physically
pruned model; the gated model is checked to give the same outputs. Also: keep-heads-in-last
blocks, pruned vs gated inference speed side by side, training throughput.

    python benchmarks/bench_pruning.py            # full run (~15 min on 2 idle cores, 40+ when busy)
    python benchmarks/bench_pruning.py --quick    # smoke run (~2 min)
Writes benchmarks/results/pruning.json and pruning.md and prints the table.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "engine"))

from sparsevit.bands import S2_BANDS_NO_CIRRUS  # noqa: E402
from sparsevit.datasets import EuroSatMosaic  # noqa: E402
from sparsevit.models import TOKEN_LAYOUTS, get_config, prune_heads  # noqa: E402
from sparsevit.training import (  # noqa: E402
    TorchSampleDataset,
    TrainConfig,
    load_model,
    multilabel_scores,
    predict_probs,
    save_checkpoint,
    train,
)


def score(model, test_ds, names):
    probs, targets = predict_probs(model, test_ds, batch_size=16)
    return multilabel_scores(probs, targets, class_names=names), probs


def inference_speed(models: dict[str, torch.nn.Module], x: torch.Tensor, repeats: int) -> dict:
    """Images/s per model, measured interleaved so load changes on the shared CPU hit both."""
    times = {k: [] for k in models}
    with torch.no_grad():
        for m in models.values():
            m.eval()(x[:2])  # warm-up
        for _ in range(repeats):
            for k, m in models.items():
                t0 = time.perf_counter()
                m(x)
                times[k].append(time.perf_counter() - t0)
    # median per-batch time: robust to the other jobs on this machine
    return {k: x.shape[0] / float(np.median(v)) for k, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny smoke run")
    ap.add_argument("--data", default=str(REPO / "data" / "eurosat_ms"))
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--architecture", choices=tuple(TOKEN_LAYOUTS), default="ct",
                    help="ct: class tokens + patch head (the default model's); cls: one CLS token")
    ap.add_argument("--train-scenes", type=int, default=1000)
    ap.add_argument("--test-scenes", type=int, default=200)
    ap.add_argument("--base-epochs", type=int, default=8)
    ap.add_argument("--ft-epochs", type=int, default=3)
    ap.add_argument("--recover-epochs", type=int, default=3,
                    help="epochs of lambda=0 training of the physically pruned model")
    ap.add_argument("--lambdas", default="0,0.35,0.45,0.55,0.65,0.8,1")
    ap.add_argument("--keep-lambdas", default="0.8,1",
                    help="lambdas rerun with keep_heads_in_last=--keep-last")
    ap.add_argument("--keep-last", type=int, default=2)
    ap.add_argument("--distill", type=float, default=0.0,
                    help="weight of distillation from the unpruned baseline during the L0 "
                         "fine-tune and the recovery (0: off)")
    ap.add_argument("--base-classifier", metavar="CKPT",
                    help="reuse this lambda=0 classifier as the baseline instead of training one")
    ap.add_argument("--throughput-only", action="store_true",
                    help="only re-measure the training throughput (e.g. on an idle machine) and "
                         "update it in the existing pruning.json/.md")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    if args.quick:
        args.train_scenes, args.test_scenes = 96, 32
        args.base_epochs, args.ft_epochs, args.recover_epochs = 1, 1, 1
        args.lambdas, args.keep_lambdas = "0,4", "4"
    torch.set_num_threads(args.threads)
    lambdas = [float(v) for v in args.lambdas.split(",")]
    if 0.0 not in lambdas:
        lambdas.insert(0, 0.0)
    keep_lambdas = [float(v) for v in args.keep_lambdas.split(",") if v]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    if args.throughput_only:
        return throughput_only(args, out_dir)

    bands = S2_BANDS_NO_CIRRUS
    train_ds = EuroSatMosaic(args.data, split="train", num_scenes=args.train_scenes, size=128,
                             seed=args.seed, bands=bands)
    test_raw = EuroSatMosaic(args.data, split="test", num_scenes=args.test_scenes, size=256,
                             seed=args.seed, bands=bands)
    names = list(train_ds.scheme.names)
    mcfg = get_config(args.config, s2_bands=bands, num_classes=len(names),
                      **TOKEN_LAYOUTS[args.architecture])
    base_cfg = TrainConfig(epochs=args.base_epochs, batch_size=32, lr=1e-3, seed=args.seed,
                           crop=None, lambda_l0=0.0,
                           gate_lr=0.0)  # gates stay at init (12% gate dropout) until sparsifying
    ft = dict(epochs=args.ft_epochs, batch_size=32, lr=3e-4, gate_lr=0.25, warmup_fraction=0.05,
              seed=args.seed + 1, crop=None, distill_weight=args.distill)
    report: dict = {
        "benchmark": "pruning", "dataset": "eurosat-mosaic", "config": args.config,
        "architecture": mcfg.to_dict(), "seed": args.seed, "threads": args.threads,
        "quick": args.quick, "train_scenes_per_epoch": args.train_scenes, "train_size_px": 128,
        "test_scenes": args.test_scenes, "test_size_px": 256, "base_epochs": args.base_epochs,
        "ft_epochs": args.ft_epochs, "recover_epochs": args.recover_epochs,
        "distill_weight": args.distill, "base_classifier": args.base_classifier,
        "base_train_config": base_cfg.to_dict(), "ft_train_config": ft,
        "protocol": "baseline lambda=0 for base_epochs; per lambda: fine-tune ft_epochs with "
                    "the L0 penalty from the baseline, physically prune the closed heads, train "
                    "the pruned model recover_epochs more without gates. lambda=0 goes through "
                    "the same steps and is the unpruned reference. macro_f1 = after recovery",
    }

    def save_partial():
        report["seconds"] = round(time.perf_counter() - t_all, 1)
        (out_dir / "pruning.json").write_text(json.dumps(report, indent=2))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.base_classifier:
            from sparsevit.training.checkpoint import normalizer_from_config
            from sparsevit.training.loop import TrainResult
            bm, bdoc = load_model(args.base_classifier)
            report["architecture"] = bm.config.to_dict()
            epochs = len(bdoc.get("training", {}).get("history", [])) or None
            report["base_epochs"] = epochs
            base = TrainResult(model=bm.eval(), normalizer=normalizer_from_config(bdoc),
                               checkpoint=Path(args.base_classifier))
            print(f"baseline: {args.base_classifier} ({epochs} epochs)", flush=True)
        else:
            print(f"baseline: {args.base_epochs} epochs x {args.train_scenes} scenes", flush=True)
            base = train(mcfg, train_ds, None, base_cfg, out_dir=tmp / "base")
        norm = base.normalizer
        teacher = base.model.eval() if args.distill > 0 else None
        test_ds = TorchSampleDataset(test_raw, norm, train=False)
        base_scores, _ = score(base.model, test_ds, names)
        report["baseline"] = {"macro_f1": base_scores["macro_f1"], "mAP": base_scores["mAP"],
                              "pruned_share": base.model.pruned_share(),
                              "seconds": round(base.seconds, 1), "history": base.history}
        if args.base_classifier:  # throughput still measured here: one short epoch
            sub = EuroSatMosaic(args.data, split="train", num_scenes=320, size=128, seed=args.seed,
                                bands=bands)
            base.train_images_per_s = train(mcfg, sub, None, TrainConfig(
                **{**base_cfg.to_dict(), "epochs": 1}), normalizer=norm).train_images_per_s
        report["train_images_per_s"] = round(base.train_images_per_s, 2)
        save_partial()
        print(f"  baseline macro-F1 {base_scores['macro_f1']:.3f}, "
              f"train {base.train_images_per_s:.1f} img/s", flush=True)

        runs = []

        def finetune(lam: float, keep_last: int = 0) -> dict:
            # the baseline's architecture (a given --base-classifier brings its own)
            cfg = dataclasses.replace(base.model.config, keep_heads_in_last=keep_last)
            r = train(cfg, train_ds, None, TrainConfig(lambda_l0=lam, **ft),
                      init_from=base.checkpoint, normalizer=norm, teacher=teacher)
            pruned = prune_heads(r.model.eval())
            s_sparse, probs = score(pruned, test_ds, names)
            _, probs_gated = score(r.model, test_ds, names)
            s, seconds = s_sparse, r.seconds
            if args.recover_epochs:
                # closed heads are gone for good: train what is left, without gates
                ck = save_checkpoint(tmp / f"pruned_{lam:g}_{keep_last}", pruned, norm, names,
                                     "eurosat")
                rr = train(pruned.config, train_ds, None,
                           TrainConfig(epochs=args.recover_epochs, batch_size=32, lr=3e-4,
                                       warmup_fraction=0.05, seed=args.seed + 2, crop=None,
                                       distill_weight=args.distill),
                           init_from=ck, normalizer=norm, teacher=teacher)
                s, _ = score(rr.model, test_ds, names)
                seconds += rr.seconds
            entry = {"lambda": lam, "keep_heads_in_last": keep_last,
                     "pruned_share": round(r.model.pruned_share(), 4),
                     "open_heads_per_block": r.model.open_heads_per_block(),
                     "macro_f1": s["macro_f1"], "mAP": s["mAP"],
                     "macro_f1_before_recovery": s_sparse["macro_f1"],
                     "per_class_f1": s["per_class_f1"],
                     "max_abs_prob_diff_pruned_vs_gated": float(np.abs(probs - probs_gated).max()),
                     "seconds": round(seconds, 1), "model": r.model}
            print(f"  lambda {lam:g} keep_last {keep_last}: pruned {entry['pruned_share']:.0%} "
                  f"open {entry['open_heads_per_block']} macro-F1 {s['macro_f1']:.3f} "
                  f"(before recovery {s_sparse['macro_f1']:.3f}; {seconds:.0f} s)", flush=True)
            return entry

        for lam in lambdas:
            runs.append(finetune(lam))
            sweep = sorted([r for r in runs if r["keep_heads_in_last"] == 0],
                           key=lambda r: r["lambda"])
            report["lambdas"] = [r["lambda"] for r in sweep]
            report["pruned_share"] = [r["pruned_share"] for r in sweep]
            report["macro_f1"] = [r["macro_f1"] for r in sweep]
            report["runs"] = [{k: v for k, v in r.items() if k != "model"} for r in sweep]
            save_partial()
        unpruned = next(r for r in runs if r["lambda"] == 0.0)
        report["macro_f1_unpruned"] = unpruned["macro_f1"]
        within = [r for r in runs if r["macro_f1"] >= unpruned["macro_f1"] - 0.02]
        best = max(within, key=lambda r: r["pruned_share"])
        report["best_pruned_share_within_2pts"] = best["pruned_share"]
        report["best_lambda_within_2pts"] = best["lambda"]
        report["goal_pruned_share"] = 0.70
        save_partial()

        keep_runs = [finetune(lam, args.keep_last) for lam in keep_lambdas]
        report["keep_heads_in_last"] = {
            "k": args.keep_last,
            "runs": [{k: v for k, v in r.items() if k != "model"} for r in keep_runs],
            "without": [{k: v for k, v in r.items() if k not in ("model", "per_class_f1")}
                        for r in runs if r["lambda"] in keep_lambdas],
        }
        save_partial()

        # speed: the most pruned model within 2 points (else the most pruned), gated vs pruned
        target = best if best["pruned_share"] > 0 else max(runs, key=lambda r: r["pruned_share"])
        gated = target["model"].eval()
        pruned = prune_heads(gated)
        x = torch.stack([test_ds[i][0] for i in range(min(16, len(test_ds)))])
        with torch.no_grad():
            same = bool(torch.allclose(gated(x), pruned(x), atol=1e-4))
        speed = inference_speed({"gated": gated, "pruned": pruned}, x,
                                repeats=3 if args.quick else 8)
        report["speed"] = {"lambda": target["lambda"], "pruned_share": target["pruned_share"],
                           "batch": x.shape[0], "size_px": x.shape[-1],
                           "gated_images_per_s": round(speed["gated"], 2),
                           "pruned_images_per_s": round(speed["pruned"], 2),
                           "outputs_allclose": same}
        report["pruned_speedup"] = round(speed["pruned"] / speed["gated"], 3)
        # the checkpoint round trip the CLI uses keeps the pruned model's outputs
        save_checkpoint(tmp / "p", pruned, norm, names, "eurosat")
        reloaded, _ = load_model(tmp / "p.safetensors")
        with torch.no_grad():
            report["speed"]["reloaded_allclose"] = bool(torch.allclose(reloaded(x), pruned(x),
                                                                       atol=1e-5))
    save_partial()
    md = render(report)
    (out_dir / "pruning.md").write_text(md)
    print(md)
    return 0


def throughput_only(args, out_dir: Path) -> int:
    """Two epochs of 320 fresh scenes (the first warms up); the second epoch's images/s."""
    report = json.loads((out_dir / "pruning.json").read_text())
    bands = S2_BANDS_NO_CIRRUS
    ds = EuroSatMosaic(args.data, split="train", num_scenes=320, size=128, seed=args.seed, bands=bands)
    mcfg = get_config(args.config, s2_bands=bands, num_classes=len(ds.scheme.names),
                      **TOKEN_LAYOUTS[args.architecture])
    r = train(mcfg, ds, None, TrainConfig(epochs=2, batch_size=32, lr=1e-3, seed=args.seed, crop=None,
                                          gate_lr=0.0))
    report["train_images_per_s"] = r.history[-1]["images_per_s"]
    report["train_images_per_s_note"] = "re-measured alone by --throughput-only (second of 2 epochs)"
    (out_dir / "pruning.json").write_text(json.dumps(report, indent=2))
    md = render(report)
    (out_dir / "pruning.md").write_text(md)
    print(md)
    return 0


def render(r: dict) -> str:
    lines = [f"# Head pruning on EuroSAT-mosaic ({r['config']} config, seed {r['seed']}"
             f"{', QUICK smoke run' if r['quick'] else ''})", "",
             f"Train: {r['train_scenes_per_epoch']} fresh {r['train_size_px']} px scenes/epoch; "
             f"baseline {r['base_epochs']} epochs, then per lambda {r['ft_epochs']} epochs with the "
             f"L0 penalty, physical pruning, {r['recover_epochs']} recovery epochs. "
             f"Test: {r['test_scenes']} fixed {r['test_size_px']} px scenes. "
             f"{r['threads']} CPU threads, total {r['seconds']:.0f} s.", "",
             "| lambda | keep last | pruned share | open heads per block | macro-F1 before "
             "recovery | macro-F1 | mAP |",
             "|---:|---:|---:|---|---:|---:|---:|"]
    for e in r["runs"] + r["keep_heads_in_last"]["runs"]:
        lines.append(f"| {e['lambda']:g} | {e['keep_heads_in_last']} | {e['pruned_share']:.1%} | "
                     f"{e['open_heads_per_block']} | {e['macro_f1_before_recovery']:.3f} | "
                     f"{e['macro_f1']:.3f} | {e['mAP']:.3f} |")
    s = r["speed"]
    lines += ["",
              f"- macro-F1 unpruned (lambda 0): {r['macro_f1_unpruned']:.3f}; baseline before "
              f"fine-tuning: {r['baseline']['macro_f1']:.3f}",
              f"- best pruned share within 2 points: {r['best_pruned_share_within_2pts']:.1%} "
              f"(lambda {r['best_lambda_within_2pts']:g}; goal >= 70%)",
              f"- inference at {s['size_px']} px, batch {s['batch']} (lambda {s['lambda']:g}, "
              f"{s['pruned_share']:.0%} pruned): gated {s['gated_images_per_s']:.1f} img/s, "
              f"physically pruned {s['pruned_images_per_s']:.1f} img/s -> speedup "
              f"{r['pruned_speedup']:.2f}x; outputs allclose: {s['outputs_allclose']}",
              f"- training throughput ({r['config']}, 128 px, batch 32): "
              f"{r['train_images_per_s']:.1f} img/s", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

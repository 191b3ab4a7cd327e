"""Stage 1 training: multi-label BCE + lambda * L0 on image-level labels.

Reproducible (everything random flows from ``seed``: init, shuffling, augmentation, gate noise),
resumable (model + optimizer + scheduler + epoch + RNG in ``last.*``), cancellable between steps
(the last complete checkpoint survives), AMP on CUDA, DDP when launched by torchrun.
"""
from __future__ import annotations

import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from ..errors import InputError
from ..models.configs import ModelConfig
from ..models.pruning import prune_heads
from ..models.vit import SparseViT
from ..progress import Progress, null_progress
from .checkpoint import load_model, load_training_state, save_checkpoint
from .data import TorchSampleDataset
from .metrics import multilabel_scores
from .normalization import Normalizer, compute_stats


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    gate_lr: float = 0.05  # gates need to travel several units of log_a in a few hundred steps
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_fraction: float = 0.1
    min_lr_ratio: float = 0.01
    lambda_l0: float = 0.0
    grad_clip: float | None = 1.0
    seed: int = 0
    crop: int | None = 128
    crop_label_fraction: float | None = None  # relabel crops from masks (see TorchSampleDataset)
    augment: bool = True
    normalization: str = "dataset_stats"
    stats_samples: int = 256
    num_workers: int = 0
    eval_batch_size: int = 32
    amp: str = "auto"  # auto (bf16/fp16 on CUDA, off on CPU) | off
    device: str | None = None
    # knowledge distillation from a teacher (train(teacher=...)): loss += distill_weight *
    # BCE(student logits, teacher probabilities). Pruning and recovery lean on the unpruned
    # model's soft labels instead of only the noisy image labels.
    distill_weight: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


@dataclass
class TrainResult:
    model: SparseViT
    normalizer: Normalizer
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    checkpoint: Path | None = None
    pruned_checkpoint: Path | None = None
    seconds: float = 0.0
    train_images_per_s: float = 0.0


def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(total - warmup, 1)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))


def param_groups(model: SparseViT, cfg: TrainConfig) -> list[dict[str, Any]]:
    gate_ids = {id(p) for p in model.gate_parameters()}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if id(p) in gate_ids:
            continue
        # weight decay would pull log_a (and embeddings/norms) towards 0: keep it off them
        if p.ndim < 2 or name in ("pos_embed", "cls_token"):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay, "lr": cfg.lr},
              {"params": no_decay, "weight_decay": 0.0, "lr": cfg.lr}]
    if gate_ids:
        groups.append({"params": model.gate_parameters(), "weight_decay": 0.0, "lr": cfg.gate_lr})
    return groups


def _dist_info() -> tuple[bool, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return world > 1, rank, world


def _autocast(device: torch.device, amp: str):
    if device.type != "cuda" or amp == "off":
        return nullcontext(), None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return torch.autocast("cuda", dtype=dtype), scaler


@torch.no_grad()
def predict_probs(model: torch.nn.Module, data: TorchSampleDataset, batch_size: int = 32,
                  device: str | torch.device = "cpu", amp: str = "off",
                  progress: Progress | None = None, stage: str = "evaluate"
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid probabilities and targets over ``data`` (in order), model in eval mode."""
    net = getattr(model, "module", model)
    was_training = net.training
    net.eval()
    device = torch.device(device)
    ctx, _ = _autocast(device, amp)
    loader = DataLoader(data, batch_size=batch_size, shuffle=False)
    probs, targets = [], []
    progress = progress or null_progress()
    with progress.stage(stage, total=len(loader)) as st:
        for x, y, _ in loader:
            with ctx:
                logits = net(x.to(device))
            probs.append(torch.sigmoid(logits.float()).cpu())
            targets.append(y)
            st.advance(1)
    net.train(was_training)
    return torch.cat(probs).numpy(), torch.cat(targets).numpy()


def evaluate(model: torch.nn.Module, data: TorchSampleDataset, class_names: Sequence[str],
             batch_size: int = 32, device: str | torch.device = "cpu", amp: str = "off",
             progress: Progress | None = None) -> dict[str, Any]:
    probs, targets = predict_probs(model, data, batch_size, device, amp, progress)
    return multilabel_scores(probs, targets, class_names=class_names)


def _optimizer_state_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{pid}.{k}"] = v
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(opt: torch.optim.Optimizer, meta: dict, tensors: dict[str, torch.Tensor]
                       ) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, pid, k = key.split(".", 2)
            state.setdefault(int(pid), {})[k] = v
    for pid, sc in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(sc)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def classifier_loss(model: SparseViT, net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                    cfg: TrainConfig, autocast, teacher: SparseViT | None = None
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """The first stage's loss on one batch and its parts (floats, for the epoch log):

    - ``bce``: multi-label BCE of the image logits (the sigmoid lives inside the loss, once);
    - ``l0``: the Hard Concrete gates' expected number of open heads, weighted by ``lambda_l0``;
    - ``patch_bce`` (patch-head models): BCE of the patch logits' image-level mean, the only
      way the patch head is trained (a CAM, MCTformer-V2);
    - ``distill`` (with a teacher): BCE against the teacher's probabilities, weighted by
      ``distill_weight``.

    ``net`` is ``model`` or its DDP wrapper (gradients must flow through the wrapper).
    """
    with autocast:
        if model.patch_head is not None:
            logits, patch_logits = net(x, return_patch_logits=True)
        else:
            logits, patch_logits = net(x), None
    bce = F.binary_cross_entropy_with_logits(logits.float(), y)
    l0 = model.l0_penalty()
    loss = bce + cfg.lambda_l0 * l0
    parts = {"bce": float(bce.detach()), "l0": float(l0.detach())}
    if patch_logits is not None:
        pbce = F.binary_cross_entropy_with_logits(patch_logits.float().mean((2, 3)), y)
        loss = loss + pbce
        parts["patch_bce"] = float(pbce.detach())
    if teacher is not None:
        with torch.no_grad(), autocast:
            soft = torch.sigmoid(teacher(x).float())
        kd = F.binary_cross_entropy_with_logits(logits.float(), soft)
        loss = loss + cfg.distill_weight * kd
        parts["distill"] = float(kd.detach())
    return loss, parts


def _step(loss: torch.Tensor, model: SparseViT, opt, sched, scaler, grad_clip: float | None) -> None:
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
    else:
        loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    sched.step()


def _run_epoch(model, net, loader, cfg: TrainConfig, device, autocast, teacher, opt, sched, scaler,
               stage) -> tuple[dict[str, float], int, int]:
    """One pass over ``loader``: summed loss parts, batches and images seen."""
    sums = {"loss": 0.0, "bce": 0.0, "l0": 0.0, "distill": 0.0}
    n_batches = n_images = 0
    net.train()
    for x, y, _ in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss, parts = classifier_loss(model, net, x, y, cfg, autocast, teacher)
        _step(loss, model, opt, sched, scaler, cfg.grad_clip)
        sums["loss"] += float(loss.detach())
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
        n_batches += 1
        n_images += x.shape[0]
        stage.advance(1, loss=round(float(loss.detach()), 4))
    return sums, n_batches, n_images


def _optimizer(model: SparseViT, cfg: TrainConfig, steps_per_epoch: int):
    """AdamW (gates on their own learning rate, see :func:`param_groups`) and the warm-up +
    cosine schedule over the whole run."""
    opt = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr, betas=tuple(cfg.betas))
    total_steps = steps_per_epoch * cfg.epochs
    warmup = int(round(cfg.warmup_fraction * total_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, total_steps, warmup, cfg.min_lr_ratio))
    return opt, sched


def _process_setup(cfg: TrainConfig) -> tuple[bool, int, int, torch.device]:
    """``(distributed, rank, world size, device)``; joins the torchrun process group when there is one."""
    distributed, rank, world = _dist_info()
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(cfg.device or (f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
                                         if torch.cuda.is_available() else "cpu"))
    return distributed, rank, world, device


def _initial_model(model_config: ModelConfig, cfg: TrainConfig, resume, init_from) -> SparseViT:
    torch.manual_seed(cfg.seed)
    model = SparseViT(model_config)
    if init_from is not None or resume is not None:
        src, _ = load_model(resume if resume is not None else init_from)
        missing = set(model.state_dict()) - set(src.state_dict())
        if missing and resume is None:
            # warm start from an ungated model: gates keep their initial value
            model.load_state_dict(src.state_dict(), strict=False)
        else:
            model.load_state_dict(src.state_dict())
    return model


def _default_normalizer(train_set: Any, cfg: TrainConfig, progress: Progress) -> Normalizer:
    if cfg.normalization == "per_image_max":
        return Normalizer("per_image_max")
    n = min(len(train_set), cfg.stats_samples)
    with progress.stage("normalisation statistics", total=None):
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(0)
        return compute_stats((train_set[i] for i in range(n)), description=f"first {n} training samples")


def _epoch_loader(tds: TorchSampleDataset, cfg: TrainConfig, epoch: int, distributed: bool,
                  rank: int, world: int) -> DataLoader:
    tds.set_epoch(epoch)
    if distributed:
        sampler = DistributedSampler(tds, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(tds, generator=torch.Generator().manual_seed(cfg.seed * 7919 + epoch))
    return DataLoader(tds, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                      generator=torch.Generator().manual_seed(cfg.seed + epoch))


def train(model_config: ModelConfig, train_set: Any, val_set: Any | None, cfg: TrainConfig,
          out_dir: str | Path | None = None, progress: Progress | None = None,
          resume: str | Path | None = None, init_from: str | Path | None = None,
          normalizer: Normalizer | None = None, class_names: Sequence[str] | None = None,
          scheme: str | None = None, data_description: dict[str, Any] | None = None,
          teacher: SparseViT | None = None) -> TrainResult:
    """Train a gated SparseViT on ``train_set`` (the dataset contract: ``Sample`` items).

    ``out_dir`` receives ``last.*`` after every epoch (resumable) and ``model.*`` at the end
    (plus ``model_pruned.*`` when heads closed). ``resume``: a ``last.safetensors`` to continue
    from. ``init_from``: start from these weights (e.g. add the L0 penalty to a trained model).
    ``teacher``: a trained model (same input bands and classes) whose probabilities the student
    also learns when ``cfg.distill_weight > 0``; it stays frozen in eval mode. The loss:
    :func:`classifier_loss`.
    """
    if cfg.distill_weight > 0 and teacher is None:
        raise ValueError("distill_weight > 0 needs a teacher model")
    distributed, rank, world, device = _process_setup(cfg)
    is_main = rank == 0
    progress = progress if (progress is not None and is_main) else null_progress()
    if class_names is None:
        class_names = list(train_set.scheme.names)
    if scheme is None:
        scheme = getattr(getattr(train_set, "scheme", None), "name", None)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and is_main:
        out.mkdir(parents=True, exist_ok=True)

    state_meta, state_tensors, start_epoch = None, None, 0
    if resume is not None:  # the run's own architecture and statistics, not the caller's
        state_meta, state_tensors = load_training_state(resume)
        _, resume_doc = load_model(resume)
        model_config = ModelConfig.from_dict(resume_doc["architecture"])
        normalizer = Normalizer.from_dict(resume_doc["normalization"])
        start_epoch = int(state_meta["epoch"])
    model = _initial_model(model_config, cfg, resume, init_from).to(device).train()
    teacher = teacher.to(device).eval().requires_grad_(False) if (
        teacher is not None and cfg.distill_weight > 0) else None
    if normalizer is None:
        normalizer = _default_normalizer(train_set, cfg, progress)

    tds = TorchSampleDataset(train_set, normalizer, crop=cfg.crop, train=True,
                             augment=cfg.augment, seed=cfg.seed, use_s1=model_config.has_s1,
                             crop_label_fraction=cfg.crop_label_fraction)
    vds = (TorchSampleDataset(val_set, normalizer, crop=None, train=False,
                              use_s1=model_config.has_s1) if val_set is not None else None)

    net = model
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    opt, sched = _optimizer(model, cfg, math.ceil(math.ceil(len(tds) / world) / cfg.batch_size))
    autocast, scaler = _autocast(device, cfg.amp)

    history = (_restore_state(opt, sched, scaler, device, state_meta, state_tensors)
               if state_meta is not None else [])

    description = {"dataset": type(train_set).__name__, "samples_per_epoch": len(train_set),
                   "config": cfg.to_dict(), "world_size": world, **(data_description or {})}
    t_start = time.perf_counter()
    images_seen, train_seconds = 0, 0.0
    metrics: dict[str, Any] = {}
    for epoch in range(start_epoch, cfg.epochs):
        loader = _epoch_loader(tds, cfg, epoch, distributed, rank, world)
        t0 = time.perf_counter()
        with progress.stage(f"train epoch {epoch + 1}/{cfg.epochs}", total=len(loader)) as st:
            sums, n_batches, n_images = _run_epoch(model, net, loader, cfg, device, autocast, teacher,
                                                   opt, sched, scaler, st)
        images_seen += n_images
        epoch_seconds = time.perf_counter() - t0
        train_seconds += epoch_seconds
        record = {"epoch": epoch + 1, **{k: v / max(n_batches, 1) for k, v in sums.items()},
                  "lr": sched.get_last_lr()[0], "seconds": round(epoch_seconds, 2),
                  "images_per_s": round(len(loader.sampler) / epoch_seconds, 2),
                  "pruned_share": model.pruned_share(),
                  "open_heads_per_block": model.open_heads_per_block()}
        if vds is not None and is_main:
            metrics = evaluate(model, vds, class_names, cfg.eval_batch_size, device, cfg.amp,
                               progress)
            record.update({"val_macro_f1": metrics["macro_f1"], "val_mAP": metrics["mAP"]})
        history.append(record)
        progress.log(_epoch_line(record, cfg.epochs))
        if out is not None and is_main:
            _save_last(out, model, normalizer, class_names, scheme, description, metrics, opt, sched,
                       scaler, device, epoch, history)
        if distributed:
            dist.barrier()

    result = TrainResult(model=model, normalizer=normalizer, history=history, metrics=metrics,
                         seconds=time.perf_counter() - t_start,
                         train_images_per_s=images_seen / train_seconds if train_seconds else 0.0)
    if out is not None and is_main:
        description["history"] = history
        result.checkpoint = save_checkpoint(out / "model", model, normalizer, list(class_names),
                                            scheme, training=description, metrics=metrics)
        if model.pruned_share() > 0:
            result.pruned_checkpoint = save_checkpoint(
                out / "model_pruned", prune_heads(model.eval()), normalizer, list(class_names),
                scheme, training=description, metrics=metrics)
    return result


def _epoch_line(record: dict[str, Any], epochs: int) -> str:
    val = f", val macro-F1 {record['val_macro_f1']:.3f}" if "val_macro_f1" in record else ""
    return (f"epoch {record['epoch']}/{epochs}: loss {record['loss']:.4f} (bce {record['bce']:.4f}, "
            f"l0 {record['l0']:.3f}), pruned {record['pruned_share']:.0%}{val}")


def _restore_state(opt, sched, scaler, device, state_meta: dict, state_tensors: dict) -> list[dict]:
    """Optimizer, schedule, grad scaler and RNG of a resumed run; returns its epoch history."""
    _restore_optimizer(opt, state_meta["optimizer"], state_tensors)
    sched.load_state_dict(state_meta["scheduler"])
    if scaler is not None and state_meta.get("grad_scaler"):
        scaler.load_state_dict(state_meta["grad_scaler"])
    torch.set_rng_state(state_tensors["rng.torch"])
    if device.type == "cuda" and "rng.cuda" in state_tensors:
        torch.cuda.set_rng_state(state_tensors["rng.cuda"], device)
    return list(state_meta.get("history", []))


def _save_last(out: Path, model, normalizer, class_names, scheme, description, metrics, opt, sched,
               scaler, device, epoch: int, history) -> None:
    """``last.*``: weights plus everything ``resume`` needs (optimizer, schedule, RNG)."""
    opt_tensors, opt_meta = _optimizer_state_tensors(opt)
    tensors = {**opt_tensors, "rng.torch": torch.get_rng_state()}
    if device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    save_checkpoint(out / "last", model, normalizer, list(class_names), scheme,
                    training=description, metrics=metrics,
                    training_state={"epoch": epoch + 1, "optimizer": opt_meta,
                                    "scheduler": sched.state_dict(),
                                    "grad_scaler": scaler.state_dict() if scaler else None,
                                    "history": history},
                    state_tensors=tensors)


def check_dataset(train_set: Any, path: str | Path) -> None:
    if len(train_set) == 0:
        raise InputError("the training dataset is empty", path=path,
                         fix="point --data at a folder with training samples")

"""Physical head pruning: drop the weights of heads whose eval gate is closed.

The eval gate is binary, so an open head is multiplied by exactly 1 and a closed one by 0; the
pruned model (ungated, fewer qkv rows / proj columns) computes the same function, faster.
"""
from __future__ import annotations

import torch

from .configs import ModelConfig
from .vit import SparseViT


def prune_heads(model: SparseViT) -> SparseViT:
    """A new, ungated model holding only the open heads of ``model`` (which is left untouched).

    A block whose heads all closed becomes an MLP-only residual block.
    """
    cfg = model.config
    keep_per_block: list[list[int]] = []  # local indices into each block's current heads
    for blk in model.blocks:
        if blk.attn is None:
            keep_per_block.append([])
        elif blk.attn.gates is None:
            keep_per_block.append(list(range(blk.attn.num_heads)))
        else:
            keep_per_block.append(torch.nonzero(blk.attn.gates.open_mask()).flatten().tolist())
    new_cfg = ModelConfig.from_dict({
        **cfg.to_dict(),
        "gated": False,
        "heads_per_block": [len(k) for k in keep_per_block],
        "head_ids": [[cfg.head_ids[i][j] for j in k] for i, k in enumerate(keep_per_block)],
    })
    pruned = SparseViT(new_cfg)
    src = model.state_dict()
    dst = pruned.state_dict()
    hd = cfg.head_dim
    for name in dst:
        if name.endswith(".attn_bias"):
            # a block pruned before already holds its bias (pruning a pruned model is a no-op)
            dst[name] = (src[name] if name in src else src[name.replace(".attn_bias", ".attn.proj.bias")]).clone()
            continue
        if not name.startswith("blocks.") or ".attn." not in name:
            dst[name] = src[name].clone()
            continue
        i = int(name.split(".")[1])
        nh_old = model.blocks[i].attn.num_heads
        keep = torch.tensor(keep_per_block[i], dtype=torch.long)
        w = src[name]
        if ".attn.qkv." in name:
            # rows are laid out [q|k|v] x heads x head_dim
            w = w.reshape(3, nh_old, hd, *w.shape[1:])[:, keep].reshape(-1, *w.shape[1:])
        elif name.endswith(".attn.proj.weight"):
            w = w.reshape(w.shape[0], nh_old, hd)[:, keep].reshape(w.shape[0], -1)
        dst[name] = w.clone()
    pruned.load_state_dict(dst)
    pruned.train(model.training)
    return pruned

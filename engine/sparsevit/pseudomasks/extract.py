"""What the classifier gives the pseudomask methods, for a batch, in one forward pass.

* ``probs [B, K]``: sigmoid of the logits (applied once, here).
* ``head_maps``: CLS->patch attention of the OPEN heads of the last ``attn_blocks`` blocks,
  one array ``[heads, gh, gw]`` per image (closed heads contribute nothing to the output, so
  their maps are noise).
* ``gradcam [B, K, gh, gw]``: Grad-CAM of every class, taken at the INPUT of the last block. The
  last block's output patch tokens get exactly zero gradient from a CLS-token classifier (only
  the CLS token reaches the head), so the classic "last layer" choice would give empty maps.

Only the last block runs with autograd, so Grad-CAM costs about one block's backward per class.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..models.vit import SparseViT


@dataclass
class ClassifierEvidence:
    probs: np.ndarray  # [B, K]
    head_maps: list[np.ndarray]  # per image [heads, gh, gw]
    head_ids: list[tuple[int, int]]  # (block, head) of each map row, same for every image
    gradcam: np.ndarray | None  # [B, K, gh, gw]
    grid: tuple[int, int]


def _last_block_cls(blk, tok: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The last block computed for the CLS token only (eval mode).

    Only the CLS output reaches the head, so its query, attention row, projection and MLP are all
    the logits need; the other N queries and N MLP rows would cost most of the block's forward
    and of every Grad-CAM backward for nothing. Returns (CLS token [B,1,D], CLS attention row
    [B,H,1,1+N]).
    """
    cls = tok[:, :1]
    if blk.attn is None:
        x = cls + blk.attn_bias
        return x + blk.mlp(blk.norm2(x)), None
    a = blk.attn
    inner = a.num_heads * a.head_dim
    h = blk.norm1(tok)
    w, bias = a.qkv.weight, a.qkv.bias
    bq, bk, bv = (None, None, None) if bias is None else (bias[:inner], bias[inner:2 * inner], bias[2 * inner:])
    b, n, _ = tok.shape
    q = F.linear(h[:, :1], w[:inner], bq).reshape(b, 1, a.num_heads, a.head_dim).transpose(1, 2)
    k = F.linear(h, w[inner:2 * inner], bk).reshape(b, n, a.num_heads, a.head_dim).transpose(1, 2)
    v = F.linear(h, w[2 * inner:], bv).reshape(b, n, a.num_heads, a.head_dim).transpose(1, 2)
    probs = (q * a.scale @ k.transpose(-2, -1)).softmax(dim=-1)  # [B,H,1,N]
    out = probs @ v
    if a.gates is not None:
        out = out * a.gates().to(out.dtype).view(1, -1, 1, 1)
    x = cls + a.proj(out.transpose(1, 2).reshape(b, 1, inner))
    return x + blk.mlp(blk.norm2(x)), probs


def classifier_evidence(model: SparseViT, x: torch.Tensor, attn_blocks: int = 1,
                        gradcam: bool = True, open_only: bool = True,
                        threshold: float | None = 0.5) -> ClassifierEvidence:
    """``threshold``: Grad-CAM only for classes some image of the batch predicts (the
    pseudomask methods read no other rows; the rest stay zero); None computes every class."""
    model.eval()
    blocks = model.blocks
    depth = len(blocks)
    first_attn = depth - attn_blocks
    maps, ids = [], []

    def keep(blk_index: int, probs: torch.Tensor | None, blk) -> None:
        if probs is None or blk.attn is None:
            return
        gate = (blk.attn.gates.eval_gate() if blk.attn.gates is not None
                else torch.ones(blk.attn.num_heads))
        sel = (gate > 0.5) if open_only else torch.ones_like(gate, dtype=torch.bool)
        head_ids = model.config.head_ids[blk_index]
        cls = probs[:, :, 0, 1:].detach()[:, sel.to(probs.device)]
        maps.append(cls)
        ids.extend((blk_index, head_ids[h]) for h in torch.nonzero(sel).flatten().tolist())

    with torch.no_grad():
        tok, grid = model.embed(x)
        for i, blk in enumerate(blocks[:-1]):
            tok, probs = blk(tok, need_weights=i >= first_attn)
            keep(i, probs, blk)
    with torch.set_grad_enabled(gradcam):
        tok_in = tok.detach().requires_grad_(gradcam)
        out, probs = _last_block_cls(blocks[-1], tok_in)
        logits = model.head(model.norm(out)[:, 0])
        if attn_blocks > 0:
            keep(depth - 1, probs, blocks[-1])
        cams = None
        if gradcam:
            k = logits.shape[1]
            if threshold is None:
                wanted = list(range(k))
            else:
                wanted = torch.nonzero((torch.sigmoid(logits.detach()) >= threshold).any(0)).flatten().tolist()
            cams = torch.zeros(x.shape[0], k, *grid)
            if wanted:
                # the wanted class gradients in one vmapped backward, not one backward per class
                seeds = torch.zeros(len(wanted), logits.shape[0], k, dtype=logits.dtype, device=logits.device)
                seeds[torch.arange(len(wanted)), :, torch.tensor(wanted)] = 1.0
                (g,) = torch.autograd.grad(logits, tok_in, grad_outputs=seeds, is_grads_batched=True)
                g = g[:, :, 1:].transpose(0, 1)  # [B, W, N, D], patch tokens only
                act = tok_in.detach()[:, 1:]  # [B, N, D]
                weights = g.mean(dim=2, keepdim=True)  # channel importance, averaged over tokens
                cam = torch.relu((weights * act.unsqueeze(1)).sum(-1))  # [B, W, N]
                cams[:, wanted] = cam.reshape(x.shape[0], len(wanted), *grid).float().cpu()
            cams = cams.numpy()
    b = x.shape[0]
    gh, gw = grid
    if maps:
        allmaps = torch.cat(maps, dim=1).reshape(b, -1, gh, gw).float().cpu().numpy()
    else:
        allmaps = np.zeros((b, 0, gh, gw), np.float32)
    return ClassifierEvidence(
        probs=torch.sigmoid(logits.detach().float()).cpu().numpy(),
        head_maps=[allmaps[i] for i in range(b)],
        head_ids=ids,
        gradcam=cams,
        grid=grid,
    )

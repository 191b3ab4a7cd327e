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

from ..models.vit import SparseViT


@dataclass
class ClassifierEvidence:
    probs: np.ndarray  # [B, K]
    head_maps: list[np.ndarray]  # per image [heads, gh, gw]
    head_ids: list[tuple[int, int]]  # (block, head) of each map row, same for every image
    gradcam: np.ndarray | None  # [B, K, gh, gw]
    grid: tuple[int, int]


def classifier_evidence(model: SparseViT, x: torch.Tensor, attn_blocks: int = 1,
                        gradcam: bool = True, open_only: bool = True) -> ClassifierEvidence:
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
        cls = probs[:, :, 0, 1:].detach()[:, sel]
        maps.append(cls)
        ids.extend((blk_index, head_ids[h]) for h in torch.nonzero(sel).flatten().tolist())

    with torch.no_grad():
        tok, grid = model.embed(x)
        for i, blk in enumerate(blocks[:-1]):
            tok, probs = blk(tok, need_weights=i >= first_attn)
            keep(i, probs, blk)
    with torch.set_grad_enabled(gradcam):
        tok_in = tok.detach().requires_grad_(gradcam)
        out, probs = blocks[-1](tok_in, need_weights=attn_blocks > 0)
        logits = model.head(model.norm(out)[:, 0])
        keep(depth - 1, probs, blocks[-1])
        cams = None
        if gradcam:
            k = logits.shape[1]
            grads = []
            for c in range(k):
                (g,) = torch.autograd.grad(logits[:, c].sum(), tok_in, retain_graph=c < k - 1)
                grads.append(g[:, 1:])  # patch tokens only
            act = tok_in.detach()[:, 1:]  # [B, N, D]
            g = torch.stack(grads, 1)  # [B, K, N, D]
            weights = g.mean(dim=2, keepdim=True)  # channel importance, averaged over tokens
            cams = torch.relu((weights * act.unsqueeze(1)).sum(-1))  # [B, K, N]
            cams = cams.reshape(x.shape[0], k, *grid).numpy()
    b = x.shape[0]
    gh, gw = grid
    if maps:
        allmaps = torch.cat(maps, dim=1).reshape(b, -1, gh, gw).float().numpy()
    else:
        allmaps = np.zeros((b, 0, gh, gw), np.float32)
    return ClassifierEvidence(
        probs=torch.sigmoid(logits.detach()).numpy(),
        head_maps=[allmaps[i] for i in range(b)],
        head_ids=ids,
        gradcam=cams,
        grid=grid,
    )

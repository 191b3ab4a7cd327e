"""What the classifier gives the pseudomask methods, for a batch, in one forward pass.

* ``probs [B, K]``: sigmoid of the logits (applied once, here).
* ``head_maps``: CLS->patch attention of the OPEN heads of the last ``attn_blocks`` blocks,
  one array ``[heads, gh, gw]`` per image (closed heads contribute nothing to the output, so
  their maps are noise).
* ``class_attention [B, K, gh, gw]`` (class-token models only): each class token's attention to
  the patches, averaged over the open heads of the last ``attn_blocks`` blocks.
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
    class_attention: np.ndarray | None = None  # [B, K, gh, gw], class-token models only
    patch_cam: np.ndarray | None = None  # [B, K, gh, gw] patch-head logits, patch-head models only

    def maps_for(self, method: str, i: int) -> dict[str, np.ndarray | None]:
        """The map arguments of :func:`make_pseudomask` for image ``i``. The class-token method
        fuses its attention with the patch-head CAM when the model has one, else with Grad-CAM;
        every other method reads Grad-CAM as its class evidence."""
        cam = None if self.gradcam is None else self.gradcam[i]
        if method == "attention_class_tokens" and self.patch_cam is not None:
            cam = self.patch_cam[i]
        return {"head_maps": self.head_maps[i], "class_maps": cam,
                "class_attention": None if self.class_attention is None else self.class_attention[i]}


def _last_block_cls(blk, tok: torch.Tensor, prefix: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The last block computed for the CLS (or class) tokens only (eval mode).

    Only those outputs reach the head, so their queries, attention rows, projection and MLP are
    all the logits need; the other N queries and N MLP rows would cost most of the block's
    forward and of every Grad-CAM backward for nothing. Returns (prefix tokens [B,P,D], their
    attention rows [B,H,P,P+N]).
    """
    cls = tok[:, :prefix]
    if blk.attn is None:
        x = cls + blk.attn_bias
        return x + blk.mlp(blk.norm2(x)), None
    a = blk.attn
    inner = a.num_heads * a.head_dim
    h = blk.norm1(tok)
    w, bias = a.qkv.weight, a.qkv.bias
    bq, bk, bv = (None, None, None) if bias is None else (bias[:inner], bias[inner:2 * inner], bias[2 * inner:])
    b, n, _ = tok.shape
    q = F.linear(h[:, :prefix], w[:inner], bq).reshape(b, prefix, a.num_heads, a.head_dim).transpose(1, 2)
    k = F.linear(h, w[inner:2 * inner], bk).reshape(b, n, a.num_heads, a.head_dim).transpose(1, 2)
    v = F.linear(h, w[2 * inner:], bv).reshape(b, n, a.num_heads, a.head_dim).transpose(1, 2)
    probs = (q * a.scale @ k.transpose(-2, -1)).softmax(dim=-1)  # [B,H,P,P+N]
    out = probs @ v
    if a.gates is not None:
        out = out * a.gates().to(out.dtype).view(1, -1, 1, 1)
    x = cls + a.proj(out.transpose(1, 2).reshape(b, prefix, inner))
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
    prefix = model.num_prefix_tokens
    class_tokens = model.config.class_tokens
    maps, ids, class_maps = [], [], []

    def keep(blk_index: int, probs: torch.Tensor | None, blk) -> None:
        if probs is None or blk.attn is None:
            return
        gate = (blk.attn.gates.eval_gate() if blk.attn.gates is not None
                else torch.ones(blk.attn.num_heads))
        sel = (gate > 0.5) if open_only else torch.ones_like(gate, dtype=torch.bool)
        head_ids = model.config.head_ids[blk_index]
        sel = sel.to(probs.device)
        # CLS->patch per open head; with class tokens their mean (one map per head, as the
        # clustering methods expect) and, separately, each class token's own map
        rows = probs[:, :, :prefix, prefix:].detach()[:, sel]  # [B, h, P, N]
        maps.append(rows.mean(dim=2))
        if class_tokens and rows.shape[1]:
            class_maps.append(rows.mean(dim=1))  # [B, K, N]
        ids.extend((blk_index, head_ids[h]) for h in torch.nonzero(sel).flatten().tolist())

    with torch.no_grad():
        tok, grid = model.embed(x)
        for i, blk in enumerate(blocks[:-1]):
            tok, probs = blk(tok, need_weights=i >= first_attn)
            keep(i, probs, blk)
    with torch.set_grad_enabled(gradcam):
        tok_in = tok.detach().requires_grad_(gradcam)
        patch_cam = None
        if model.patch_head is not None:
            # the patch head reads every output token, so the last block runs in full
            out, probs = blocks[-1](tok_in, need_weights=attn_blocks > 0)
            normed = model.norm(out)
            patch_cam = model.patch_logits(normed, grid).detach().float().cpu().numpy()
        else:
            out, probs = _last_block_cls(blocks[-1], tok_in, prefix)
            normed = model.norm(out)
        logits = model.logits_from_tokens(normed)
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
                g = g[:, :, prefix:].transpose(0, 1)  # [B, W, N, D], patch tokens only
                act = tok_in.detach()[:, prefix:]  # [B, N, D]
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
    class_attention = None
    if class_tokens:
        if class_maps:  # mean over the blocks that had open heads
            class_attention = torch.stack(class_maps).mean(0).reshape(b, -1, gh, gw).float().cpu().numpy()
        else:
            class_attention = np.zeros((b, model.config.num_classes, gh, gw), np.float32)
    return ClassifierEvidence(
        probs=torch.sigmoid(logits.detach().float()).cpu().numpy(),
        head_maps=[allmaps[i] for i in range(b)],
        head_ids=ids,
        gradcam=cams,
        grid=grid,
        class_attention=class_attention,
        patch_cam=patch_cam,
    )

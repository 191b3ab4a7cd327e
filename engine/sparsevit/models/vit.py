"""Multimodal pre-norm ViT with one Hard Concrete gate per attention head.

Input is one stacked tensor ``[B, C, H, W]``: the S2 bands of ``config.s2_bands`` first, then
VV, VH when ``config.has_s1``. Each sensor has its own linear patch embedding; their tokens are
summed (early fusion) and share one CLS token and positional embedding. A band-flexible model
(``config.band_flexible``) takes a band the input lacks as an all-NaN channel (see
:func:`band_presence`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# isort: off
from .. import compat  # noqa: F401  (must precede timm)
from timm.layers import DropPath, LayerNorm, Mlp, resample_abs_pos_embed, trunc_normal_
# isort: on

from .configs import ModelConfig, get_config
from .gates import HeadGates


def conv_stem(in_chans: int, dim: int, patch: int) -> nn.Sequential:
    """log2(patch) stride-2 3x3 conv + BatchNorm + ReLU layers (widths doubling up to dim / 2),
    then a 1x1 projection to ``dim``: one token per patch, like the linear embedding."""
    n = int(math.log2(patch))
    widths = [max(dim // 2 ** (n - i), 8) for i in range(n)]
    layers: list[nn.Module] = []
    prev = in_chans
    for w in widths:
        layers += [nn.Conv2d(prev, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w),
                   nn.ReLU(inplace=True)]
        prev = w
    layers.append(nn.Conv2d(prev, dim, 1))
    return nn.Sequential(*layers)


@dataclass
class AttentionMaps:
    """Attention probabilities of one block, for the heads it still has.

    ``probs[b, h, i, j]``: token i attends to token j; the first ``prefix`` tokens are the CLS
    token (prefix 1) or the class tokens (prefix K), the rest are patches in row-major order over
    ``grid``. ``head_ids`` are indices in the unpruned model; ``gate`` is the eval gate of each
    head (1 open, 0 closed).
    """
    block: int
    head_ids: torch.Tensor
    gate: torch.Tensor
    probs: torch.Tensor
    grid: tuple[int, int]
    prefix: int = 1

    def cls_to_patch(self) -> torch.Tensor:
        """[B, h, gh, gw]: the CLS token's map (with class tokens: their mean)."""
        return self.class_to_patch().mean(dim=2)

    def class_to_patch(self) -> torch.Tensor:
        """[B, h, prefix, gh, gw]: each prefix token's attention to the patches."""
        b, h, p = self.probs.shape[0], self.probs.shape[1], self.prefix
        return self.probs[:, :, :p, p:].reshape(b, h, p, *self.grid)

    def patch_to_patch(self) -> torch.Tensor:
        """[B, h, N, N]"""
        return self.probs[:, :, self.prefix:, self.prefix:]

    def open_only(self) -> "AttentionMaps":
        keep = self.gate > 0.5
        return AttentionMaps(self.block, self.head_ids[keep], self.gate[keep],
                             self.probs[:, keep], self.grid, self.prefix)


def band_presence(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x with non-finite values set to 0, present [B, C] bool)``.

    A channel counts as present when any of its pixels is finite: missing bands are whole NaN
    channels, while no-data pixels inside a present band are 0 (the band mean after
    normalisation), as everywhere else in the engine.
    """
    # One reduction finds the channels holding any non-finite value (their sum is not finite);
    # only those get the per-pixel test. Three full passes over the batch (isfinite, any, where)
    # took 17 % of predict's time on a 2048 px scene.
    bad = ~torch.isfinite(x.sum(dim=(-2, -1)))
    present = torch.ones(bad.shape, dtype=torch.bool, device=x.device)
    if not bool(bad.any()):
        return x, present
    b_idx, c_idx = bad.nonzero(as_tuple=True)
    present[b_idx, c_idx] = torch.isfinite(x[b_idx, c_idx]).flatten(1).any(-1)
    return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0), present


class GatedAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, head_dim: int, qkv_bias: bool = True,
                 gates: HeadGates | None = None):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, head_dim
        self.scale = head_dim ** -0.5
        inner = num_heads * head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias)
        self.proj = nn.Linear(inner, dim)
        self.gates = gates

    def forward(self, x: torch.Tensor, need_weights: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        probs = None
        if need_weights:
            probs = (q * self.scale @ k.transpose(-2, -1)).softmax(dim=-1)
            out = probs @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        if self.gates is not None:
            out = out * self.gates().to(out.dtype).view(1, -1, 1, 1)
        out = out.transpose(1, 2).reshape(b, n, self.num_heads * self.head_dim)
        return self.proj(out), probs


class Block(nn.Module):
    """Pre-norm transformer block; with zero heads left it is an MLP-only residual block."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, mlp_hidden: int,
                 qkv_bias: bool, drop_path: float, gates: HeadGates | None):
        super().__init__()
        if num_heads > 0:
            self.norm1 = LayerNorm(dim)
            self.attn = GatedAttention(dim, num_heads, head_dim, qkv_bias, gates)
            self.attn_bias = None
        else:
            self.norm1 = None
            self.attn = None
            # all heads closed still leaves the output projection's bias on the residual
            self.attn_bias = nn.Parameter(torch.zeros(dim))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = LayerNorm(dim)
        self.mlp = Mlp(dim, hidden_features=mlp_hidden, act_layer=nn.GELU)

    def forward(self, x: torch.Tensor, need_weights: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        probs = None
        if self.attn is not None:
            a, probs = self.attn(self.norm1(x), need_weights)
            x = x + self.drop_path(a)
        else:
            # not expand_as: under no_grad that view keeps requires_grad without a grad_fn,
            # which module hooks (torch's FlopCounterMode) reject
            x = x + self.drop_path(torch.zeros_like(x) + self.attn_bias)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x, probs


class SparseViT(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        d, p = c.embed_dim, c.patch_size
        self.patch_embed_s2 = (conv_stem(c.s2_chans, d, p) if c.stem == "conv"
                               else nn.Conv2d(c.s2_chans, d, kernel_size=p, stride=p))
        self.patch_embed_s1 = nn.Conv2d(2, d, kernel_size=p, stride=p) if c.has_s1 else None
        # one learned vector per input band, added for each band the input has
        self.band_embed = nn.Parameter(torch.zeros(c.in_chans, d)) if c.band_flexible else None
        g = math.ceil(c.img_size / p)
        self.base_grid = (g, g)
        self.num_prefix_tokens = c.num_prefix_tokens
        # with class tokens, cls_token holds all K of them: [1, K, D]
        self.cls_token = nn.Parameter(torch.zeros(1, self.num_prefix_tokens, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_prefix_tokens + g * g, d))
        dpr = torch.linspace(0, c.drop_path_rate, c.depth).tolist()
        blocks = []
        for i, nh in enumerate(c.heads_per_block):
            gates = None
            if c.gated and nh > 0:
                min_open = 1 if i >= c.depth - c.keep_heads_in_last else 0
                gates = HeadGates(nh, c.init_log_a, c.gate_beta, c.gate_gamma, c.gate_zeta,
                                  c.straight_through, min_open)
            blocks.append(Block(d, nh, c.head_dim, c.mlp_hidden, c.qkv_bias, dpr[i], gates))
        self.blocks = nn.ModuleList(blocks)
        self.norm = LayerNorm(d)
        self.head = nn.Linear(d, c.num_classes)
        self.patch_head = nn.Linear(d, c.num_classes) if c.patch_head else None
        self._init_weights()

    def _init_weights(self) -> None:
        trunc_normal_(self.pos_embed, std=0.02)
        if self.band_embed is not None:
            trunc_normal_(self.band_embed, std=0.02)
        # class tokens must start apart, or they stay interchangeable copies of one CLS token
        nn.init.normal_(self.cls_token, std=0.02 if self.config.class_tokens else 1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d) and m.kernel_size == m.stride:
                # a patch embedding is a linear layer over the flattened patch
                trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    # --- geometry ---------------------------------------------------------------------------
    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        p = self.config.patch_size
        return math.ceil(height / p), math.ceil(width / p)

    def _pos_embed(self, grid: tuple[int, int]) -> torch.Tensor:
        if grid == self.base_grid:
            return self.pos_embed
        return resample_abs_pos_embed(self.pos_embed, list(grid), list(self.base_grid),
                                      num_prefix_tokens=self.num_prefix_tokens)

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        c = self.config
        if x.ndim != 4 or x.shape[1] != c.in_chans:
            raise ValueError(f"expected input [B, {c.in_chans}, H, W] "
                             f"({c.s2_chans} S2 bands{' + VV, VH' if c.has_s1 else ''}), "
                             f"got {tuple(x.shape)}")
        grid = self.grid_size(x.shape[-2], x.shape[-1])
        p = c.patch_size
        pad_h, pad_w = grid[0] * p - x.shape[-2], grid[1] * p - x.shape[-1]
        present = None
        if self.band_embed is not None:
            x, present = band_presence(x)
            self.check_bands(present)
        elif not torch.isfinite(x).all():
            raise ValueError("input holds NaN/Inf values, and this model is not band-flexible: "
                             "it needs every one of its bands")
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        tok = self.patch_embed_s2(x[:, :c.s2_chans])
        if self.patch_embed_s1 is not None:
            tok = tok + self.patch_embed_s1(x[:, c.s2_chans:])
        if present is not None:
            tok = tok + (present.to(tok.dtype) @ self.band_embed.to(tok.dtype))[:, :, None, None]
        tok = tok.flatten(2).transpose(1, 2)
        tok = torch.cat([self.cls_token.expand(tok.shape[0], -1, -1), tok], dim=1)
        return tok + self._pos_embed(grid), grid

    def check_bands(self, present: torch.Tensor) -> None:
        """Every sample must hold the model's required bands (``config.min_bands``)."""
        c = self.config
        need = [c.s2_bands.index(b) for b in c.min_bands]
        lacking = ~present[:, need].all(dim=1)
        if bool(lacking.any()):
            miss = sorted({c.min_bands[j] for j in range(len(need)) for b in range(present.shape[0])
                           if not bool(present[b, need[j]])})
            raise ValueError(f"input lacks the bands {miss} this model needs at least "
                             f"({', '.join(c.min_bands)})")

    # --- forward ----------------------------------------------------------------------------
    def forward_tokens(self, x: torch.Tensor, return_attention: int = 0
                       ) -> tuple[torch.Tensor, list[AttentionMaps]]:
        """Final normalised tokens [B, prefix+N, D] and the attention of the last K blocks."""
        tok, grid = self.embed(x)
        depth = len(self.blocks)
        maps: list[AttentionMaps] = []
        for i, blk in enumerate(self.blocks):
            want = return_attention > 0 and i >= depth - return_attention
            tok, probs = blk(tok, need_weights=want)
            if want and blk.attn is not None:
                maps.append(AttentionMaps(
                    block=i,
                    head_ids=torch.tensor(self.config.head_ids[i], dtype=torch.long),
                    gate=blk.attn.gates.eval_gate().detach().cpu() if blk.attn.gates is not None
                    else torch.ones(blk.attn.num_heads),
                    probs=probs, grid=grid, prefix=self.num_prefix_tokens))
        return self.norm(tok), maps

    def logits_from_tokens(self, tok: torch.Tensor) -> torch.Tensor:
        """Logits [B, K] from normalised tokens whose first ``num_prefix_tokens`` are CLS/class
        tokens. With class tokens, class c's logit is row c of the head applied to token c only
        (the head's diagonal), so each token must carry its own class's evidence."""
        if not self.config.class_tokens:
            return self.head(tok[:, 0])
        k = self.config.num_classes
        return (tok[:, :k] * self.head.weight).sum(-1) + self.head.bias

    def patch_logits(self, tok: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Per-patch class logits [B, K, gh, gw] from normalised tokens (needs ``patch_head``)."""
        if self.patch_head is None:
            raise ValueError("this model has no patch head (config patch_head=false)")
        b = tok.shape[0]
        out = self.patch_head(tok[:, self.num_prefix_tokens:])  # [B, N, K]
        return out.transpose(1, 2).reshape(b, -1, *grid)

    def forward(self, x: torch.Tensor, return_attention: int = 0, return_patch_logits: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """Logits [B, num_classes]; with ``return_attention=K`` also the attention maps of the
        last K blocks (blocks without heads are absent from the list); with
        ``return_patch_logits`` (patch-head models) also the per-patch logits [B, K, gh, gw],
        whose spatial mean the training loss scores against the image labels too."""
        if return_attention and return_patch_logits:
            raise ValueError("ask for attention or patch logits, not both")
        tok, maps = self.forward_tokens(x, return_attention)
        logits = self.logits_from_tokens(tok)
        if return_patch_logits:
            grid = self.grid_size(x.shape[-2], x.shape[-1])
            return logits, self.patch_logits(tok, grid)
        return (logits, maps) if return_attention else logits

    # --- gates ------------------------------------------------------------------------------
    def head_gates(self) -> list[HeadGates | None]:
        return [b.attn.gates if b.attn is not None else None for b in self.blocks]

    def l0_penalty(self) -> torch.Tensor:
        """Mean expected-open probability over the penalised heads, so one lambda means the same
        thing for every model size."""
        terms = [g.expected_open() for g in self.head_gates() if g is not None]
        if not terms:
            return self.head.weight.new_zeros(())
        n = sum(g.num_heads - g.min_open for g in self.head_gates() if g is not None)
        return torch.cat(terms).sum() / max(n, 1)

    def open_heads_per_block(self) -> list[int]:
        out = []
        for b in self.blocks:
            if b.attn is None:
                out.append(0)
            elif b.attn.gates is None:
                out.append(b.attn.num_heads)
            else:
                out.append(int(b.attn.gates.open_mask().sum()))
        return out

    def total_heads(self) -> int:
        """Heads of the unpruned architecture."""
        return self.config.depth * self.config.num_heads

    def pruned_share(self) -> float:
        """Closed (or removed) heads / all heads of the unpruned architecture."""
        return 1.0 - sum(self.open_heads_per_block()) / self.total_heads()

    def gate_parameters(self) -> list[nn.Parameter]:
        return [g.log_a for g in self.head_gates() if g is not None]


def create_model(config: str | ModelConfig = "tiny", **overrides: Any) -> SparseViT:
    """``create_model("tiny", num_classes=10, has_s1=True)`` or ``create_model(ModelConfig(...))``."""
    if isinstance(config, str):
        cfg = get_config(config, **overrides)
    else:
        cfg = ModelConfig.from_dict({**config.to_dict(), **overrides})
    return SparseViT(cfg)

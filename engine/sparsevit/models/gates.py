"""Hard Concrete gates, one per attention head (Louizos et al. 2018; Voita et al. 2019).

The eval gate is binarised (open iff ``log_a > 0``): that makes "pruned share" a property of
the weights, not of one noisy draw, and lets physical pruning reproduce the gated model exactly.
"""
from __future__ import annotations

import math

import torch
from torch import nn

BETA = 0.33
GAMMA = -0.1
ZETA = 1.1
EPS = 1e-6


class HeadGates(nn.Module):
    """``num_heads`` Hard Concrete gates of one attention block.

    ``min_open`` heads (those with the largest ``log_a``) are held open in training and eval and
    excluded from the L0 penalty: blocks whose attention maps are read later (pseudomasks) then
    never lose every head.
    """

    def __init__(self, num_heads: int, init_log_a: float = 2.0, beta: float = BETA,
                 gamma: float = GAMMA, zeta: float = ZETA, straight_through: bool = True,
                 min_open: int = 0):
        super().__init__()
        if not gamma < 0 < 1 < zeta:
            raise ValueError("Hard Concrete stretch needs gamma < 0 and zeta > 1")
        self.num_heads = num_heads
        self.beta, self.gamma, self.zeta = float(beta), float(gamma), float(zeta)
        self.straight_through = bool(straight_through)
        self.min_open = int(min(max(min_open, 0), num_heads))
        self.log_a = nn.Parameter(torch.full((num_heads,), float(init_log_a)))

    def _protected(self) -> torch.Tensor:
        keep = torch.zeros(self.num_heads, dtype=torch.bool, device=self.log_a.device)
        if self.min_open:
            keep[torch.topk(self.log_a.detach(), self.min_open).indices] = True
        return keep

    def eval_gate(self) -> torch.Tensor:
        """Deterministic binary gate per head (float 0/1), no gradient."""
        with torch.no_grad():
            soft = torch.sigmoid(self.log_a) * (self.zeta - self.gamma) + self.gamma
            gate = (soft.clamp(0.0, 1.0) > 0.5).to(self.log_a.dtype)
            return torch.where(self._protected(), torch.ones_like(gate), gate)

    def open_mask(self) -> torch.Tensor:
        return self.eval_gate() > 0.5

    def forward(self) -> torch.Tensor:
        if not self.training:
            return self.eval_gate()
        u = torch.rand_like(self.log_a).clamp(EPS, 1.0 - EPS)
        s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + self.log_a) / self.beta)
        s = (s * (self.zeta - self.gamma) + self.gamma).clamp(0.0, 1.0)
        if self.straight_through:
            # (s - s.detach()) is exactly 0 in value, so the forward gate is exactly 0 or 1
            s = (s > 0.5).to(s.dtype) + (s - s.detach())
        protected = self._protected()
        if protected.any():
            s = torch.where(protected, torch.ones_like(s), s)
        return s

    def expected_open(self) -> torch.Tensor:
        """P(gate != 0) per head: the differentiable L0 term (zero for protected heads)."""
        p = torch.sigmoid(self.log_a - self.beta * math.log(-self.gamma / self.zeta))
        return torch.where(self._protected(), torch.zeros_like(p), p)

    def extra_repr(self) -> str:
        return (f"num_heads={self.num_heads}, beta={self.beta}, gamma={self.gamma}, "
                f"zeta={self.zeta}, straight_through={self.straight_through}, "
                f"min_open={self.min_open}")

"""Named architectures (timm/smp style registry): ``tiny`` for a 2-core CPU up to ``paper``."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..bands import S2_BANDS_NO_CIRRUS


@dataclass
class ModelConfig:
    embed_dim: int = 192
    depth: int = 6
    num_heads: int = 6
    head_dim: int | None = None  # default embed_dim // num_heads
    mlp_hidden: int = 768
    patch_size: int = 16
    img_size: int = 128  # size the positional embedding is stored at; other sizes interpolate
    s2_bands: tuple[str, ...] = S2_BANDS_NO_CIRRUS
    has_s1: bool = False
    num_classes: int = 10
    qkv_bias: bool = True
    drop_path_rate: float = 0.1
    # Hard Concrete gates
    gated: bool = True
    init_log_a: float = 2.0
    gate_beta: float = 0.33
    gate_gamma: float = -0.1
    gate_zeta: float = 1.1
    straight_through: bool = True
    keep_heads_in_last: int = 0  # the last K blocks each keep >= 1 open head
    # One class token per class instead of one CLS token (Hanna & Borth, ICCV 2025; MCTformer):
    # class c's logit is read from token c, and its attention to the patches is c's map.
    class_tokens: bool = False
    # A linear classifier on every patch token, trained through the mean of its logits
    # (MCTformer-V2): a class activation map at token resolution, fused with the class-token
    # attention for pseudomasks.
    patch_head: bool = False
    # Band-flexible input (any subset of ``s2_bands`` that holds ``required_bands``): a band the
    # raster lacks arrives as a NaN channel; the patch embedding then sums the embeddings of the
    # bands present (zero-filled linear embedding) plus a learned embedding per present band, so
    # the tokens say which bands they were made from. Trained with band dropout.
    band_flexible: bool = False
    required_bands: tuple[str, ...] | None = None  # None: every band of s2_bands
    # S2 patch embedding: "linear" (the paper's one p x p projection) or "conv" (stride-2 3x3
    # convolutions down to the patch size, Xiao et al. 2021 "Early convolutions help transformers
    # see better"): the same tokens and attention, but it learns from far fewer images, which
    # matters when a model is trained from scratch on a CPU.
    stem: str = "linear"
    # Set by physical pruning: heads left per block and their indices in the unpruned model.
    heads_per_block: list[int] | None = None
    head_ids: list[list[int]] | None = None
    name: str = "custom"

    def __post_init__(self) -> None:
        self.s2_bands = tuple(self.s2_bands)
        if self.required_bands is not None:
            self.required_bands = tuple(self.required_bands)
            extra = [b for b in self.required_bands if b not in self.s2_bands]
            if extra:
                raise ValueError(f"required_bands {extra} are not among s2_bands")
        if self.stem not in ("linear", "conv"):
            raise ValueError(f"stem must be 'linear' or 'conv', not {self.stem!r}")
        if self.stem == "conv" and (self.patch_size & (self.patch_size - 1) or self.patch_size < 4):
            raise ValueError(f"a conv stem needs a power-of-two patch size >= 4, not {self.patch_size}")
        if self.head_dim is None:
            if self.embed_dim % self.num_heads:
                raise ValueError("embed_dim must be divisible by num_heads (or give head_dim)")
            self.head_dim = self.embed_dim // self.num_heads
        if self.heads_per_block is None:
            self.heads_per_block = [self.num_heads] * self.depth
        if self.head_ids is None:
            self.head_ids = [list(range(n)) for n in self.heads_per_block]
        if len(self.heads_per_block) != self.depth or len(self.head_ids) != self.depth:
            raise ValueError("heads_per_block/head_ids need one entry per block")
        if any(len(ids) != n for ids, n in zip(self.head_ids, self.heads_per_block)):
            raise ValueError("head_ids do not match heads_per_block")

    @property
    def s2_chans(self) -> int:
        return len(self.s2_bands)

    @property
    def min_bands(self) -> tuple[str, ...]:
        """The S2 bands an input must have: all of them unless the model is band-flexible."""
        if self.band_flexible and self.required_bands is not None:
            return self.required_bands
        return self.s2_bands

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the patch tokens: the CLS token, or one class token per class."""
        return self.num_classes if self.class_tokens else 1

    @property
    def in_chans(self) -> int:
        return self.s2_chans + (2 if self.has_s1 else 0)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["s2_bands"] = list(self.s2_bands)
        if self.required_bands is not None:
            d["required_bands"] = list(self.required_bands)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)


_REGISTRY: dict[str, dict[str, Any]] = {}

#: the token layouts the recipe and benchmarks choose between, as ``get_config`` overrides:
#: ``ct`` one class token per class + a patch-token head (the default model's), ``cls`` the
#: paper's single CLS token
TOKEN_LAYOUTS: dict[str, dict[str, Any]] = {"ct": {"class_tokens": True, "patch_head": True},
                                            "cls": {}}


def register_config(name: str, **arch: Any) -> None:
    _REGISTRY[name] = dict(arch, name=name)


def list_configs() -> list[str]:
    return list(_REGISTRY)


def get_config(name: str, **overrides: Any) -> ModelConfig:
    if name not in _REGISTRY:
        raise KeyError(f"unknown model config {name!r}; choose one of {list_configs()}")
    return ModelConfig(**{**_REGISTRY[name], **overrides})


# Tiny: what the CPU prototype measured (~60 img/s training at 128 px on 2 cores).
register_config("tiny", embed_dim=192, depth=6, num_heads=6, mlp_hidden=768, patch_size=16,
                img_size=128)
register_config("small", embed_dim=384, depth=8, num_heads=6, mlp_hidden=1536, patch_size=16,
                img_size=128)
register_config("base", embed_dim=768, depth=12, num_heads=12, mlp_hidden=3072, patch_size=16,
                img_size=224)
# The paper's backbone: 1024 wide, 12 blocks, 16 heads of 64, MLP 2048, 224 px at patch 14.
register_config("paper", embed_dim=1024, depth=12, num_heads=16, head_dim=64, mlp_hidden=2048,
                patch_size=14, img_size=224)

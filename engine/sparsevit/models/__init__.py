"""Sparse multimodal ViT with Hard Concrete gated heads (Stage 1 of the method)."""
from .configs import TOKEN_LAYOUTS, ModelConfig, get_config, list_configs, register_config
from .gates import HeadGates
from .pruning import prune_heads
from .vit import AttentionMaps, Block, GatedAttention, SparseViT, create_model

__all__ = ["AttentionMaps", "Block", "GatedAttention", "HeadGates", "ModelConfig", "SparseViT",
           "TOKEN_LAYOUTS", "create_model", "get_config", "list_configs", "prune_heads", "register_config"]

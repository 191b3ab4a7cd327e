"""Training on an analyst's own image-level labels: tile grids, tags, ``sparsevit fit``."""

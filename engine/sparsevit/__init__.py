"""SparseViT engine: weakly supervised land-cover mapping of Sentinel-1/2 imagery."""
__version__ = "0.1.0"

"""Raster I/O: Sentinel-1/2 readers, tiling, classified and float writers."""

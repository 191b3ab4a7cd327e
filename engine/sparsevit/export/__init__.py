"""Products made from a classified raster: class-area tables, polygons, reprojected copies.

Everything here reads the classified raster window by window (memory bounded by one block, not
by the raster) and writes through :mod:`sparsevit.io.atomic`, so a failed or cancelled export
never leaves a half-written file and an existing output survives until the new one is complete.
"""
from .classes import raster_scheme
from .reproject import export_classified
from .stats import area_summary, class_areas, write_areas_csv, write_areas_json
from .vectorize import vectorize

__all__ = ["area_summary", "class_areas", "export_classified", "raster_scheme", "vectorize",
           "write_areas_csv", "write_areas_json"]

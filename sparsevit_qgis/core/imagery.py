"""The input scene as imagery under the results: a true-colour layer, and whether the basemap loads.

The engine says where the red, green and blue bands are (``result["true_colour"]``: file and
band index per band, with a 2-98 % stretch), so the plugin never guesses the band order; bands
in separate files (a SAFE product, a band folder) are stacked by a small VRT in the run folder.
"""
from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsContrastEnhancement,
    QgsMultiBandColorRenderer,
    QgsNetworkAccessManager,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QUrl
from qgis.PyQt.QtNetwork import QNetworkReply, QNetworkRequest

TRUE_COLOUR_ROLE = "true_colour"  # a plugin-side role: the engine writes no file for it
RGB = ("B04", "B03", "B02")


def _stacked_source(bands: dict, run_dir: Path | None) -> tuple[str, list[int]] | None:
    """(path, [r, g, b] band indices): the input itself when one file holds all three."""
    paths = {bands[b]["path"] for b in RGB}
    if len(paths) == 1:
        return paths.pop(), [int(bands[b]["index"]) for b in RGB]
    if run_dir is None:
        return None
    if any(int(bands[b]["index"]) != 1 for b in RGB):
        return None  # bands spread over multi-band files: no such product is known
    from osgeo import gdal  # QGIS's own GDAL: the plugin never imports rasterio
    vrt = run_dir / "true_colour.vrt"
    tmp = run_dir / ".true_colour.vrt.tmp"
    ds = gdal.BuildVRT(str(tmp), [bands[b]["path"] for b in RGB], separate=True, resolution="highest")
    if ds is None:
        return None
    ds.FlushCache()
    ds = None  # closing the dataset writes the VRT
    tmp.replace(vrt)
    return str(vrt), [1, 2, 3]


def true_colour_layer(result: dict, name: str, run_dir: Path | None = None) -> QgsRasterLayer | None:
    """A stretched true-colour layer of the run's input, or None when the engine found no RGB."""
    tc = (result.get("true_colour") or {}).get("bands") or {}
    if not all(b in tc for b in RGB):
        return None
    source = _stacked_source(tc, run_dir)
    if source is None:
        return None
    path, idx = source
    layer = QgsRasterLayer(path, name, "gdal")
    if not layer.isValid():
        return None
    provider = layer.dataProvider()
    renderer = QgsMultiBandColorRenderer(provider, *idx)
    setters = (renderer.setRedContrastEnhancement, renderer.setGreenContrastEnhancement,
               renderer.setBlueContrastEnhancement)
    for band, b, setter in zip(idx, RGB, setters):
        ce = QgsContrastEnhancement(provider.dataType(band))
        ce.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
        ce.setMinimumValue(float(tc[b]["min"]))
        ce.setMaximumValue(float(tc[b]["max"]))
        setter(ce)
    layer.setRenderer(renderer)
    layer.setCustomProperty("sparsevit/role", TRUE_COLOUR_ROLE)
    return layer


def probe_tile_url(uri: str) -> str | None:
    """A concrete tile URL of an XYZ basemap URI (zoom 0), or None for other kinds of layer."""
    from urllib.parse import parse_qs, unquote
    query = parse_qs(uri, keep_blank_values=True)
    url = unquote((query.get("url") or [""])[0])
    if not url or "{z}" not in url:
        return None
    return url.replace("{z}", "0").replace("{x}", "0").replace("{y}", "0").replace("{-y}", "0")


def basemap_problem(uri: str, timeout_ms: int = 5000) -> str | None:
    """Why the basemap's tiles do not load (offline, blocked, server error), else None.

    A blocking request with a timeout: call it from a background task, not the GUI thread."""
    url = probe_tile_url(uri)
    if url is None:
        return None
    if url.startswith("file:"):
        local = Path(QUrl(url).toLocalFile())
        return None if local.exists() else f"the local tile {local} does not exist"
    request = QNetworkRequest(QUrl(url))
    request.setTransferTimeout(timeout_ms)
    reply = QgsNetworkAccessManager.instance().blockingGet(request)
    if reply.error() != QNetworkReply.NoError:
        return f"{url}: {reply.errorString() or 'no answer'}"
    if not bytes(reply.content()):
        return f"{url}: empty answer"
    return None

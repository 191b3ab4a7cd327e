"""Styling of results: class schemes as paletted renderers, .qml sidecars, layer groups, basemap.

Main-thread only (layers and the layer tree are not thread-safe).
"""
from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Iterable
from urllib.parse import quote

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsColorRampShader,
    QgsGradientColorRamp,
    QgsLayerTreeGroup,
    QgsMapLayer,
    QgsPalettedRasterRenderer,
    QgsProject,
    QgsRasterLayer,
    QgsRasterRange,
    QgsRasterShader,
    QgsRendererCategory,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
    QgsSymbol,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QColor

from . import protocol as roles
from . import settings
from .schemes import Scheme, SchemeClass, as_scheme


def paletted_renderer(layer: QgsRasterLayer, scheme: Scheme, band: int = 1) -> QgsPalettedRasterRenderer:
    classes = [QgsPalettedRasterRenderer.Class(c.value, QColor(c.color), c.display_name)
               for c in scheme.classes]
    return QgsPalettedRasterRenderer(layer.dataProvider(), band, classes)


def apply_scheme(layer: QgsRasterLayer, scheme: Scheme | str | Path, band: int = 1,
                 opacity: float | None = None, ignore_as_nodata: bool = True) -> QgsPalettedRasterRenderer:
    """Named, coloured classes on ``layer``; the scheme's ignore value becomes transparent."""
    scheme = as_scheme(scheme)
    if ignore_as_nodata and scheme.ignore_value is not None:
        provider = layer.dataProvider()
        provider.setUserNoDataValue(band, [QgsRasterRange(scheme.ignore_value, scheme.ignore_value)])
    renderer = paletted_renderer(layer, scheme, band)
    renderer.setOpacity(settings.result_opacity() if opacity is None else float(opacity))
    layer.setRenderer(renderer)
    layer.triggerRepaint()
    return renderer


def sidecar_qml(raster_path: str | Path) -> Path | None:
    qml = Path(raster_path).with_suffix(".qml")
    return qml if qml.is_file() else None


def apply_sidecar_qml(layer: QgsMapLayer) -> bool:
    """Load ``<raster>.qml`` when it exists (the engine writes one next to each result)."""
    qml = sidecar_qml(layer.source().split("|")[0])
    if qml is None:
        return False
    _msg, ok = layer.loadNamedStyle(str(qml))
    if ok:
        layer.triggerRepaint()
    return bool(ok)


def style_result_layer(layer: QgsRasterLayer, scheme: Scheme | str | Path | None = None,
                       opacity: float | None = None) -> str:
    """Style a result: its .qml if present, else the scheme. Returns "qml", "scheme" or ""."""
    if apply_sidecar_qml(layer):
        renderer = layer.renderer()
        if renderer is not None and opacity is not None:
            renderer.setOpacity(float(opacity))
        return "qml"
    if scheme is not None:
        apply_scheme(layer, scheme, opacity=opacity)
        return "scheme"
    return ""


def style_for_role(layer: QgsMapLayer, role: str, scheme=None, classes=None,
                   opacity: float | None = None) -> str:
    """Style an engine output by its role (``resources/protocol.json``): class maps from their
    .qml or scheme, confidence as a ramp, polygons by class. Returns how ("qml", "scheme",
    "ramp", "categories") or "" when nothing could style it. The panel and Processing both call
    this, so a result looks the same whichever ran it."""
    if role in roles.CLASS_MAP_ROLES:
        return style_result_layer(layer, scheme, opacity)  # applies the opacity itself
    if role == roles.CONFIDENCE:
        confidence_renderer(layer)
        if opacity is not None:
            layer.renderer().setOpacity(float(opacity))
        return "ramp"
    if role == roles.POLYGONS and (classes or scheme):
        categorized_polygons(layer, classes or scheme)
        if opacity is not None:
            layer.setOpacity(float(opacity))
        return "categories"
    return ""


SHORT_NAME_CHARS = 28
# A Sentinel-2 product: S2A_MSIL2A_<sensing yyyymmddThhmmss>_N0509_R108_T<tile>_<processing time>
_S2_PRODUCT = re.compile(r"S2[A-D]_MSI[A-Z0-9]{3,4}_(\d{4})(\d{2})(\d{2})T\d{6}_N\d{4}_R\d{3}_"
                         r"(T\d{2}[A-Z]{3})_\d{8}T\d{6}")
# A granule's file: T<tile>_<sensing yyyymmddThhmmss>_B04_10m (inside a product, or alone)
_S2_GRANULE = re.compile(r"(?<![A-Za-z0-9])(T\d{2}[A-Z]{3})_(\d{4})(\d{2})(\d{2})T\d{6}")
_TRAILING_NOTE = re.compile(r"^(.*?)(\s+\([^()]*\))?$", re.S)  # "scene (trained)"


def _product_short_name(text: str) -> str | None:
    """``T32TMT 2023-06-01`` for a Sentinel-2 product or granule name anywhere in ``text``."""
    m = _S2_PRODUCT.search(text)
    if m:
        return f"{m.group(4)} {m.group(1)}-{m.group(2)}-{m.group(3)}"
    m = _S2_GRANULE.search(text)
    if m:
        return f"{m.group(1)} {m.group(2)}-{m.group(3)}-{m.group(4)}"
    return None


def short_scene_name(label: str, scene: str | None = None, limit: int = SHORT_NAME_CHARS) -> str:
    """What the layer tree shows of a scene: ``T32TMT 2023-06-01`` for a Sentinel-2 product
    (named in ``label`` or, for a file inside a product such as ``MTD_MSIL2A.xml``, in the
    ``scene`` path), else the label cut to ``limit`` characters with an ellipsis. A trailing
    note such as `` (trained)`` is kept whole."""
    m = _TRAILING_NOTE.match((label or "").strip())
    base, note = (m.group(1) or "").strip(), m.group(2) or ""
    short = _product_short_name(base) or (_product_short_name(str(scene)) if scene else None)
    if short is None:
        short = base if len(base) <= limit else base[:limit - 1].rstrip() + "\u2026"
    return (short or "run") + note


def run_group_name(label: str, when: _dt.datetime | None = None, scene: str | None = None) -> str:
    """A run's layer group: the short scene name (:func:`short_scene_name`) and the run's time,
    ``T32TMT 2023-06-01 10:42``; the label is the input stem for a prediction. The full scene
    path, model and run folder go to the group's properties and the layers' abstracts
    (``results.add_predict_results``)."""
    when = when or _dt.datetime.now()
    return f"{short_scene_name(label, scene)} {when:%H:%M}"


def add_layers_to_group(layers: Iterable[QgsMapLayer], group_name: str,
                        project: QgsProject | None = None,
                        parent: QgsLayerTreeGroup | None = None) -> QgsLayerTreeGroup:
    """Add ``layers`` to the project inside a new group at the top of ``parent`` (the root)."""
    project = project or QgsProject.instance()
    parent = parent or project.layerTreeRoot()
    group = parent.insertGroup(0, group_name)
    for layer in layers:
        project.addMapLayer(layer, False)  # False: the group, not the root, holds it
        group.addLayer(layer)
    return group


def basemap_uri(url_or_uri: str | None = None) -> str:
    """A full XYZ data source; a bare tile URL template is wrapped and encoded."""
    value = (url_or_uri or settings.basemap_uri()).strip()
    if value.startswith("type=") or "url=" in value:
        return value
    # A template with its own query string must be encoded or QGIS splits it at '&'.
    return f"type=xyz&url={quote(value, safe=':/{}')}&zmax=19&zmin=0"


def basemap_layer(url_or_uri: str | None = None, name: str | None = None) -> QgsRasterLayer:
    """The basemap layer object; no tile is fetched until it is drawn."""
    return QgsRasterLayer(basemap_uri(url_or_uri), name or settings.basemap_name(), "wms")


def add_basemap(project: QgsProject | None = None, url_or_uri: str | None = None,
                name: str | None = None) -> QgsRasterLayer:
    """Add the basemap at the bottom of the layer tree, under every result."""
    project = project or QgsProject.instance()
    layer = basemap_layer(url_or_uri, name)
    project.addMapLayer(layer, False)
    root = project.layerTreeRoot()
    root.insertLayer(len(root.children()), layer)
    return layer


def confidence_renderer(layer: QgsRasterLayer, band: int = 1,
                        minimum: float = 0.0, maximum: float = 1.0) -> QgsSingleBandPseudoColorRenderer:
    """Singleband pseudocolour over a fixed 0..1: a stretch to the raster's own min/max would
    make an uncertain map look as confident as a certain one. Values outside it are not drawn:
    the engine writes -1 for cloudy pixels, which have no land cover, not a low confidence."""
    ramp = QgsStyle.defaultStyle().colorRamp("Viridis") if QgsStyle.defaultStyle() else None
    if ramp is None:  # a profile without the default style database
        ramp = QgsGradientColorRamp(QColor("#440154"), QColor("#fde725"))
    shader_fn = QgsColorRampShader(minimum, maximum, ramp)
    shader_fn.setColorRampType(QgsColorRampShader.Interpolated)
    shader_fn.classifyColorRamp(5, band, layer.extent(), layer.dataProvider())
    shader_fn.setClip(True)
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(shader_fn)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), band, shader)
    renderer.setClassificationMin(minimum)
    renderer.setClassificationMax(maximum)
    layer.setRenderer(renderer)
    layer.triggerRepaint()
    return renderer


def palette_classes(layer: QgsRasterLayer) -> list[SchemeClass]:
    """The classes (value, colour, name) of a paletted raster layer; empty when not paletted."""
    renderer = layer.renderer() if layer is not None else None
    if not isinstance(renderer, QgsPalettedRasterRenderer):
        return []
    return [SchemeClass(int(c.value), c.label or f"class {int(c.value)}", c.color.name())
            for c in renderer.classes()]


def categorized_polygons(layer: QgsVectorLayer,
                         scheme: Scheme | str | Path | Iterable[SchemeClass],
                         field: str = "class_value") -> QgsCategorizedSymbolRenderer:
    """Class polygons in the scheme's colours and names (the engine's ``class_value`` field).
    ``scheme`` may also be the classes of the raster the polygons came from."""
    if isinstance(scheme, (str, Path, dict)):
        scheme = as_scheme(scheme)
    classes = scheme.classes if isinstance(scheme, Scheme) else list(scheme)
    categories = []
    for c in classes:
        symbol = QgsSymbol.defaultSymbol(layer.geometryType())
        symbol.setColor(QColor(c.color))
        # Outlines in the fill colour: thousands of small patches otherwise turn grey.
        sl = symbol.symbolLayer(0)
        if sl is not None and hasattr(sl, "setStrokeColor"):
            sl.setStrokeColor(QColor(c.color))
        categories.append(QgsRendererCategory(c.value, symbol, getattr(c, "display_name", c.name)))
    renderer = QgsCategorizedSymbolRenderer(field, categories)
    layer.setRenderer(renderer)
    layer.triggerRepaint()
    return renderer


def set_group_opacity(group: QgsLayerTreeGroup, opacity: float) -> None:
    """Opacity of every layer of a result group (raster renderers and vector layers)."""
    opacity = min(1.0, max(0.0, float(opacity)))
    for node in group.findLayers():
        layer = node.layer()
        if layer is None or layer.customProperty("sparsevit/role") == "true_colour":
            continue  # the imagery under the maps stays opaque: the maps fade into it
        if isinstance(layer, QgsRasterLayer) and layer.renderer() is not None:
            layer.renderer().setOpacity(opacity)
        elif isinstance(layer, QgsVectorLayer):
            layer.setOpacity(opacity)
        layer.triggerRepaint()

"""Class tables for classified rasters: colour table, GDAL raster attribute table, QGIS style.

A scheme is duck-typed: anything with ``.classes``, each class having ``.value`` (int),
``.name`` (str) and ``.color`` ("#rrggbb").
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

CLASSES_TAG = "SPARSEVIT_CLASSES"
# GDAL RAT enums (gdal.h): field types and usages.
_GFT_INTEGER, _GFT_STRING = 0, 2
_GFU_GENERIC, _GFU_NAME, _GFU_MINMAX, _GFU_RED, _GFU_GREEN, _GFU_BLUE = 0, 2, 5, 6, 7, 8


@dataclass(frozen=True)
class ClassEntry:
    value: int
    name: str
    rgb: tuple[int, int, int]
    label: str = ""  # the legend's text (QML); files keep the name

    @property
    def display_name(self) -> str:
        return self.label or self.name

    @property
    def hex(self) -> str:
        return "#%02x%02x%02x" % self.rgb


def parse_color(text: str) -> tuple[int, int, int]:
    s = text.strip().lstrip("#")
    if len(s) == 3:
        s = "".join(ch * 2 for ch in s)
    if len(s) not in (6, 8):
        raise ValueError(f"not a #rrggbb colour: {text!r}")
    return (int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16))


def class_entries(scheme) -> list[ClassEntry]:
    entries = [ClassEntry(int(c.value), str(c.name), parse_color(c.color), str(getattr(c, "label", "") or ""))
               for c in scheme.classes]
    values = [e.value for e in entries]
    if len(set(values)) != len(values) or any(not 0 <= v <= 254 for v in values):
        raise InputError("class values must be unique and within 0..254 (255 is no data)",
                         fix="fix the class scheme")
    return sorted(entries, key=lambda e: e.value)


def colormap(entries: list[ClassEntry], nodata: int = 255) -> dict[int, tuple[int, int, int, int]]:
    cmap = {e.value: (*e.rgb, 255) for e in entries}
    cmap[nodata] = (0, 0, 0, 0)
    return cmap


def classes_tag(entries: list[ClassEntry]) -> str:
    return json.dumps([{"value": e.value, "name": e.name, "color": e.hex} for e in entries])


def pam_xml(entries: list[ClassEntry], existing: str | None = None) -> str:
    """GDAL PAM ``.aux.xml`` with category names and a thematic raster attribute table for band 1."""
    # nosec: ``existing`` is the .aux.xml GDAL just wrote for our own temporary file.
    root = ET.fromstring(existing) if existing else ET.Element("PAMDataset")  # nosec B314
    band = root.find("PAMRasterBand[@band='1']")
    if band is None:
        band = ET.SubElement(root, "PAMRasterBand", band="1")
    for tag in ("CategoryNames", "GDALRasterAttributeTable"):
        for old in band.findall(tag):
            band.remove(old)
    cats = ET.SubElement(band, "CategoryNames")
    names = {e.value: e.name for e in entries}
    for v in range(max(names) + 1 if names else 0):
        ET.SubElement(cats, "Category").text = names.get(v, "")
    rat = ET.SubElement(band, "GDALRasterAttributeTable", tableType="thematic")
    fields = [("Value", _GFT_INTEGER, _GFU_MINMAX), ("Class_Name", _GFT_STRING, _GFU_NAME),
              ("Red", _GFT_INTEGER, _GFU_RED), ("Green", _GFT_INTEGER, _GFU_GREEN),
              ("Blue", _GFT_INTEGER, _GFU_BLUE)]
    for i, (name, ftype, usage) in enumerate(fields):
        fd = ET.SubElement(rat, "FieldDefn", index=str(i))
        ET.SubElement(fd, "Name").text = name
        ET.SubElement(fd, "Type").text = str(ftype)
        ET.SubElement(fd, "Usage").text = str(usage)
    for row, e in enumerate(entries):
        r = ET.SubElement(rat, "Row", index=str(row))
        for value in (e.value, e.name, *e.rgb):
            ET.SubElement(r, "F").text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def paletted_qml(entries: list[ClassEntry], band: int = 1, nodata: int = 255) -> str:
    """A QGIS (3.22+) layer style: paletted renderer with each class's value, colour and label."""
    root = ET.Element("qgis", version="3.22.0", styleCategories="AllStyleCategories",
                      hasScaleBasedVisibilityFlag="0", minScale="1e+08", maxScale="0")
    pipe = ET.SubElement(root, "pipe")
    provider = ET.SubElement(pipe, "provider")
    ET.SubElement(provider, "resampling", enabled="false", maxOversampling="2",
                  zoomedInResamplingMethod="nearestNeighbour",
                  zoomedOutResamplingMethod="nearestNeighbour")
    rr = ET.SubElement(pipe, "rasterrenderer", type="paletted", band=str(band), opacity="1",
                       alphaBand="-1", nodataColor="")
    transp = ET.SubElement(rr, "rasterTransparency")
    single = ET.SubElement(transp, "singleValuePixelList")
    ET.SubElement(single, "pixelListEntry", min=str(nodata), max=str(nodata), percentTransparent="100")
    ET.SubElement(rr, "minMaxOrigin")
    palette = ET.SubElement(rr, "colorPalette")
    for e in entries:
        ET.SubElement(palette, "paletteEntry", value=str(e.value), color=e.hex, alpha="255",
                      label=e.display_name)
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", grayscaleMode="0", colorizeOn="0",
                  colorizeRed="255", colorizeGreen="128", colorizeBlue="128", colorizeStrength="100")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(root, "blendMode").text = "0"
    ET.indent(root)
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            + ET.tostring(root, encoding="unicode") + "\n")


def qml_path(raster: str | Path) -> Path:
    """QGIS loads ``<name>.qml`` beside ``<name>.tif`` as the layer's default style."""
    return Path(raster).with_suffix(".qml")


def read_class_table(path: str | Path) -> dict[int, tuple[str, tuple[int, int, int]]]:
    """``{value: (name, rgb)}`` of a raster written by :class:`ClassifiedWriter`.

    Reads the RAT in ``<path>.aux.xml``; falls back to the ``SPARSEVIT_CLASSES`` band tag.
    """
    aux = Path(str(path) + ".aux.xml")
    if aux.exists():
        # nosec: ElementTree never resolves external entities, and expat >= 2.4.1 (Python
        # 3.11 ships 2.5) refuses entity-expansion bombs, so a hostile .aux.xml raises ParseError.
        try:
            rat = ET.parse(aux).getroot().find("PAMRasterBand[@band='1']/GDALRasterAttributeTable")  # nosec B314
        except ET.ParseError:  # a broken sidecar: the band tag below still names the classes
            rat = None
        if rat is not None:
            cols = {fd.findtext("Usage"): int(fd.get("index")) for fd in rat.findall("FieldDefn")}
            out = {}
            for row in rat.findall("Row"):
                f = [x.text or "" for x in row.findall("F")]
                rgb = tuple(int(f[cols[str(u)]]) for u in (_GFU_RED, _GFU_GREEN, _GFU_BLUE))
                out[int(f[cols[str(_GFU_MINMAX)]])] = (f[cols[str(_GFU_NAME)]], rgb)
            return out
    import rasterio
    with rasterio.open(path) as ds:
        tag = ds.tags(1).get(CLASSES_TAG)
    if not tag:
        return {}
    return {int(c["value"]): (c["name"], parse_color(c["color"])) for c in json.loads(tag)}

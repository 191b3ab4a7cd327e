"""SparseViT for QGIS: land-cover mapping of Sentinel-1/2 imagery.

QGIS imports this package at start-up for every enabled plugin, so nothing heavy happens at
import time: the plugin class (and Qt/QGIS GUI modules) load only when QGIS asks for them.
"""
from __future__ import annotations


def classFactory(iface):  # noqa: N802 (name fixed by QGIS)
    from .plugin import SparseVitPlugin
    return SparseVitPlugin(iface)

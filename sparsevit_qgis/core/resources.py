"""Where the plugin finds ``resources/`` (schemes, mappings, styles, models, protocol), the data
it shares with the engine."""
from __future__ import annotations

from pathlib import Path


def resources_dir() -> Path | None:
    """``resources/`` inside the packaged plugin, or at the root of a checkout."""
    plugin_dir = Path(__file__).resolve().parents[1]
    for cand in (plugin_dir / "resources", plugin_dir.parent / "resources"):
        if (cand / "schemes").is_dir():
            return cand
    return None

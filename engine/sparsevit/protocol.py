"""The plugin-engine contract as the engine reads it: ``resources/protocol.json`` (events,
exit codes, output roles; explained in ``docs/protocol.md``). The plugin reads the same file
(``sparsevit_qgis/core/protocol.py``), so a role or a version is written in one place."""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from .paths import resource


@lru_cache(maxsize=None)
def spec() -> dict[str, Any]:
    return json.loads(resource("protocol.json").read_text(encoding="utf-8"))


def version() -> int:
    return int(spec()["protocol"])


def output_roles() -> tuple[str, ...]:
    """Every key ``predict``'s ``result`` event may have under ``outputs``."""
    return tuple(spec()["output_roles"])

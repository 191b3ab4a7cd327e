"""Reading the project's own model files safely: JSON descriptions and safetensors weights.

Model files may come from anywhere (a colleague, a download), so nothing here unpickles or
evaluates; every way a file can be wrong ends in an :class:`InputError` naming the file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import InputError


def read_json_document(meta: Path, fmt: str, what: str, fix: str, max_version: int) -> dict[str, Any]:
    """The JSON object in ``meta`` whose ``format`` is ``fmt`` and ``format_version`` is at
    most ``max_version``; ``what`` names it in messages ("model description", "bundle.json")."""
    if not meta.is_file():
        raise InputError(f"{what} (JSON) is missing", path=meta, fix=fix)
    try:
        doc = json.loads(meta.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"{what} is not valid JSON ({exc})", path=meta, fix=fix) from exc
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise InputError(f"not a SparseViT {what}", path=meta, fix=fix)
    try:
        version = int(doc.get("format_version", 0))
    except (TypeError, ValueError):
        raise InputError(f"{what} has no valid 'format_version'", path=meta, fix=fix) from None
    if version > max_version:
        raise InputError(f"{what} format version {version} is newer than this engine "
                         f"understands ({max_version})", path=meta, fix="update SparseViT for QGIS")
    return doc


def read_safetensors(path: Path, what: str, fix: str) -> dict:
    """Tensors of a safetensors file (a pickle or anything else is refused, never loaded)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise InputError(f"{what} file is missing", path=path, fix=fix)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"{what} file is not a readable safetensors file ({exc})", path=path,
                         fix=fix) from exc

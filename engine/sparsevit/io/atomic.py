"""Atomic output: write to a temporary file beside the target, rename on success.

A failed or cancelled run therefore never leaves a half-written file at the output path, and an
existing file at that path survives until the new one is complete.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import OutputError


def check_writable_dir(path: str | Path) -> Path:
    target = Path(path)
    folder = target.parent if target.parent != Path("") else Path(".")
    if not folder.exists():
        raise OutputError("output folder does not exist", path=folder,
                          fix="create it or choose another output path")
    if not os.access(folder, os.W_OK):
        raise OutputError("output folder is not writable", path=folder,
                          fix="choose a folder you can write to")
    return target


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the same folder; on success move it over ``path``.

    Sidecars written next to the temporary file with the same stem (``tmp.tif.aux.xml``) move
    with it. On any exception the temporary files are removed and the exception propagates.
    """
    target = check_writable_dir(path)
    suffix = suffix if suffix is not None else "".join(target.suffixes) or ".tmp"
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".part" + suffix,
                                        dir=str(target.parent))
    except OSError as exc:  # root passes os.access on read-only mounts; a file is no folder
        raise OutputError(f"cannot write into the output folder ({exc.strerror or exc})",
                          path=target.parent, fix="choose a folder you can write to") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # let the writer create it (GDAL refuses some existing files)
    sidecar_exts = (".aux.xml", ".ovr", ".msk")
    try:
        yield tmp
        for ext in sidecar_exts:
            side = Path(str(tmp) + ext)
            if side.exists():
                os.replace(side, str(target) + ext)
        os.replace(tmp, target)
    except OSError as exc:
        _cleanup(tmp, sidecar_exts)
        raise OutputError(f"could not write output ({exc.strerror or exc})", path=target,
                          fix="check free disk space and permissions") from exc
    except BaseException:
        _cleanup(tmp, sidecar_exts)
        raise


def _cleanup(tmp: Path, sidecar_exts: tuple[str, ...]) -> None:
    for p in [tmp] + [Path(str(tmp) + e) for e in sidecar_exts]:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)

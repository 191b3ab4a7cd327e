"""Which classes a classified raster holds: an explicit scheme, else the raster's own class table."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

from ..errors import InputError
from ..schemes import ClassScheme, load_scheme, scheme_from_dict


def open_raster(path: str | Path, what: str = "classified"):
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} raster not found", path=p, fix="check the path")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(p)
    except RasterioIOError as exc:
        raise InputError(f"{what} raster cannot be read ({str(exc).splitlines()[0][:160]})", path=p,
                         fix="give a GeoTIFF or another GDAL-readable raster") from exc


def raster_scheme(path: str | Path, scheme: str | Path | ClassScheme | None = None,
                  required: bool = True) -> ClassScheme | None:
    """``scheme`` when given (name, JSON path or object), else the class table the engine wrote
    into the raster (RAT / ``SPARSEVIT_CLASSES`` tag). ``required=False`` returns ``None``
    instead of raising when the raster has no class table."""
    if scheme is not None:
        return load_scheme(scheme)
    from ..io.styles import read_class_table

    open_raster(path).close()  # a missing or unreadable file says so, not "no class table"
    try:
        table = read_class_table(path)
    except Exception as exc:  # a damaged .aux.xml or tag is a user-fixable problem
        raise InputError(f"cannot read the class table ({exc})", path=path,
                         fix="pass --scheme NAME, or delete the damaged .aux.xml") from exc
    if not table:
        if not required:
            return None
        raise InputError("raster carries no class table, so its class names are unknown", path=path,
                         fix="pass --scheme NAME (e.g. dfc2020)")
    name = _scheme_tag(path) or Path(path).stem
    data = {"name": name, "title": name,
            "classes": [{"value": v, "name": n or f"class {v}", "color": "#%02x%02x%02x" % rgb}
                        for v, (n, rgb) in sorted(table.items())]}
    return scheme_from_dict(data, path)


def _scheme_tag(path: str | Path) -> str | None:
    try:
        with open_raster(path) as ds:
            return ds.tags().get("SPARSEVIT_SCHEME")
    except InputError:
        return None


def import_pyogrio():
    """pyogrio without Debian's pyproj: pyogrio only probes for it, and loading the system PROJ
    beside rasterio's bundled one is the same mix that makes osgeo + rasterio crash at exit."""
    if "pyogrio" in sys.modules:
        return sys.modules["pyogrio"]
    hidden = "pyproj" not in sys.modules
    if hidden:
        sys.modules["pyproj"] = None  # type: ignore[assignment]  # makes `import pyproj` fail
    try:
        import pyogrio
    finally:
        if hidden:
            del sys.modules["pyproj"]
    return pyogrio

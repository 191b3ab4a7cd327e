"""Files read in place from a zip archive (a Sentinel-2 SAFE product as downloaded, e.g.
``S2A_MSIL2A_..._.SAFE.zip`` from the Copernicus browser), through GDAL's ``/vsizip/``: nothing is
extracted to disk.

A file or folder inside an archive is an :class:`ArchivePath`: ``str()`` and ``os.fspath()``
give GDAL's name for it (``/vsizip/{/abs/product.zip}/X.SAFE/GRANULE/...``, the archive in
braces so that no path normalisation can merge its leading ``/`` with the prefix), which
rasterio opens as it is. The few :class:`pathlib.Path` methods the engine uses on inputs
(``exists``, ``is_file``, ``is_dir``, ``resolve``, ``read_bytes``, ``read_text``) answer from the
archive's listing, read once per archive state (path, size, modification time).
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ..errors import InputError

VSIZIP = "/vsizip/"
ZIP_SUFFIX = ".zip"
# A product's metadata files are kilobytes; never inflate a (hostile) member beyond this.
_MAX_READ_BYTES = 64 * 1024 * 1024
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
               NotImplementedError, RuntimeError)  # RuntimeError: encrypted members
_DAMAGED_FIX = ("download the product again (the download is incomplete or damaged), or unzip it "
                "and give the .SAFE folder")

_CHUNK = 4 * 1024 * 1024

_listings: dict[tuple[str, int, int], tuple[frozenset[str], frozenset[str]]] = {}
_verified: set[tuple[str, int, int, str]] = set()


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return text or type(exc).__name__


def is_zip(path) -> bool:
    """Whether ``path`` is a zip file on disk (by its name: ``*.zip``), not a path inside one."""
    if isinstance(path, ArchivePath) or not isinstance(path, (str, Path)):
        return False
    p = Path(path)
    return p.suffix.lower() == ZIP_SUFFIX and p.is_file()


def _norm(name: str) -> str:
    """A member name as a path: no leading ``/`` or ``./``, no empty or ``.`` parts."""
    return "/".join(p for p in name.split("/") if p and p != ".")


def listing(archive: str | Path) -> tuple[frozenset[str], frozenset[str]]:
    """``(files, folders)`` inside ``archive``, as member paths without a leading or trailing
    ``/``; :class:`InputError` when the archive is missing, truncated or not a zip."""
    archive = Path(archive)
    key = _state(archive)
    if key not in _listings:
        try:
            with zipfile.ZipFile(archive) as zf:
                names = [i.filename for i in zf.infolist()]
        except _ZIP_ERRORS as exc:
            raise InputError(f"not a readable zip archive ({_short(exc)})", path=archive,
                             fix=_DAMAGED_FIX) from exc
        files, folders = set(), {""}
        for n in names:
            parts = _norm(n).split("/")
            if not parts[0]:
                continue
            if not n.endswith("/"):
                files.add("/".join(parts))
                parts = parts[:-1]
            for i in range(1, len(parts) + 1):
                folders.add("/".join(parts[:i]))
        if len(_listings) > 64:
            _listings.clear()
        _listings[key] = (frozenset(files), frozenset(folders))
    return _listings[key]


def _state(archive: Path) -> tuple[str, int, int]:
    try:
        st = archive.stat()
    except OSError as exc:
        raise InputError("file not found", path=archive, fix="check the path") from exc
    return (str(archive), st.st_size, st.st_mtime_ns)


def verify(paths: list["ArchivePath"]) -> None:
    """Check the CRC-32 of these members (streamed, nothing written; once per archive state).

    GDAL's /vsizip/ does not check CRCs: a damaged deflated member inflates to wrong pixels
    without an error. A streaming pass costs about a second per GB; predicting the scene reads
    those bytes anyway. :class:`InputError` naming the archive and the member when one is damaged.
    """
    by_archive: dict[Path, list[str]] = {}
    for p in paths:
        by_archive.setdefault(p.archive, []).append(p.member)
    for archive, members in by_archive.items():
        state = _state(archive)
        todo = [m for m in members if state + (m,) not in _verified]
        if not todo:
            continue
        member = todo[0]
        try:
            with zipfile.ZipFile(archive) as zf:
                infos = {_norm(i.filename): i for i in zf.infolist()}
                for member in todo:
                    with zf.open(infos[member]) as f:
                        while f.read(_CHUNK):
                            pass
                    _verified.add(state + (member,))
        except (KeyError, *_ZIP_ERRORS) as exc:
            raise InputError(f"{member.rsplit('/', 1)[-1]} is damaged inside the zip archive "
                             f"({_short(exc)})", path=archive, fix=_DAMAGED_FIX) from exc


def _split(text: str) -> tuple[str, str]:
    """``/vsizip/{archive}/member`` -> ``(archive, member)`` (braces may nest, as in GDAL)."""
    if not text.startswith(VSIZIP + "{"):
        raise ValueError(f"not an archive path: {text}")
    level, i = 0, len(VSIZIP)
    while i < len(text):
        if text[i] == "{":
            level += 1
        elif text[i] == "}":
            level -= 1
            if level == 0:
                break
        i += 1
    if level != 0:
        raise ValueError(f"not an archive path: {text}")
    return text[len(VSIZIP) + 1:i], text[i + 1:].strip("/")


class ArchivePath(PurePosixPath):
    """A file or folder inside a zip archive, named the way GDAL opens it (module doc)."""

    __slots__ = ()

    @classmethod
    def of(cls, archive: str | Path, member: str = "") -> "ArchivePath":
        a = str(Path(archive).resolve())
        member = member.strip("/")
        return cls(f"{VSIZIP}{{{a}}}" + (f"/{member}" if member else ""))

    @property
    def archive(self) -> Path:
        """The zip file on disk."""
        return Path(_split(str(self))[0])

    @property
    def member(self) -> str:
        """The path inside the archive ("" for the archive's top)."""
        return _split(str(self))[1]

    def _listing(self) -> tuple[frozenset[str], frozenset[str]] | None:
        try:
            return listing(self.archive)
        except (InputError, ValueError):
            return None

    def is_file(self) -> bool:
        found = self._listing()
        return found is not None and self.member in found[0]

    def is_dir(self) -> bool:
        found = self._listing()
        return found is not None and self.member in found[1]

    def exists(self) -> bool:
        return self.is_file() or self.is_dir()

    def resolve(self, strict: bool = False) -> "ArchivePath":
        return self

    def files(self) -> list["ArchivePath"]:
        """Every file inside this folder of the archive, at any depth, sorted."""
        files, _ = listing(self.archive)
        top = self.member
        prefix = f"{top}/" if top else ""
        return [ArchivePath.of(self.archive, n) for n in sorted(files) if n.startswith(prefix)]

    def read_bytes(self) -> bytes:
        """The member's bytes (inflated); :class:`InputError` when the archive is damaged."""
        archive, member = self.archive, self.member
        try:
            with zipfile.ZipFile(archive) as zf:
                info = next((i for i in zf.infolist() if _norm(i.filename)
                             == member), None)
                if info is None:
                    raise InputError(f"{member} is not in the zip archive", path=archive,
                                     fix=_DAMAGED_FIX)
                if info.file_size > _MAX_READ_BYTES:
                    raise InputError(f"{member} in the zip archive is implausibly large "
                                     f"({info.file_size} bytes)", path=archive, fix=_DAMAGED_FIX)
                return zf.read(info)
        except _ZIP_ERRORS as exc:
            raise InputError(f"cannot read {member} from the zip archive ({_short(exc)})",
                             path=archive, fix=_DAMAGED_FIX) from exc

    def read_text(self, encoding: str | None = "utf-8", errors: str | None = None) -> str:
        return self.read_bytes().decode(encoding or "utf-8", errors or "strict")

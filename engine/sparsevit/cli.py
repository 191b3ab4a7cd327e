"""The ``sparsevit`` command line.

Each sub-command lives in ``sparsevit/commands/<name>.py`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func(args, progress) -> int``. Global options: ``--json`` for
JSON-lines events on stdout (read by the QGIS plugin), ``--cancel-file`` to cancel from outside.
User errors (:class:`~sparsevit.errors.SparseVitError`) print one line and exit non-zero.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from .commands.options import check_compute_options
from .errors import SparseVitError
from .progress import Progress

# Order is the order in ``sparsevit --help``. A module missing here is simply not offered.
COMMAND_MODULES = ["info", "mosaic", "train", "pseudomasks", "refine", "predict", "evaluate", "export",
                   "grid", "fit", "export_model"]


def _requested_command(argv: list[str]) -> str | None:
    """The sub-command named in ``argv`` (the first word that is not a global option or its value)."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--cancel-file":
            i += 2
            continue
        if not a.startswith("-"):
            return a
        i += 1
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given ``argv`` naming a known command, only that command's module is imported,
    so a light command (``info``, ``export``) starts without importing torch: the plugin's Inspect
    and every run's first event wait on this start."""
    from . import __version__
    parser = argparse.ArgumentParser(
        prog="sparsevit", description="SparseViT engine: weakly supervised land-cover mapping of "
                                      "Sentinel-1/2 imagery (the QGIS plugin runs these commands).")
    parser.add_argument("--version", action="version", version=f"sparsevit {__version__}")
    parser.add_argument("--json", action="store_true",
                        help="emit JSON-lines progress/log/result events on stdout")
    parser.add_argument("--cancel-file", metavar="PATH",
                        help="cancel the run as soon as this file exists")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = (_requested_command(argv) or "").replace("-", "_") if argv is not None else None
    for name in ([wanted] if wanted in COMMAND_MODULES else COMMAND_MODULES):
        try:
            module = importlib.import_module(f"sparsevit.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"sparsevit.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


# options whose value may start with '-' (west/south coordinates), which argparse would
# otherwise take for an option: "--area -0.78,38.1,..." becomes "--area=-0.78,38.1,..."
_NEGATIVE_VALUE_OPTIONS = ("--area",)


def _join_negative_values(argv: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(argv):
        if argv[i] in _NEGATIVE_VALUE_OPTIONS and i + 1 < len(argv) and argv[i + 1].startswith("-") \
                and argv[i + 1][1:2].isdigit():
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _start_fields(args: argparse.Namespace) -> dict:
    from . import __version__, protocol

    fields = {"command": args.command, "protocol": protocol.version(), "engine_version": __version__,
              "device": None, "device_name": None}
    if getattr(args, "uses_device", False):  # commands that run a model say where, up front
        from .devices import device_fields
        fields.update(device_fields(getattr(args, "device", None), getattr(args, "threads", None)))
    return fields


def main(argv: list[str] | None = None) -> int:
    # GDAL's block cache defaults to 5% of RAM and fills up on big rasters; memory must stay
    # bounded whatever the raster size, and windows are read once, so a small cache is enough
    os.environ.setdefault("GDAL_CACHEMAX", "256")
    argv = _join_negative_values(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    progress = Progress(json_lines=args.json, cancel_file=args.cancel_file)
    progress.install_signal_handlers()
    try:
        progress.emit("start", **_start_fields(args))
        check_compute_options(args)
        code = int(args.func(args, progress) or 0)
    except SparseVitError as err:
        if args.debug:
            traceback.print_exc()
        progress.emit("error", **err.to_dict())
        print(f"sparsevit {args.command}: error: {err.one_line()}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        progress.emit("error", message="interrupted", problem="interrupted", path=None, fix=None)
        print(f"sparsevit {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an engine bug: keep the traceback, still one machine-readable event
        progress.emit("error", message=f"internal error: {exc!r}", problem="internal error",
                      path=None, fix="report this with the traceback")
        traceback.print_exc()
        return 1
    progress.emit("end", command=args.command, exit_code=code)
    return code


if __name__ == "__main__":
    sys.exit(main())

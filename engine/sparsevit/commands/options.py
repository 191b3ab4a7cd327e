"""Options several commands share, declared once so their spelling and help cannot drift."""
from __future__ import annotations

from ..devices import check_threads
from ..io.radiometry import OVERRIDE_HELP


def add_band_options(p, radiometry: bool = True) -> None:
    """``--band-order`` (and ``--radiometry``): how to read a raster the metadata leaves open."""
    p.add_argument("--band-order", metavar="BANDS",
                   help="names of the input bands in file order, comma-separated "
                        "(e.g. B01,B02,...; - for a band to leave out) or a preset: eurosat, esa, esa12")
    if radiometry:
        p.add_argument("--radiometry", metavar="FORM",
                       help="how the Sentinel-2 values are scaled, when the product's metadata does not "
                            "say or says it wrongly: " + OVERRIDE_HELP)
        p.add_argument("--keep-blocky-bands", action="store_true",
                       help="read 20/60 m bands that the export upsampled by nearest neighbour "
                            "(2 x 2 blocks of one value) as stored; by default they are smoothed "
                            "to a bilinear upsampling, as the model was trained")


def add_compute_options(p) -> None:
    """``--device`` and ``--threads`` for commands that run a network."""
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1 ... (default auto: cuda when available)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")


def check_compute_options(args) -> None:
    """The compute options of any command, checked before it starts."""
    check_threads(getattr(args, "threads", None))

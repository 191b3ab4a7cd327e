"""Fit the per-band L2A -> L1C lines on the real L1C/L2A pairs of one acquisition in data/.

    .venv/bin/python scripts/fit_level_conversion.py [--data data] [--out resources/radiometry/l2a_to_l1c.json]

Pairs every SSL4EO-S12 date present as L1C (data/ssl4eo_s12/s2c/SITE/DATE) and as L2A
(data/ssl4eo_s12/s2a/SITE/DATE), reads both through the engine's reader (model DN: reflectance
x 10000, no offset) and fits L1C = gain x L2A + offset per band over the pixels valid in both
(sparsevit.io.processing_level.fit_conversion). Prints the fit and writes it as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from sparsevit.bands import S2_BANDS_NO_CIRRUS
from sparsevit.io.atomic import write_text_atomic
from sparsevit.io.processing_level import CONVERSION_FILE, fit_conversion
from sparsevit.io.scene import open_s2

REPO = Path(__file__).resolve().parents[1]


def pairs(data: Path) -> list[tuple[Path, Path]]:
    root = data / "ssl4eo_s12"
    out = []
    for l2a in sorted((root / "s2a").glob("*/*")):
        l1c = root / "s2c" / l2a.parent.name / l2a.name
        if l2a.is_dir() and l1c.is_dir():
            out.append((l2a, l1c))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO / "data"))
    ap.add_argument("--out", default=str(REPO / "resources" / Path(*CONVERSION_FILE)))
    args = ap.parse_args(argv)
    found = pairs(Path(args.data))
    if not found:
        print(f"no SSL4EO-S12 date present as both L1C and L2A under {args.data}", file=sys.stderr)
        return 2
    bands = list(S2_BANDS_NO_CIRRUS)
    l2a_all, l1c_all, valid_all, names = [], [], [], []
    for l2a_dir, l1c_dir in found:
        with open_s2(l2a_dir) as s:
            a, va = s.read(bands=bands)
        with open_s2(l1c_dir) as s:
            c, vc = s.read(bands=bands)
        l2a_all.append(a.reshape(len(bands), -1))
        l1c_all.append(c.reshape(len(bands), -1))
        valid_all.append((va & vc).ravel())
        names.append(f"{l2a_dir.parent.name}/{l2a_dir.name}")
    l2a, l1c, valid = (np.concatenate(x, axis=-1) for x in (l2a_all, l1c_all, valid_all))
    conv = fit_conversion(l2a, l1c, bands, valid,
                          source=f"{len(found)} SSL4EO-S12 acquisition(s) read as L1C and L2A "
                                 f"({', '.join(names)}; {int(valid.sum())} pixels)")
    for b in bands:
        print(f"{b}: L1C = {conv.gain[b]:.4f} x L2A {conv.offset[b]:+8.1f}  (r = {conv.correlation[b]:.4f})")
    print(conv.source)
    write_text_atomic(Path(args.out), json.dumps(conv.to_dict(), indent=2) + "\n")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

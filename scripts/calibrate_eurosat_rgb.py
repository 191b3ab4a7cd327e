"""Fit the EuroSAT RGB -> L1C DN calibration on the patches present in both EuroSAT sets.

    .venv/bin/python scripts/calibrate_eurosat_rgb.py [--data data] [--out data/eurosat_rgb/calibration.json]

Pairs every EuroSAT-MS patch (data/eurosat_ms, data/eurosat_ms_more) with the RGB patch of the
same name in data/eurosat_rgb/EuroSAT_RGB.zip and fits level = gain x DN + offset per channel
(sparsevit.datasets.rgb_calibration.fit). Prints the fit and writes it as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sparsevit.datasets import rgb_calibration
from sparsevit.io.atomic import write_text_atomic


def ms_files(data: Path) -> dict[str, Path]:
    out = {}
    for p in sorted((data / "eurosat_ms").glob("*/*.tif")) + sorted((data / "eurosat_ms_more").glob("*/*/*.tif")):
        out.setdefault(p.stem, p)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    data = Path(args.data)
    dn, levels = rgb_calibration.paired_arrays(ms_files(data), data / "eurosat_rgb" / "EuroSAT_RGB.zip")
    cal = rgb_calibration.fit(dn, levels, source=f"{dn.shape[0]} EuroSAT patches present as MS and RGB "
                              "(data/eurosat_ms*, data/eurosat_rgb/EuroSAT_RGB.zip)")
    for b in rgb_calibration.RGB_CHANNEL_BANDS:
        print(f"{b}: level = {cal.gain[b]:.5f} x DN + {cal.offset[b]:+.2f}  "
              f"(r = {cal.correlation[b]:.4f}, RMSE {cal.rmse_levels[b]:.2f} levels; "
              f"255 ~ DN {(255 - cal.offset[b]) / cal.gain[b]:.0f})")
    print(f"pairs: {cal.pairs}")
    out = Path(args.out) if args.out else data / "eurosat_rgb" / "calibration.json"
    write_text_atomic(out, json.dumps(cal.to_dict(), indent=2) + "\n")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

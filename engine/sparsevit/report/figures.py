"""PNG figures with Pillow: RGB renderings of S2, colourised class maps, grids with a legend.

Pillow rather than matplotlib: it is already needed, it is small, and these figures are plain
image mosaics with labels, where pixel-exact class colours matter more than axes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..io.atomic import atomic_path


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def rgb_image(s2: np.ndarray, band_names: Sequence[str], rgb: Sequence[str] = ("B04", "B03", "B02"),
              valid: np.ndarray | None = None, percentiles: tuple[float, float] = (2, 98)) -> np.ndarray:
    """True-colour uint8 [H,W,3] with a per-image percentile stretch (robust to clouds/water)."""
    idx = [list(band_names).index(b) for b in rgb]
    img = np.moveaxis(np.asarray(s2, dtype=np.float32)[idx], 0, -1)
    mask = np.isfinite(img).all(-1) if valid is None else (valid & np.isfinite(img).all(-1))
    out = np.zeros(img.shape, np.uint8)
    if not mask.any():
        return out
    lo, hi = np.percentile(img[mask], percentiles)
    scaled = np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1)
    out[mask] = (scaled[mask] * 255).round().astype(np.uint8)
    return out


def palette_lut(colors: Sequence[str], values: Sequence[int] | None = None,
                ignore_rgb: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """256x3 lookup table: class value (or index when ``values`` is None) -> RGB."""
    lut = np.tile(np.array(ignore_rgb, np.uint8), (256, 1))
    keys = range(len(colors)) if values is None else values
    for k, c in zip(keys, colors):
        lut[int(k)] = (int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16))
    return lut


def colorize(labels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    return lut[np.asarray(labels, dtype=np.uint8)]


def grid_png(path: str | Path, rows: Sequence[Sequence[np.ndarray]], column_titles: Sequence[str],
             legend: Sequence[tuple[str, str]] = (), row_titles: Sequence[str] | None = None,
             cell: int = 192, title: str | None = None,
             legends: Sequence[tuple[str, Sequence[tuple[str, str]]]] = ()) -> Path:
    """Save a grid of uint8 [H,W,3] (or [H,W] grey) images with titles and a class legend.

    ``legend`` is a list of (name, '#rrggbb'); ``legends`` adds titled legends below it, one
    block each (e.g. two class levels). Written atomically.
    """
    font, small = _font(14), _font(12)
    pad, head = 6, 22
    left = 0 if not row_titles else 110
    top = head + (24 if title else 0)
    ncol = max(len(r) for r in rows) if rows else 0
    legend_cols = max(1, (left + ncol * (cell + pad)) // 170)
    blocks = ([(None, list(legend))] if legend else []) + [(t, list(e)) for t, e in legends if e]
    block_rows = [(1 if t else 0) + (len(e) + legend_cols - 1) // legend_cols for t, e in blocks]
    legend_rows = sum(block_rows)
    width = left + ncol * (cell + pad) + pad
    height = (top + len(rows) * (cell + pad) + pad + legend_rows * 20
              + (10 * len(blocks) if blocks else 0))
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((pad, 4), title, fill="black", font=font)
    for j, name in enumerate(column_titles):
        draw.text((left + pad + j * (cell + pad), top - head + 4), name, fill="black", font=small)
    for i, row in enumerate(rows):
        y = top + i * (cell + pad)
        if row_titles:
            draw.text((pad, y + cell // 2 - 7), str(row_titles[i])[:16], fill="black", font=small)
        for j, arr in enumerate(row):
            if arr is None:
                continue
            im = Image.fromarray(np.asarray(arr, np.uint8)).convert("RGB")
            im = im.resize((cell, cell), Image.NEAREST)  # nearest: class colours stay exact
            canvas.paste(im, (left + pad + j * (cell + pad), y))
    y0 = top + len(rows) * (cell + pad) + pad
    for (block_title, entries), n_rows in zip(blocks, block_rows):
        if block_title:
            draw.text((pad, y0 + 2), block_title, fill="black", font=small)
            y0 += 20
        for k, (name, color) in enumerate(entries):
            r, c = divmod(k, legend_cols)
            x, y = pad + c * 170, y0 + r * 20
            draw.rectangle([x, y + 2, x + 14, y + 16], fill=color, outline="black")
            draw.text((x + 20, y + 2), name[:22], fill="black", font=small)
        y0 += (n_rows - (1 if block_title else 0)) * 20 + 10
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return Path(path)

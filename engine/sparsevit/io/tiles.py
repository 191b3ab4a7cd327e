"""Overlapping tiles over a grid of any size, read one at a time (memory bounded).

Soft blending of the overlaps lives in :mod:`sparsevit.predict.blend`.

Each :class:`Tile` has the window it reads (``window``, with overlap) and the window it owns
(``core``): cores partition the grid exactly, cutting every overlap in the middle, so a
predictor can write ``tile.crop(pred)`` to ``tile.core`` and never needs the whole raster.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window


@dataclass(frozen=True)
class Tile:
    row: int
    col: int
    window: Window  # what is read (grid pixel coordinates)
    core: Window  # what this tile owns in the output

    @property
    def core_slices(self) -> tuple[slice, slice]:
        """Slices of a tile-shaped array that cover :attr:`core`."""
        r0 = int(self.core.row_off - self.window.row_off)
        c0 = int(self.core.col_off - self.window.col_off)
        return (slice(r0, r0 + int(self.core.height)), slice(c0, c0 + int(self.core.width)))

    def crop(self, array: np.ndarray) -> np.ndarray:
        """The core part of a [..., H, W] array read or predicted for this tile."""
        rs, cs = self.core_slices
        return array[..., rs, cs]


def _starts(length: int, size: int, stride: int) -> list[int]:
    if length <= size:
        return [0]
    starts = list(range(0, length - size, stride))
    starts.append(length - size)  # the last tile is shifted back so every tile is full size
    return sorted(set(starts))


def _cores(starts: list[int], size: int, length: int) -> list[tuple[int, int]]:
    ends = [min(s + size, length) for s in starts]
    bounds = [0] + [(starts[i] + ends[i - 1]) // 2 for i in range(1, len(starts))] + [length]
    return [(bounds[i], bounds[i + 1]) for i in range(len(starts))]


def tile_windows(width: int, height: int, size: int, overlap: int = 0) -> list[Tile]:
    """Tiles of ``size`` x ``size`` (smaller only when the grid is) overlapping by >= ``overlap``."""
    if size <= 0 or overlap < 0 or overlap >= size:
        raise ValueError(f"need size > overlap >= 0 (size={size}, overlap={overlap})")
    stride = size - overlap
    rows, cols = _starts(height, size, stride), _starts(width, size, stride)
    rcores, ccores = _cores(rows, size, height), _cores(cols, size, width)
    tiles = []
    for i, (r, (rc0, rc1)) in enumerate(zip(rows, rcores)):
        for j, (c, (cc0, cc1)) in enumerate(zip(cols, ccores)):
            tiles.append(Tile(i, j, Window(c, r, min(size, width - c), min(size, height - r)),
                              Window(cc0, rc0, cc1 - cc0, rc1 - rc0)))
    return tiles

import numpy as np
import pytest
from rasterio.windows import Window

from sparsevit.io.tiles import tile_windows


@pytest.mark.parametrize("w,h,size,overlap", [(1000, 700, 256, 32), (256, 256, 256, 0),
                                              (100, 50, 256, 16), (513, 300, 128, 64)])
def test_cores_partition_grid_and_windows_cover_them(w, h, size, overlap):
    tiles = tile_windows(w, h, size, overlap)
    seen = np.zeros((h, w), np.int32)
    for t in tiles:
        win = t.window
        assert win.width <= size and win.height <= size
        assert win.col_off >= 0 and win.col_off + win.width <= w
        assert win.row_off + win.height <= h
        # every tile is full size unless the grid is smaller than a tile
        assert win.width == min(size, w) and win.height == min(size, h)
        rs, cs = t.core_slices
        assert rs.start >= 0 and rs.stop <= win.height and cs.stop <= win.width
        seen[int(t.core.row_off):int(t.core.row_off + t.core.height),
             int(t.core.col_off):int(t.core.col_off + t.core.width)] += 1
    assert (seen == 1).all()


def test_overlap_is_respected_between_neighbours():
    tiles = tile_windows(1000, 256, 256, 48)
    cols = sorted({int(t.window.col_off) for t in tiles})
    ends = [c + 256 for c in cols]
    assert all(ends[i] - cols[i + 1] >= 48 for i in range(len(cols) - 1))


def test_tile_cores_reassemble_the_raster():
    full = np.arange(300 * 200, dtype=np.float32).reshape(1, 300, 200)

    def reader(win: Window):
        r, c = int(win.row_off), int(win.col_off)
        return full[:, r:r + int(win.height), c:c + int(win.width)], np.ones(full.shape[1:], bool)

    out = np.full(full.shape, -1, np.float32)
    for tile in tile_windows(200, 300, 128, 32):
        data, _ = reader(tile.window)
        core = tile.core
        out[:, int(core.row_off):int(core.row_off + core.height),
            int(core.col_off):int(core.col_off + core.width)] = tile.crop(data)
    assert np.array_equal(out, full)


def test_bad_tile_arguments():
    with pytest.raises(ValueError):
        tile_windows(10, 10, 64, 64)

"""The per-pixel multiple-instance sharpening learns pixel labels from tile tags alone."""
from __future__ import annotations

import numpy as np
from fixtures.fit_scenes import SCHEME, river_scene

from sparsevit.fit.labels import TileTag
from sparsevit.fit.spectral import spectral_refine
from sparsevit.fit.tiles import TaggedTiles
from sparsevit.io.scene import open_s2
from sparsevit.schemes import scheme_from_dict
from sparsevit.training.normalization import Normalizer


def _tiles(tmp_path):
    raster, truth = river_scene(tmp_path / "s.tif")
    scheme = scheme_from_dict(SCHEME)
    tags = []
    for r in range(0, 128, 32):
        for c in range(0, 128, 32):
            cell = truth[r:r + 32, c:c + 32]
            labels = np.array([np.mean(cell == 0) >= 0.05, np.mean(cell == 1) >= 0.05], np.float32)
            tags.append(TileTag(0, r, c, 32, labels, f"r0_{r}_{c}"))
    with open_s2(raster) as sc:
        tiles = TaggedTiles([sc], tags, sc.band_names, scheme)
    return tiles, truth


def test_tags_alone_recover_the_river_pixels(tmp_path):
    tiles, truth = _tiles(tmp_path)
    norm = Normalizer(mode="dataset_stats", mean=[1500.0] * 12, std=[1000.0] * 12)
    # the attention mask of a mixed tile: a blob that gets the river's edge wrong
    blobs = {}
    for t in tiles.tags:
        m = np.full((32, 32), int(np.argmax(t.labels)), np.uint8)
        if t.labels.sum() == 2:
            m[:, :16], m[:, 16:] = 0, 1
        blobs[t.id] = m
    sharp, report = spectral_refine(tiles, blobs, norm, seed=0, steps=200, warmup=50)

    def accuracy(masks):
        return np.mean([np.mean(masks[t.id] == truth[t.row:t.row + 32, t.col:t.col + 32]) for t in tiles.tags])

    assert accuracy(blobs) < 0.9
    assert accuracy(sharp) > 0.97, report
    # a tile tagged land only never gets water
    land_only = [t for t in tiles.tags if t.labels.tolist() == [0.0, 1.0]]
    assert land_only and all((sharp[t.id] == 1).all() for t in land_only)


def test_sharpening_is_seeded(tmp_path):
    tiles, _ = _tiles(tmp_path)
    norm = Normalizer(mode="dataset_stats", mean=[1500.0] * 12, std=[1000.0] * 12)
    blobs = {t.id: np.full((32, 32), int(np.argmax(t.labels)), np.uint8) for t in tiles.tags}
    a, _ = spectral_refine(tiles, blobs, norm, seed=3, steps=60, warmup=20)
    b, _ = spectral_refine(tiles, blobs, norm, seed=3, steps=60, warmup=20)
    assert all((a[k] == b[k]).all() for k in a)

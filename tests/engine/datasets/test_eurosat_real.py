"""Scenes from every real EuroSAT patch: split, band subsets, determinism."""
from __future__ import annotations

import numpy as np
import pytest

from sparsevit.bands import S2_BANDS_NO_CIRRUS
from sparsevit.datasets.eurosat_real import RGB_BANDS, RealPatchScenes, ms_patches


@pytest.fixture(scope="module")
def train(data_dir):
    return RealPatchScenes(data_dir, "train", num_scenes=60, size=128, seed=3)


def test_split_keeps_every_patch_and_its_rgb_twin_on_one_side(data_dir, train):
    test = {n for n, _, _ in ms_patches(data_dir, "test")}
    tr = {n for n, _, _ in ms_patches(data_dir, "train")}
    assert len(test) == 113 and len(tr) == 356 and not test & tr
    assert not train.source_names & test          # neither MS nor RGB patches of the test set
    assert len(train.source_names) > 26000        # the RGB set is in


def test_scenes_are_deterministic_and_change_with_the_epoch(train):
    a, b = train[5], train[5]
    assert np.array_equal(np.nan_to_num(a.s2, nan=-1), np.nan_to_num(b.s2, nan=-1))
    train.set_epoch(1)
    c = train[5]
    train.set_epoch(0)
    assert not np.array_equal(np.nan_to_num(a.s2, nan=-1), np.nan_to_num(c.s2, nan=-1))


def test_band_subsets_always_hold_rgb_and_missing_bands_are_nan(train):
    counts = set()
    for i in range(len(train)):
        s = train[i]
        present = ~np.isnan(s.s2).all(axis=(1, 2))
        assert not np.isnan(s.s2[present]).any()   # a present band has every pixel
        assert all(present[S2_BANDS_NO_CIRRUS.index(b)] for b in RGB_BANDS)
        counts.add(int(present.sum()))
        assert s.s2.shape == (12, 128, 128) and s.mask.shape == (128, 128)
        np.testing.assert_array_equal(s.labels > 0, np.bincount(s.mask.ravel(), minlength=10)[:10] > 0)
    assert 3 in counts and 12 in counts and len(counts) >= 3


def test_test_scenes_have_every_band_and_no_augmentation(data_dir):
    t = RealPatchScenes(data_dir, "test", num_scenes=4, size=256)
    for i in range(4):
        s = t[i]
        assert not np.isnan(s.s2).any()
        # unaugmented MS scenes hold the patches' own digital numbers
        assert s.s2.max() > 100 and np.allclose(s.s2, np.round(s.s2))
    rgb = RealPatchScenes(data_dir, "test", num_scenes=2, size=256, bands=RGB_BANDS)
    present = ~np.isnan(rgb[0].s2).all(axis=(1, 2))
    assert [b for b, p in zip(S2_BANDS_NO_CIRRUS, present) if p] == list(RGB_BANDS)

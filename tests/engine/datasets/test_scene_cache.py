"""CachedScenes: each scene made once, kept as uint16 DN, absent bands still absent."""
from __future__ import annotations

import numpy as np

from sparsevit.datasets.base import Sample
from sparsevit.datasets.cache import CachedScenes


class _Counting:
    s2_bands = ("B02", "B03", "B04")
    scheme = "a scheme"

    def __init__(self):
        self.made = []

    def __len__(self):
        return 3

    def __getitem__(self, i):
        self.made.append(i)
        rng = np.random.default_rng(i)
        s2 = rng.uniform(0, 12000, (3, 8, 8)).astype(np.float32)
        if i == 1:
            s2[2] = np.nan  # a dropped band
        return Sample(s2=s2, s1=None, labels=np.array([1.0, 0.0], np.float32),
                      mask=np.full((8, 8), i, np.uint8), id=f"scene{i}")


def test_each_scene_is_made_once_and_read_back_within_half_a_dn():
    src = _Counting()
    cached = CachedScenes(src)
    first = [cached[i] for i in range(3)]
    again = list(cached) + [cached[-1]]
    assert src.made == [0, 1, 2]
    for a, b, i in zip(first, again, range(3)):
        truth = src.__class__()[i]
        np.testing.assert_allclose(a.s2, truth.s2, atol=0.5)
        np.testing.assert_array_equal(a.s2, b.s2)
        assert a.id == f"scene{i}" and (a.mask == i).all() and a.labels.tolist() == [1.0, 0.0]
    assert np.isnan(first[1].s2[2]).all() and np.isfinite(first[1].s2[:2]).all()
    assert cached.s2_bands == ("B02", "B03", "B04") and cached.scheme == "a scheme" and len(cached) == 3
    first[0].s2[:] = 0  # a caller changing its copy does not change the cache
    assert cached[0].s2.max() > 0

import numpy as np
import pytest
import torch

from sparsevit.pseudomasks.assignment import assign_by_matching, assign_by_order, correlation_matrix, predicted_classes
from sparsevit.pseudomasks.maps import binarise_2means, cluster_heads, normalise_max, normalise_minmax, resize_bilinear


@pytest.mark.parametrize("src,dst", [((16, 16), (256, 256)), ((5, 7), (13, 22)), ((16, 16), (16, 16))])
def test_resize_matches_torch_bilinear(src, dst):
    maps = np.random.default_rng(0).random((3,) + src)
    ours = resize_bilinear(maps, dst)
    ref = torch.nn.functional.interpolate(torch.from_numpy(maps)[None], size=dst, mode="bilinear",
                                          align_corners=False)[0].numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-10)


def _best_sse(values):
    s = np.sort(values)
    best = np.inf
    for k in range(1, len(s)):
        lo, hi = s[:k], s[k:]
        best = min(best, ((lo - lo.mean()) ** 2).sum() + ((hi - hi.mean()) ** 2).sum())
    return best


def test_binarise_is_the_optimal_two_means_split():
    rng = np.random.default_rng(1)
    maps = np.stack([
        np.concatenate([rng.normal(0, 1, 300), rng.normal(4, 1, 100)]),
        np.concatenate([rng.normal(0, 1, 200), rng.normal(1.5, 2, 200)]),
        rng.random(400) ** 3,
    ])
    fg, fg_mean = binarise_2means(maps)
    for m, f, mu in zip(maps, fg, fg_mean):
        sse = ((m[f] - m[f].mean()) ** 2).sum() + ((m[~f] - m[~f].mean()) ** 2).sum()
        assert sse <= _best_sse(m) * (1 + 1e-3)
        assert mu == pytest.approx(m[f].mean())
        assert m[f].min() > m[~f].max()  # a threshold split, foreground on top


def test_binarise_constant_and_two_valued_maps():
    maps = np.stack([np.full((4, 4), 0.3), np.where(np.eye(4) > 0, 0.9, 0.1)])
    fg, fg_mean = binarise_2means(maps)
    assert not fg[0].any() and fg_mean[0] == pytest.approx(0.3)
    np.testing.assert_array_equal(fg[1], np.eye(4) > 0)
    assert fg_mean[1] == pytest.approx(0.9)


def test_normalisations_never_produce_nan():
    maps = np.stack([np.zeros((3, 3)), -np.ones((3, 3)), np.arange(9.0).reshape(3, 3)])
    nm = normalise_max(maps)
    assert np.isfinite(nm).all()
    assert (nm[:2] == 0).all() and nm[2].max() == 1.0
    mm = normalise_minmax(maps)
    assert (mm[:2] == 0).all() and mm[2].min() == 0 and mm[2].max() == 1


def test_cluster_heads_separates_head_groups():
    rng = np.random.default_rng(0)
    a = np.zeros((8, 8))
    a[:, :4] = 1
    heads = np.stack([a + 0.05 * rng.random((8, 8)) for _ in range(3)]
                     + [1 - a + 0.05 * rng.random((8, 8)) for _ in range(4)])
    maps, assign, info = cluster_heads(heads, 2)
    assert info["n_clusters"] == 2
    assert len(set(assign[:3])) == 1 and len(set(assign[3:])) == 1 and assign[0] != assign[3]
    np.testing.assert_allclose(maps[assign[0]], heads[:3].mean(axis=0))


def test_predicted_classes_order_ties_and_fallback():
    classes, fb = predicted_classes(np.array([0.6, 0.9, 0.6, 0.2]))
    assert classes.tolist() == [1, 0, 2] and fb is None
    classes, fb = predicted_classes(np.array([0.1, 0.4, 0.3]))
    assert classes.tolist() == [1] and fb == "top1"
    with pytest.raises(ValueError):
        predicted_classes(np.array([0.5, np.nan]))


def test_assign_by_order():
    # map 1 strongest -> most probable class 7; map 2 next -> 3; map 0 weakest -> unassigned
    assert assign_by_order(np.array([0.2, 0.9, 0.5]), np.array([7, 3])).tolist() == [-1, 7, 3]
    assert assign_by_order(np.array([0.2, 0.9]), np.array([7, 3, 4])).tolist() == [3, 7]


def test_assign_by_matching_recovers_permutation():
    rng = np.random.default_rng(0)
    ev = rng.random((3, 6, 6))
    perm = np.array([2, 0, 1])
    maps = ev[perm] + 0.1 * rng.random((3, 6, 6))
    classes = np.array([4, 1, 6])
    got, sim = assign_by_matching(maps, ev, classes)
    assert got.tolist() == classes[perm].tolist()
    assert sim.shape == (3, 3)
    # fewer maps than classes: each map still gets its own best class
    got, _ = assign_by_matching(maps[:2], ev, classes)
    assert got.tolist() == classes[perm[:2]].tolist()


def test_correlation_of_constant_map_is_zero():
    c = correlation_matrix(np.stack([np.ones((3, 3)), np.eye(3)]), np.stack([np.eye(3)]))
    assert c[0, 0] == 0.0 and c[1, 0] == pytest.approx(1.0)

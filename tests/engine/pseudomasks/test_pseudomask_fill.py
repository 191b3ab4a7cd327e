import numpy as np
import pytest

from sparsevit.pseudomasks.fill import nearest_fill, nearest_fill_reference, nearest_indices


def _case(seed, shape=(24, 20), frac_unassigned=0.3, n_labels=4):
    rng = np.random.default_rng(seed)
    # blocky labels, like real masks: ties between labels happen only near block borders
    blocks = rng.integers(0, n_labels, (shape[0] // 4, shape[1] // 4))
    labels = np.kron(blocks, np.ones((4, 4), dtype=int))
    assigned = rng.random(shape) >= frac_unassigned
    return labels, assigned


def _min_dist_to_label(shape, labels, assigned):
    """dist[l, y, x]: distance from (y, x) to the nearest assigned pixel labelled l (brute force)."""
    yy, xx = np.indices(shape)
    n = labels.max() + 1
    out = np.full((n,) + shape, np.inf)
    for lab in range(n):
        sy, sx = np.nonzero(assigned & (labels == lab))
        if sy.size:
            d = np.sqrt((yy[..., None] - sy) ** 2 + (xx[..., None] - sx) ** 2)
            out[lab] = d.min(axis=-1)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_transform_fill_agrees_with_per_pixel_search(seed):
    labels, assigned = _case(seed)
    fast = nearest_fill(labels, assigned)
    slow = nearest_fill_reference(labels, assigned)
    np.testing.assert_array_equal(fast[assigned], labels[assigned])
    np.testing.assert_array_equal(slow[assigned], labels[assigned])
    dist = _min_dist_to_label(labels.shape, labels, assigned)
    nearest_any = dist.min(axis=0)
    rows, cols = np.indices(labels.shape)
    # both pick a label whose nearest assigned pixel is at the overall nearest distance
    np.testing.assert_allclose(dist[fast, rows, cols], nearest_any)
    np.testing.assert_allclose(dist[slow, rows, cols], nearest_any)
    # where the nearest label is unique (no tie between labels), the labels are identical
    n_at_min = (np.isclose(dist, nearest_any)).sum(axis=0)
    unique = n_at_min == 1
    assert unique[~assigned].sum() > 0.5 * (~assigned).sum()  # the check is not vacuous
    np.testing.assert_array_equal(fast[unique], slow[unique])


def test_nearest_indices_distance_and_blocks():
    assigned = np.zeros((5, 9), dtype=bool)
    assigned[2, 0] = True
    assigned[2, 8] = True
    labels = np.zeros((5, 9), dtype=int)
    labels[2, 8] = 7
    dist, (iy, ix) = nearest_indices(assigned)
    assert dist[2, 1] == 1 and dist[0, 0] == 2
    assert dist[0, 3] == pytest.approx(np.hypot(2, 3))
    filled = nearest_fill(labels, assigned)
    assert (filled[:, :4] == 0).all() and (filled[:, 5:] == 7).all()


def test_fill_needs_an_assigned_pixel():
    with pytest.raises(ValueError, match="no assigned pixel"):
        nearest_fill(np.zeros((3, 3)), np.zeros((3, 3), dtype=bool))
    with pytest.raises(ValueError, match="no assigned pixel"):
        nearest_fill_reference(np.zeros((3, 3)), np.zeros((3, 3), dtype=bool))

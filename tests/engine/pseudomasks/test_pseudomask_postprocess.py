import json

import numpy as np
import pytest

from sparsevit.pseudomasks import (
    METHODS,
    attention,
    attention_faithful,
    attention_weighted,
    from_class_attention,
    from_class_maps,
    make_pseudomask,
    top1_fill,
)

TOK = 16
SIZE = (64, 64)
UP = SIZE[0] // TOK


def regions():
    """Token-level truth: region A is an L-shaped area, region B the rest."""
    a = np.zeros((TOK, TOK), dtype=bool)
    a[:, :7] = True
    a[10:, 7:12] = True
    return a, ~a


def heads_two_regions(rng, n_sharp=3, n_diffuse=3):
    """Sharp heads on A (foreground mean ~1) and diffuse heads on B (lower foreground mean)."""
    a, b = regions()
    maps = []
    for _ in range(n_sharp):
        maps.append(a * 1.0 + 0.02 * rng.random((TOK, TOK)))
    for _ in range(n_diffuse):
        maps.append(b * rng.uniform(0.35, 1.0, (TOK, TOK)) + 0.05 * rng.random((TOK, TOK)))
    return np.stack(maps)


def iou(mask_a, mask_b):
    return (mask_a & mask_b).sum() / max((mask_a | mask_b).sum(), 1)


def upsample_truth(m):
    return np.kron(m, np.ones((UP, UP), dtype=bool)).astype(bool)


def evidence(cls_a, cls_b, K=6, noise=0.3, seed=1):
    """Per-class evidence maps (as Grad-CAM would give): noisy indicators of the true regions."""
    rng = np.random.default_rng(seed)
    a, b = regions()
    ev = rng.random((K, TOK, TOK)) * noise
    ev[cls_a] += a
    ev[cls_b] += b
    return ev


PROBS = np.array([0.05, 0.2, 0.9, 0.1, 0.3, 0.7])  # predicted: 2 (most probable), 5


# --- n = 0 and n = 1 paths --------------------------------------------------------------------

def _call(method, probs, heads, ev):
    # class-token attention is non-negative like the shares of a softmax row
    return make_pseudomask(method, probs, SIZE, head_maps=heads, class_maps=ev,
                           class_attention=np.abs(ev))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_no_predicted_class_falls_back_to_top1(method):
    probs = np.array([0.1, 0.3, 0.45, 0.2, 0.0, 0.1])
    heads = heads_two_regions(np.random.default_rng(0))
    pm = _call(method, probs, heads, evidence(2, 5))
    assert pm.labels.shape == SIZE
    assert (pm.labels == 2).all()
    assert not pm.uncertain.any()
    if method != "top1_fill":
        assert pm.info["fallback"] == "top1"
        assert pm.info["n_predicted"] == 0
    json.dumps(pm.info)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_one_predicted_class_covers_image(method):
    probs = np.array([0.1, 0.3, 0.2, 0.2, 0.8, 0.1])
    pm = _call(method, probs, heads_two_regions(np.random.default_rng(0)), evidence(2, 5))
    assert (pm.labels == 4).all()
    assert pm.info["fallback"] is None
    assert not pm.uncertain.any()
    np.testing.assert_allclose(pm.confidence, 0.8, rtol=1e-6)


# --- n >= 2: the faithful rule ------------------------------------------------------------------

def test_faithful_recovers_two_regions_when_order_agrees():
    # A has the sharper attention (higher foreground mean) and is the most probable class 2
    heads = heads_two_regions(np.random.default_rng(0))
    pm = attention_faithful(heads, PROBS, SIZE)
    a, b = (upsample_truth(r) for r in regions())
    assert pm.info["n_clusters"] == 2
    assert pm.info["predicted_classes"] == [2, 5]
    assert iou(pm.labels == 2, a) > 0.9
    assert iou(pm.labels == 5, b) > 0.9
    assert pm.labels.dtype == np.uint8
    assert pm.confidence.dtype == np.float32
    assert 0.0 <= pm.confidence.min() and pm.confidence.max() <= 1.0
    json.dumps(pm.info)


def test_uncertain_pixels_are_the_filled_ones_and_become_ignore():
    heads = heads_two_regions(np.random.default_rng(0))
    pm = attention_faithful(heads, PROBS, SIZE, min_confidence=0.0)
    assert 0 < pm.uncertain.mean() < 0.5
    assert pm.info["uncertain_fraction"] == pytest.approx(pm.uncertain.mean())
    assert pm.info["assigned_fraction"] == pytest.approx(1 - pm.uncertain.mean())
    ign = pm.with_ignore()
    assert (ign[pm.uncertain] == 255).all()
    assert (ign[~pm.uncertain] == pm.labels[~pm.uncertain]).all()
    # a stricter confidence floor can only add uncertain pixels
    strict = attention_faithful(heads, PROBS, SIZE, min_confidence=0.9)
    assert strict.uncertain.sum() > pm.uncertain.sum()
    assert (strict.uncertain | ~pm.uncertain).all()


def test_deterministic_for_same_input():
    heads = np.random.default_rng(3).random((9, TOK, TOK))
    probs = np.array([0.6, 0.9, 0.55, 0.1])
    one = attention_faithful(heads, probs, SIZE)
    two = attention_faithful(heads.copy(), probs.copy(), SIZE)
    np.testing.assert_array_equal(one.labels, two.labels)
    np.testing.assert_array_equal(one.confidence, two.confidence)
    np.testing.assert_array_equal(one.uncertain, two.uncertain)
    assert one.info == two.info
    assert one.info["n_clusters"] == 3


def test_fewer_heads_than_labels_uses_fewer_clusters():
    probs = np.array([0.9, 0.8, 0.7, 0.1])
    heads = heads_two_regions(np.random.default_rng(0), n_sharp=1, n_diffuse=1)
    pm = attention_faithful(heads, probs, SIZE)
    assert pm.info["n_clusters_requested"] == 3
    assert pm.info["n_clusters"] == 2
    assert pm.info["unassigned_classes"] == [2]  # the least probable class gets no cluster
    assert set(np.unique(pm.labels)) == {0, 1}

    one = attention_faithful(heads[:1], probs, SIZE)  # a single head: the trivial map
    assert one.info["n_clusters"] == 1
    assert (one.labels == 0).all()
    assert sorted(one.info["unassigned_classes"]) == [1, 2]


def test_identical_heads_count_as_one_cluster():
    head = heads_two_regions(np.random.default_rng(0))[0]
    pm = attention_faithful(np.stack([head] * 4), PROBS, SIZE)
    assert pm.info["n_distinct_heads"] == 1
    assert pm.info["n_clusters"] == 1


def test_no_open_head_falls_back_to_top1_all_uncertain():
    pm = attention_faithful(np.zeros((0, TOK, TOK)), PROBS, SIZE)
    assert (pm.labels == 2).all()
    assert pm.uncertain.all()
    assert pm.info["fallback"] == "top1_nothing_assigned"


# --- n >= 2: matching against class evidence ------------------------------------------------------

def test_matching_fixes_the_swap_the_ordering_rule_makes():
    # truth: the sharp region A is class 5 (the LESS probable one); ordering gives A class 2
    heads = heads_two_regions(np.random.default_rng(0))
    a, b = (upsample_truth(r) for r in regions())
    ev = evidence(cls_a=5, cls_b=2)
    faithful = attention_faithful(heads, PROBS, SIZE)
    assert iou(faithful.labels == 5, a) < 0.1  # swapped
    for mode in ("clusters", "heads"):
        pm = attention(heads, PROBS, ev, SIZE, mode=mode)
        assert iou(pm.labels == 5, a) > 0.9, mode
        assert iou(pm.labels == 2, b) > 0.9, mode
        assert pm.info["mode"] == mode
        json.dumps(pm.info)
    # and the matching agrees with the ordering when the ordering was right
    agree = attention(heads, PROBS, evidence(cls_a=2, cls_b=5), SIZE)
    np.testing.assert_array_equal(agree.labels, faithful.labels)


def test_matching_with_fewer_heads_than_labels_keeps_best_fitting_classes():
    probs = np.array([0.9, 0.8, 0.7, 0.1, 0.1, 0.1])
    heads = heads_two_regions(np.random.default_rng(0), n_sharp=1, n_diffuse=1)
    ev = evidence(cls_a=2, cls_b=1)  # the least probable predicted class 2 is region A
    pm = attention(heads, probs, ev, SIZE, mode="heads")
    a, _ = (upsample_truth(r) for r in regions())
    assert iou(pm.labels == 2, a) > 0.9
    assert pm.info["unassigned_classes"] == [0]


def test_weighted_variant_recovers_regions_and_marks_boundary_uncertain():
    heads = heads_two_regions(np.random.default_rng(0))
    a, b = (upsample_truth(r) for r in regions())
    pm = attention_weighted(heads, PROBS, evidence(cls_a=5, cls_b=2), SIZE, margin=0.2)
    assert iou(pm.labels == 5, a) > 0.9
    assert iou(pm.labels == 2, b) > 0.9
    assert 0 < pm.uncertain.mean() < 0.3
    # uncertain pixels hug the A/B boundary: distance from it is small
    from scipy import ndimage
    edge = a ^ ndimage.binary_erosion(a)
    dist = ndimage.distance_transform_edt(~edge)
    assert np.median(dist[pm.uncertain]) <= UP
    assert np.all(pm.confidence[pm.uncertain] < 0.2)


def test_class_maps_at_other_resolution_are_resized():
    heads = heads_two_regions(np.random.default_rng(0))
    ev = evidence(cls_a=5, cls_b=2)
    coarse = ev.reshape(6, 8, 2, 8, 2).mean(axis=(2, 4))
    pm = attention(heads, PROBS, coarse, SIZE)
    a, _ = (upsample_truth(r) for r in regions())
    assert iou(pm.labels == 5, a) > 0.9


def test_from_class_maps_and_top1_fill():
    ev = evidence(cls_a=5, cls_b=2, noise=0.1)
    a, b = (upsample_truth(r) for r in regions())
    pm = from_class_maps(ev, PROBS, SIZE)
    assert iou(pm.labels == 5, a) > 0.85
    assert iou(pm.labels == 2, b) > 0.85
    assert pm.info["method"] == "gradcam"
    # negative evidence is clipped away (Grad-CAM ReLU): class 5 never wins where it is < 0
    ev2 = ev.copy()
    ev2[5] = -ev2[5]
    assert (from_class_maps(ev2, PROBS, SIZE).labels == 2).mean() > 0.9
    t = top1_fill(PROBS, SIZE)
    assert (t.labels == 2).all() and t.info["method"] == "top1_fill"


def test_bad_inputs_are_rejected():
    heads = heads_two_regions(np.random.default_rng(0))
    with pytest.raises(ValueError, match="needs class_maps"):
        make_pseudomask("attention", PROBS, SIZE, head_maps=heads)
    with pytest.raises(ValueError, match="needs class_attention"):
        make_pseudomask("attention_class_tokens", PROBS, SIZE, head_maps=heads)
    with pytest.raises(ValueError, match="unknown pseudomask method"):
        make_pseudomask("nope", PROBS, SIZE)
    with pytest.raises(ValueError, match="one per class"):
        attention(heads, PROBS, np.zeros((3, TOK, TOK)), SIZE)
    with pytest.raises(ValueError, match="NaN"):
        attention_faithful(np.full((2, TOK, TOK), np.nan), PROBS, SIZE)
    with pytest.raises(ValueError, match="size"):
        attention_faithful(heads, PROBS, (0, 64))


def test_weighted_uses_own_evidence_when_no_head_fits():
    # only heads on region A: class 5's evidence (region B) correlates negatively with all
    heads = heads_two_regions(np.random.default_rng(0), n_sharp=3, n_diffuse=0)
    pm = attention_weighted(heads, PROBS, evidence(cls_a=2, cls_b=5), SIZE)
    assert pm.info["classes_from_own_evidence"] == [5]
    _, b = (upsample_truth(r) for r in regions())
    assert iou(pm.labels == 5, b) > 0.85


def test_many_classes_use_wider_labels_and_ignore_stays_distinct():
    probs = np.zeros(300)
    probs[[256, 7]] = [0.9, 0.8]
    heads = heads_two_regions(np.random.default_rng(0))
    pm = attention_faithful(heads, probs, SIZE)
    assert pm.labels.dtype == np.int32
    assert set(np.unique(pm.labels)) == {7, 256}
    assert 255 not in set(np.unique(pm.labels))


def test_class_attention_recovers_regions_of_unequal_strength():
    # class 5's token attends diffusely (low values), class 2's sharply: per-class max
    # normalisation still gives each its own region
    a, b = regions()
    att = np.zeros((6, TOK, TOK))
    att[2][a] = 0.02
    att[5][b] = 0.002
    att += np.random.default_rng(1).random(att.shape) * 1e-4
    pm = from_class_attention(att, PROBS, SIZE)
    ta, tb = (upsample_truth(r) for r in regions())
    assert (pm.labels[ta] == 2).mean() > 0.95 and (pm.labels[tb] == 5).mean() > 0.95
    assert pm.info["method"] == "attention_class_tokens"
    assert set(pm.info["classes_present"]) == {2, 5}


def test_class_attention_fused_with_a_cam_and_the_cam_alone_control():
    a, b = regions()
    att = np.full((6, TOK, TOK), 1e-3)  # attention says nothing useful
    cam = np.zeros((6, TOK, TOK))
    cam[2][a], cam[5][b] = 1.0, 1.0  # the CAM knows the regions
    ta, tb = (upsample_truth(r) for r in regions())
    for power in (1.0, 0.0):
        pm = from_class_attention(att, PROBS, SIZE, class_maps=cam, attention_power=power)
        assert (pm.labels[ta] == 2).mean() > 0.95 and (pm.labels[tb] == 5).mean() > 0.95
        assert pm.info["fused_with_cam"] and pm.info["attention_power"] == power
    unfused = from_class_attention(att, PROBS, SIZE, class_maps=cam, fuse=False)
    assert not unfused.info["fused_with_cam"]

import json
import math

import numpy as np
import pytest

from sparsevit.evaluation import ConfusionMatrix, EvaluationSet, json_sanitize

TARGET = np.array([0, 0, 0, 1, 1, 2, 255, 2])
PRED = np.array([0, 0, 1, 1, 0, 2, 1, 255])


def test_scores_match_hand_computed_matrix():
    cm = ConfusionMatrix(3).update(PRED, TARGET)
    # the pixel with target 255 is not scored; pred 255 on target 2 is an unpredicted miss
    assert cm.matrix.tolist() == [[2, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]]
    s = cm.scores()
    assert s["pixels"] == 7 and s["unpredicted_pixels"] == 1
    pc = s["per_class"]
    assert pc["iou"] == pytest.approx([2 / 4, 1 / 3, 1 / 2])
    assert s["miou"] == pytest.approx((2 / 4 + 1 / 3 + 1 / 2) / 3)
    assert s["overall_accuracy"] == pytest.approx(4 / 7)
    assert pc["recall"] == pytest.approx([2 / 3, 1 / 2, 1 / 2])
    assert s["average_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1 / 2) / 3)
    assert pc["precision"] == pytest.approx([2 / 3, 1 / 2, 1.0])
    assert pc["f1"] == pytest.approx([4 / 6, 2 / 4, 2 / 3])
    assert pc["support"] == [3, 2, 2] and pc["predicted"] == [3, 2, 1]
    assert s["confusion_matrix"] == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert s["unpredicted_per_class"] == [0, 0, 1]


def test_absent_classes_are_nan_and_excluded_from_means():
    # class 1 absent from both; class 2 only predicted (recall undefined, IoU 0)
    cm = ConfusionMatrix(3, class_names=["a", "b", "c"]).update(np.array([0, 2]), np.array([0, 0]))
    s = cm.scores()
    iou = s["per_class"]["iou"]
    assert iou[0] == pytest.approx(0.5) and math.isnan(iou[1]) and iou[2] == 0.0
    assert s["miou"] == pytest.approx(0.25)
    assert math.isnan(s["per_class"]["recall"][2])
    assert s["average_accuracy"] == pytest.approx(0.5)
    assert s["classes_scored"] == 2
    safe = cm.scores(json_safe=True)
    assert safe["per_class"]["iou"][1] is None and safe["class_names"] == ["a", "b", "c"]
    json.dumps(safe, allow_nan=False)


def test_empty_matrix_scores_are_nan_not_errors():
    s = ConfusionMatrix(2).update(np.array([1, 1]), np.array([255, 255])).scores(json_safe=True)
    assert s["pixels"] == 0 and s["miou"] is None and s["overall_accuracy"] is None


def test_merge_equals_single_update_and_2d_inputs():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 5, (2, 30, 30))
    t[0, :3] = 255
    p = rng.integers(0, 6, (2, 30, 30))
    a = ConfusionMatrix(5).update(p[0], t[0])
    b = ConfusionMatrix(5).update(p[1], t[1])
    whole = ConfusionMatrix(5).update(p, t)
    assert (a.copy().merge(b).matrix == whole.matrix).all()
    # independent count of the diagonal
    valid = t != 255
    assert np.trace(whole.matrix[:, :5]) == ((p == t) & valid).sum()
    assert whole.total == valid.sum()
    with pytest.raises(ValueError):
        a.merge(ConfusionMatrix(4))


def test_bad_targets_and_shapes_are_rejected():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="outside 0..2"):
        cm.update(np.array([0, 1]), np.array([0, 7]))
    with pytest.raises(ValueError, match="shape"):
        cm.update(np.array([0, 1]), np.array([0]))
    assert cm.total == 0


def test_evaluation_set_counts_every_image():
    ev = EvaluationSet(2)
    ev.add("a", np.array([0, 1]), np.array([0, 1]))
    ev.add("b", np.array([1, 1]), np.array([0, 1]), info={"fallback": "top1"})
    ev.add_failure("c", "no attention", target=np.array([0, 0, 255]))
    ev.add_failure("d", "crashed")
    with pytest.raises(ValueError, match="already"):
        ev.add("a", np.array([0]), np.array([0]))
    out = ev.summary(per_image=True)
    assert out["counts"] == {"images": 4, "ok": 1, "fallback": 1, "failed": 2}
    assert out["fallback_ids"] == ["b"]
    assert [r["id"] for r in out["failed"]] == ["c", "d"]
    s = out["scores"]
    # the failed image's two scored pixels count as misses of class 0
    assert s["pixels"] == 6 and s["unpredicted_pixels"] == 2
    assert s["overall_accuracy"] == pytest.approx(3 / 6)
    assert s["per_class"]["recall"][0] == pytest.approx(1 / 4)
    json.dumps(out, allow_nan=False)


def test_json_sanitize_handles_numpy():
    out = json_sanitize({"a": np.float32(np.nan), "b": np.arange(2), "c": (np.int64(3), float("inf"))})
    assert out == {"a": None, "b": [0, 1], "c": [3, None]}

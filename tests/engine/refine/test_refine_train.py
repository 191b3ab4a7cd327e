import numpy as np
import pytest
import torch

from sparsevit.refine.segmenter import build_segmenter, predict_logits_padded
from sparsevit.refine.train import IGNORE, SegTrainConfig, predict_segmenter, train_segmenter


class Halves(torch.utils.data.Dataset):
    """Left half class 0, right half class 1, the image says which is which (band 0 sign)."""

    def __init__(self, n=16, size=32, ignore_rows=0):
        self.n, self.size, self.ignore_rows = n, size, ignore_rows

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        x = torch.randn(4, self.size, self.size, generator=g) * 0.1
        y = torch.zeros(self.size, self.size, dtype=torch.long)
        y[:, self.size // 2:] = 1
        x[0] += (y * 2 - 1).float()
        if self.ignore_rows:
            y[: self.ignore_rows] = IGNORE
        return x, y


def test_unet_learns_a_trivial_split_and_is_reproducible():
    torch.set_num_threads(2)
    cfg = SegTrainConfig(epochs=6, batch_size=8, lr=3e-3, seed=3)
    m1 = build_segmenter("unet-r18-small", 4, 2)
    torch.manual_seed(0)
    m2 = build_segmenter("unet-r18-small", 4, 2)
    m2.load_state_dict(m1.state_dict())
    h1 = train_segmenter(m1, Halves(ignore_rows=4), cfg)
    h2 = train_segmenter(m2, Halves(ignore_rows=4), cfg)
    assert h1["loss"] == h2["loss"]  # same seed, same data -> identical run
    assert h1["loss"][-1] < h1["loss"][0]
    x, y = Halves(n=1)[0]
    lab, conf = next(predict_segmenter(m1, [x]))
    assert lab.dtype == np.uint8 and conf.shape == (32, 32)
    assert (lab == y.numpy()).mean() > 0.9


def test_all_ignore_batches_are_skipped_not_nan():
    m = build_segmenter("unet-r18-small", 4, 2)
    h = train_segmenter(m, Halves(n=4, ignore_rows=32), SegTrainConfig(epochs=1, batch_size=4))
    assert h["skipped_batches"] == 1 and h["images"] == 0


def test_padded_prediction_handles_odd_window_sizes():
    m = build_segmenter("unet-r18-small", 4, 3).eval()
    out = predict_logits_padded(m, torch.randn(1, 4, 37, 50))
    assert out.shape == (1, 3, 37, 50)


def test_unknown_segmenter_is_a_clear_error():
    from sparsevit.errors import InputError
    with pytest.raises(InputError, match="unknown segmenter"):
        build_segmenter("nope", 4, 2)


def test_balanced_weights_favour_rare_classes_and_skip_absent_ones():
    from sparsevit.refine.train import balanced_class_weights, label_counts
    w = balanced_class_weights(np.array([900, 100, 0, 1000]))
    assert w[2] == 0 and w[1] > w[0] > w[3] * 0.99 and float(w.max()) <= 5.0
    counts = label_counts(Halves(n=2, size=8, ignore_rows=2))  # generic path: iterate the data
    assert counts.tolist() == [2 * 6 * 4, 2 * 6 * 4]


def test_balanced_training_records_its_weights():
    m = build_segmenter("unet-r18-small", 4, 2)
    h = train_segmenter(m, Halves(n=4), SegTrainConfig(epochs=1, batch_size=4, class_weighting="balanced"))
    assert h["class_weights"] == [1.0, 1.0]
    with pytest.raises(ValueError, match="class_weighting"):
        train_segmenter(m, Halves(n=4), SegTrainConfig(epochs=1, class_weighting="inverse"))

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


class FixedLogits(torch.nn.Module):
    """Per-pixel logits read straight from the input channels: channel c = class c's logit."""

    def forward(self, x):
        return x


def test_allowed_classes_restrict_and_renormalise_the_prediction():
    x = torch.zeros(3, 32, 32)
    x[0], x[1], x[2] = 3.0, 1.0, 0.0  # class 0 wins everywhere
    x[2, :, 16:] = 5.0  # ... except on the right, where class 2 wins
    lab, conf = next(predict_segmenter(FixedLogits(), [x]))
    assert set(np.unique(lab)) == {0, 2}
    allowed = np.array([False, True, True])
    lab_r, conf_r = next(predict_segmenter(FixedLogits(), [x], allowed=[allowed]))
    assert (lab_r[:, :16] == 1).all() and (lab_r[:, 16:] == 2).all()
    # softmax over {1, 2} only: on the left 1 vs 0 logits -> e/(1+e)
    assert np.allclose(conf_r[:, :16], np.e / (1 + np.e), atol=1e-5)
    # an image without labels (None or all False) keeps every class
    lab_n, _ = next(predict_segmenter(FixedLogits(), [x], allowed=[np.zeros(3, bool)]))
    assert np.array_equal(lab_n, lab)


def test_next_iteration_masks_use_each_scenes_image_labels():
    from sparsevit.datasets.base import Sample
    from sparsevit.refine.iterate import segmenter_masks

    class Scenes:
        def __init__(self):
            labels = [np.array([1, 0, 1], np.float32), np.array([0, 1, 0], np.float32),
                      np.zeros(3, np.float32)]
            self.samples = [Sample(s2=np.stack([np.full((16, 16), 2.0), np.zeros((16, 16)),
                                                np.ones((16, 16))]).astype(np.float32),
                                   s1=None, labels=lab, mask=None, id=f"s{i}")
                            for i, lab in enumerate(labels)]

        def __len__(self):
            return len(self.samples)

        def __getitem__(self, i):
            return self.samples[i]

    norm = lambda s2, s1=None: torch.as_tensor(s2)  # noqa: E731
    free = segmenter_masks(FixedLogits(), Scenes(), norm, batch_size=2)
    restricted = segmenter_masks(FixedLogits(), Scenes(), norm, batch_size=2, image_labels=True,
                                 ignore_below=0.6)
    assert all((m == 0).all() for m in free.values())
    assert (restricted["s0"] == 0).all()  # class 0 is among s0's labels
    # s1 is labelled class 1 only: every pixel class 1, confidence 1 (nothing to ignore)
    assert (restricted["s1"] == 1).all()
    # s2 has no labels: unrestricted, class 0 at softmax 0.67 > 0.6 kept
    assert (restricted["s2"] == 0).all()


def test_second_iteration_starts_from_the_first():
    from sparsevit.refine.iterate import RefineConfig, train_on_masks

    class Scenes:
        class scheme:
            num_classes = 2

        def __len__(self):
            return 4

        def __getitem__(self, i):
            from sparsevit.datasets.base import Sample
            x, y = Halves(n=4)[i]
            return Sample(s2=x.numpy(), s1=None, labels=np.ones(2, np.float32),
                          mask=y.numpy().astype(np.uint8), id=f"s{i}")

    norm = lambda s2, s1=None: torch.as_tensor(s2)  # noqa: E731
    cfg = RefineConfig(segmenter="unet-r18-small", crop=None,
                       train=SegTrainConfig(epochs=1, batch_size=4, lr=1e-3, seed=0))
    first, _ = train_on_masks(Scenes(), None, norm, 4, cfg)
    before = {k: v.clone() for k, v in first.state_dict().items()}
    second, hist = train_on_masks(Scenes(), None, norm, 4, cfg, seed_offset=2, init=first)
    assert hist["warm_started"]
    # the first model is untouched; the second moved away from it, not from a fresh init
    assert all(torch.equal(before[k], v) for k, v in first.state_dict().items())
    w = "encoder.conv1.weight"
    delta = (second.state_dict()[w] - before[w]).abs().max()
    fresh, _ = train_on_masks(Scenes(), None, norm, 4, cfg, seed_offset=2)
    assert 0 < delta < (fresh.state_dict()[w] - before[w]).abs().max()

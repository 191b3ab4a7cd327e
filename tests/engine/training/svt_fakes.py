"""A tiny dataset honouring the dataset contract, shared by the training tests."""
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from sparsevit.models import ModelConfig
from sparsevit.training import TrainConfig

BANDS = ("B02", "B03", "B04", "B08")
NAMES = ("water", "forest", "urban")


@dataclass
class FakeSample:
    s2: np.ndarray
    s1: np.ndarray | None
    labels: np.ndarray
    mask: np.ndarray | None
    id: str


class FakeDataset:
    """The dataset contract in miniature: class c paints band c bright in its half/quarter."""

    def __init__(self, n=16, size=32, has_s1=False, seed=0):
        self.n, self.size, self.has_s1, self.seed = n, size, has_s1, seed
        self.s2_bands = BANDS
        self.scheme = SimpleNamespace(name="fake3", names=NAMES, num_classes=3)
        self.epoch = 0
        self.epochs_seen = []

    def set_epoch(self, e):
        self.epoch = e
        self.epochs_seen.append(e)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, self.epoch, i])
        mask = np.zeros((self.size, self.size), np.uint8)
        classes = rng.choice(3, size=int(rng.integers(1, 3)), replace=False)
        mask[:, self.size // 2:] = classes[-1]
        mask[:, :self.size // 2] = classes[0]
        s2 = rng.normal(1000, 100, (4, self.size, self.size)).astype(np.float32)
        for c in range(3):
            s2[c][mask == c] += 3000
        labels = np.zeros(3, np.float32)
        labels[np.unique(mask)] = 1
        s1 = rng.normal(-12, 3, (2, self.size, self.size)).astype(np.float32) if self.has_s1 else None
        return FakeSample(s2, s1, labels, mask, f"fake_{self.epoch}_{i}")


def model_cfg(**kw):
    base = dict(embed_dim=32, depth=2, num_heads=4, mlp_hidden=64, patch_size=8, img_size=32,
                s2_bands=BANDS, num_classes=3, drop_path_rate=0.1)
    base.update(kw)
    return ModelConfig(**base)


def train_cfg(**kw):
    base = dict(epochs=2, batch_size=8, crop=None, seed=3, lambda_l0=0.1, stats_samples=8)
    base.update(kw)
    return TrainConfig(**base)



import numpy as np
import torch

from sparsevit.datasets.base import Sample
from sparsevit.refine.data import MaskedSceneDataset
from sparsevit.training.normalization import Normalizer


class Scenes:
    has_s1 = False

    def __len__(self):
        return 3

    def __getitem__(self, i):
        s2 = np.zeros((2, 16, 16), np.float32)
        s2[0] = np.arange(256).reshape(16, 16)  # band 0 encodes the pixel position
        mask = (np.arange(256).reshape(16, 16) % 7).astype(np.uint8)
        return Sample(s2=s2, s1=None, labels=np.zeros(7, np.float32), mask=mask, id=f"s{i}")


def test_augmentation_keeps_image_and_mask_aligned_and_varies_by_epoch():
    norm = Normalizer(mode="dataset_stats", mean=[0.0, 0.0], std=[1.0, 1.0])
    ds = MaskedSceneDataset(Scenes(), norm, masks=None, crop=8, augment=True, seed=1)
    seen = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        x, y = ds[0]
        assert x.shape == (2, 8, 8) and y.shape == (8, 8)
        assert torch.equal((x[0].long() % 7), y)  # the mask moved exactly with the image
        seen.add(tuple(x[0].flatten()[:4].tolist()))
    assert len(seen) > 1


def test_pseudomasks_replace_true_masks_by_id():
    norm = Normalizer(mode="dataset_stats", mean=[0.0, 0.0], std=[1.0, 1.0])
    fake = {f"s{i}": np.full((16, 16), 255 if i == 1 else i, np.uint8) for i in range(3)}
    ds = MaskedSceneDataset(Scenes(), norm, masks=fake, augment=False)
    assert (ds[2][1] == 2).all() and (ds[1][1] == 255).all()

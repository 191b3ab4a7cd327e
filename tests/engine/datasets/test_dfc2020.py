import numpy as np
import pytest
from fixtures.dfc2020 import mask_with_fractions, write_dfc2020

from sparsevit.datasets import DFC2020Dataset
from sparsevit.errors import InputError

N = 100  # 10000 px: 9% and 11% are exact pixel counts


@pytest.fixture(scope="module")
def dfc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("dfc2020")
    masks = [
        mask_with_fractions(N, [(1, 900), (6, 1100), (10, 8000)]),      # Forest 9%, Crop 11%, Water 80%
        mask_with_fractions(N, [(3, 5000), (4, 600), (7, 4400)]),       # Savanna 50%, Grass 6%, Urban 44%
        mask_with_fractions(N, [(8, 10000)]),                           # Snow/Ice only
    ]
    return write_dfc2020(root, {"validation": masks, "test": masks[:2]})


def _names(ds, sample):
    return ds.scheme.label_names(sample.labels)


def test_labels_10_percent_rule(dfc_root):
    ds = DFC2020Dataset(dfc_root, split="validation")
    assert len(ds) == 3 and ds.scheme.name == "dfc2020_8" and not ds.has_s1
    s = ds[0]
    assert s.id == "ROIs0000_validation_p1"
    assert s.s2.shape == (13, N, N) and s.s2.dtype == np.float32 and s.s1 is None
    assert _names(ds, s) == ["Croplands", "Water"]  # Forest at 9% excluded, Cropland at 11% in
    assert s.mask.dtype == np.uint8
    assert np.bincount(s.mask.ravel(), minlength=256)[[0, 4, 7]].tolist() == [900, 1100, 8000]


def test_8_class_remap_savanna_ignored(dfc_root):
    ds = DFC2020Dataset(dfc_root, split="validation", classes="dfc2020_8")
    s = ds[1]
    assert (s.mask == 255).sum() == 5000  # Savanna -> ignore
    # Grassland is 6% of the patch but 12% of its valid pixels: included
    assert _names(ds, s) == ["Grassland", "Urban"]
    snow = ds[2]
    assert (snow.mask == 255).all() and snow.labels.sum() == 0


def test_10_class_mode(dfc_root):
    ds = DFC2020Dataset(dfc_root, split="validation", classes="dfc2020")
    s = ds[1]
    assert ds.scheme.num_classes == 10 and (s.mask != 255).all()
    assert _names(ds, s) == ["Savanna", "Urban/Built-up"]  # Grassland 6% < 10%
    assert _names(ds, ds[2]) == ["Snow/Ice"]
    assert np.unique(ds[0].mask).tolist() == [0, 5, 9]


def test_s1_modality_and_test_split(dfc_root):
    ds = DFC2020Dataset(dfc_root / "ROIs0000_test", split="test", modalities=("s1", "s2"))
    assert len(ds) == 2 and ds.has_s1
    s = ds[1]
    assert s.s1.shape == (2, N, N) and s.s1.dtype == np.float32
    assert s.s1[0].mean() > s.s1[1].mean()  # VV above VH, in dB
    assert -30 < s.s1.mean() < 0 and s.s2.mean() > 100


def test_layout_errors(tmp_path, dfc_root):
    with pytest.raises(InputError, match="no 'ROIs0000_validation'"):
        DFC2020Dataset(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        DFC2020Dataset(tmp_path / "nope")
    m = mask_with_fractions(8, [(1, 64)])
    root = write_dfc2020(tmp_path / "a", {"validation": [m, m]})
    (root / "ROIs0000_validation" / "dfc_0" / "ROIs0000_validation_dfc_0_p2.tif").unlink()
    with pytest.raises(InputError, match="different patches"):
        DFC2020Dataset(root)
    root = write_dfc2020(tmp_path / "b", {"validation": [m]})
    for f in (root / "ROIs0000_validation" / "s1_0").iterdir():
        f.unlink()
    (root / "ROIs0000_validation" / "s1_0").rmdir()
    assert len(DFC2020Dataset(root)) == 1  # S2 only: S1 not needed
    with pytest.raises(InputError, match="'s1_0' is missing"):
        DFC2020Dataset(root, modalities=("s1", "s2"))
    with pytest.raises(InputError, match="unknown DFC2020 split"):
        DFC2020Dataset(dfc_root, split="train")
    with pytest.raises(IndexError):
        DFC2020Dataset(dfc_root)[3]

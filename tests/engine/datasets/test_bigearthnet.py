import json

import numpy as np
import pytest

from sparsevit.bands import S2_BANDS_NO_CIRRUS
from sparsevit.datasets import BigEarthNetV1Dataset, BigEarthNetV2Dataset
from sparsevit.errors import InputError


def test_v2_reads_all_patches(data_dir):
    root = data_dir / "bigearthnet_v2"
    ds = BigEarthNetV2Dataset(root, modalities=("s1", "s2"))
    meta = json.loads((root / "labels.json").read_text())
    assert len(ds) == len(meta) == 23 and ds.s2_bands == S2_BANDS_NO_CIRRUS and ds.has_s1
    i = ds.ids().index("S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_37_88")
    s = ds[i]
    assert s.s2.shape == (12, 120, 120) and s.s1.shape == (2, 120, 120) and s.mask is None
    # scheme order, whatever order labels.json lists them in
    assert ds.scheme.label_names(s.labels) == ["Pastures", "Broad-leaved forest", "Coniferous forest",
                                               "Mixed forest", "Inland waters"]
    assert s.labels.shape == (19,) and s.labels.sum() == 5
    assert 0 < s.s2.mean() < 10000 and s.s1.max() < 30 and s.s1.mean() < 0  # DN and dB


def test_v2_band_order_and_split(data_dir):
    root = data_dir / "bigearthnet_v2"
    ds = BigEarthNetV2Dataset(root, split="test", bands=("B04", "B08"))
    assert 0 < len(ds) < 23 and all(ds.split_of(i) == "test" for i in range(len(ds)))
    full = BigEarthNetV2Dataset(root)
    j = full.ids().index(ds.ids()[0])
    # B08 sits at index 7 of the canonical no-cirrus order
    assert np.array_equal(ds[0].s2, full[j].s2[[3, 7]])
    assert ds[0].s1 is None
    with pytest.raises(InputError, match="no B10"):
        BigEarthNetV2Dataset(root, bands=("B10",))


def test_v1_resamples_and_maps_labels(data_dir):
    ds = BigEarthNetV1Dataset(data_dir / "bigearthnet_v1", modalities=("s1", "s2"))
    assert len(ds) == 6 and ds.scheme.name == "bigearthnet19"
    i = ds.ids().index("S2A_MSIL2A_20170613T101031_87_48")
    s = ds[i]
    assert s.s2.shape == (12, 120, 120) and s.s1.shape == (2, 120, 120)
    assert ds.raw_labels(i) == ["Non-irrigated arable land", "Land principally occupied by "
                                "agriculture, with significant areas of natural vegetation"]
    assert ds.scheme.label_names(s.labels) == [
        "Arable land", "Land principally occupied by agriculture, with significant areas of natural vegetation"]
    # nearest upsampling of a 60 m band: every value repeated in 6x6 blocks
    b01 = s.s2[0]
    assert np.array_equal(b01, np.repeat(np.repeat(b01[::6, ::6], 6, 0), 6, 1))
    k = ds.ids().index("S2B_MSIL2A_20170924T93020_69_24")  # Transitional woodland/shrub, Peatbogs
    names = ds.scheme.label_names(ds[k].labels)
    assert "Transitional woodland, shrub" in names and "Inland wetlands" in names


def test_v1_corine43_and_bilinear(data_dir):
    ds = BigEarthNetV1Dataset(data_dir / "bigearthnet_v1" / "BigEarthNet-S2-Example",
                              classes="corine43", resampling="bilinear")
    i = ds.ids().index("S2B_MSIL2A_20170924T93020_69_24")
    assert set(ds.scheme.label_names(ds[i].labels)) == set(ds.raw_labels(i))
    with pytest.raises(InputError, match="Sentinel-1 partner"):
        BigEarthNetV1Dataset(data_dir / "bigearthnet_v1" / "BigEarthNet-S2-Example", modalities=("s1", "s2"))


def test_wrong_folders(tmp_path, data_dir):
    with pytest.raises(InputError, match="labels.json is missing"):
        BigEarthNetV2Dataset(tmp_path)
    with pytest.raises(InputError, match="not a BigEarthNet v1 folder"):
        BigEarthNetV1Dataset(data_dir / "eurosat_ms" / "Forest")

import numpy as np
import rasterio

from sparsevit.bands import S2_BANDS
from sparsevit.datasets import EuroSATDataset, list_eurosat, source_split


def test_reads_reordered_bands(data_dir):
    root = data_dir / "eurosat_ms"
    ds = EuroSATDataset(root)
    assert len(ds) == 200 and ds.s2_bands == S2_BANDS and ds.scheme.name == "eurosat"
    i = ds.ids().index("River/River_3.tif")
    s = ds[i]
    assert s.s2.shape == (13, 64, 64) and s.s2.dtype == np.float32
    assert ds.scheme.label_names(s.labels) == ["River"] and (s.mask == 8).all()
    with rasterio.open(root / "River" / "River_3.tif") as src:
        raw = src.read()
    assert np.array_equal(s.s2[8], raw[12])   # B8A is last in the file, 9th in canonical order
    assert np.array_equal(s.s2[12], raw[11])  # B12


def test_fixed_disjoint_split(data_dir):
    files = list_eurosat(data_dir / "eurosat_ms")
    for cls, fs in files.items():
        tr, te = source_split(fs, "train"), source_split(fs, "test")
        assert len(tr) == 14 and len(te) == 6 and not set(tr) & set(te) and set(tr) | set(te) == set(fs)
    tr = EuroSATDataset(data_dir / "eurosat_ms", split="train", bands=("B04", "B03", "B02"))
    assert len(tr) == 140 and tr[0].s2.shape == (3, 64, 64)

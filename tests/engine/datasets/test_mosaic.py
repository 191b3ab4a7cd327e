import json
import time

import numpy as np
import pytest
import rasterio

from sparsevit.cli import main
from sparsevit.datasets import EuroSatMosaic, MosaicFolderDataset
from sparsevit.errors import InputError


@pytest.fixture(scope="module")
def root(data_dir):
    return data_dir / "eurosat_ms"


def test_deterministic_and_epochs(root):
    a = EuroSatMosaic(root, "train", num_scenes=4, seed=3)
    b = EuroSatMosaic(root, "train", num_scenes=4, seed=3)
    for i in range(4):
        sa, sb = a[i], b[i]
        assert np.array_equal(sa.s2, sb.s2) and np.array_equal(sa.mask, sb.mask) and sa.id == sb.id
    assert not np.array_equal(a[0].mask, a[1].mask)
    first = a[0]
    a.set_epoch(1)
    assert not np.array_equal(a[0].s2, first.s2) and a[0].id != first.id
    a.set_epoch(0)
    assert np.array_equal(a[0].s2, first.s2)
    c = EuroSatMosaic(root, "train", num_scenes=4, seed=4)
    assert not np.array_equal(c[0].s2, first.s2)
    t = EuroSatMosaic(root, "test", num_scenes=2, seed=3)
    t0 = t[0]
    t.set_epoch(5)  # the test split is fixed
    assert np.array_equal(t[0].s2, t0.s2)


def test_train_test_sources_disjoint(root):
    tr = EuroSatMosaic(root, "train", num_scenes=30, seed=0)
    te = EuroSatMosaic(root, "test", num_scenes=30, seed=0)
    tr_ids = {p for v in tr.source_ids.values() for p in v}
    te_ids = {p for v in te.source_ids.values() for p in v}
    assert len(tr_ids) == 140 and len(te_ids) == 60 and not tr_ids & te_ids
    used_tr = {p for i in range(30) for p in tr.generate(i)[1]}
    used_te = {p for i in range(30) for p in te.generate(i)[1]}
    assert used_tr <= tr_ids and used_te <= te_ids
    assert len(used_tr) > 50  # scenes draw on many patches, not a few



def test_mask_label_agreement_and_class_counts(root):
    ds = EuroSatMosaic(root, "test", num_scenes=60, seed=1)
    counts = []
    t0 = time.perf_counter()
    for s in ds:
        assert s.s2.shape == (13, 256, 256) and s.mask.shape == (256, 256) and s.s1 is None
        present = np.flatnonzero(np.bincount(s.mask.ravel(), minlength=10))
        assert present.max() < 10  # no ignore pixels left
        assert np.flatnonzero(s.labels).tolist() == present.tolist()
        frac = np.bincount(s.mask.ravel(), minlength=10)[present] / s.mask.size
        assert frac.min() >= 0.02
        assert s.s2.min() > 0  # every pixel filled from a real patch
        counts.append(len(present))
    ms = (time.perf_counter() - t0) / len(ds) * 1000
    print(f"\nEuroSatMosaic: {ms:.1f} ms per 256x256 scene")
    assert 1 <= min(counts) and max(counts) <= 4 and len(set(counts)) >= 3


def test_regions_are_irregular_and_textured_by_class(root):
    ds = EuroSatMosaic(root, "train", num_scenes=20, seed=0, classes_per_scene=(3, 3))
    for s in ds:
        if len(np.unique(s.mask)) < 2:
            continue
        # boundary pixels along rows and columns: straight-edged Voronoi would give few distinct
        # boundary directions; noisy borders change direction many times
        edges = np.diff(s.mask.astype(int), axis=1) != 0
        cols_per_row = [np.flatnonzero(r) for r in edges]
        firsts = [c[0] for c in cols_per_row if len(c)]
        assert len(set(np.diff(firsts).tolist())) > 3
        break
    else:
        pytest.fail("no multi-class scene")


def test_dfc_class_sets(root):
    ds = EuroSatMosaic(root, "test", num_scenes=20, seed=2, classes="dfc2020_8")
    assert ds.scheme.num_classes == 8
    for s in ds:
        present = np.flatnonzero(np.bincount(s.mask.ravel(), minlength=256)).tolist()
        assert set(present) <= {0, 2, 4, 5, 7}  # Forest, Grassland, Croplands, Urban, Water
        assert np.flatnonzero(s.labels).tolist() == present


def test_bad_arguments(root):
    with pytest.raises(InputError):
        EuroSatMosaic(root, "val")
    with pytest.raises(InputError, match="impossible"):
        EuroSatMosaic(root, classes_per_scene=(1, 4), min_fraction=0.3)


def test_build_command_roundtrip(root, tmp_path, capsys):
    out = tmp_path / "mos"
    rc = main(["--json", "mosaic", "build", "--eurosat", str(root), "--out", str(out),
               "--split", "test", "--scenes", "3", "--seed", "0", "--size", "128"])
    assert rc == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(e["event"] == "progress" and e["done"] == 3 for e in events)
    meta = json.loads((out / "labels.json").read_text())
    assert len(meta["scenes"]) == 3 and meta["scheme"] == "eurosat"
    assert (out / "labels.csv").read_text().count("\n") == 4
    assert not list(out.rglob(".*part*"))  # atomic writes left no temporary files
    back = MosaicFolderDataset(out)
    gen = EuroSatMosaic(root, "test", num_scenes=3, seed=0, size=128)
    for i in range(3):
        a, b = back[i], gen[i]
        assert a.id == b.id and np.array_equal(a.s2, b.s2) and np.array_equal(a.mask, b.mask)
        assert np.array_equal(a.labels, b.labels)
    with rasterio.open(out / meta["scenes"][0]["s2"]) as src:
        assert src.descriptions[8] == "B8A" and src.crs.to_epsg() == 32632 and src.count == 13
    with rasterio.open(out / meta["scenes"][0]["mask"]) as src:
        assert src.colormap(1)[9][:3] == gen.scheme.rgb(9) and src.nodata == 255

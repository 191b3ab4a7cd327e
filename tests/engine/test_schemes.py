import json

import numpy as np
import pytest

from sparsevit.errors import InputError
from sparsevit.schemes import (available_mappings, available_schemes, load_mapping,
                               load_scheme, scheme_from_dict)

EXPECTED = {
    "dfc2020": (10, 1, ["Forest", "Shrubland", "Savanna", "Grassland", "Wetlands", "Croplands",
                        "Urban/Built-up", "Snow/Ice", "Barren", "Water"]),
    "dfc2020_8": (8, 0, ["Forest", "Shrubland", "Grassland", "Wetlands", "Croplands", "Urban",
                         "Barren", "Water"]),
    "eurosat": (10, 0, ["AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
                        "Pasture", "PermanentCrop", "Residential", "River", "SeaLake"]),
    "bigearthnet19": (19, 0, None),
    "igbp17": (17, 1, None),
    "corine43": (43, 0, None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scheme_loads(name):
    n, first, names = EXPECTED[name]
    s = load_scheme(name)
    assert s.num_classes == n and s.values == tuple(range(first, first + n))
    assert s.ignore_value == 255
    if names:
        assert list(s.names) == names
    for v in s.values:
        assert len(s.rgb(v)) == 3 and s.classes[s.index_of(v)].value == v
    assert set(available_schemes()) >= set(EXPECTED)


def test_scheme_helpers():
    s = load_scheme("dfc2020")
    assert s.index_of(7) == 6 and s.rgb(10) == (0x1C, 0x0D, 0xFF)
    assert s.by_name("urban built-up").value == 7 and s.by_name("SNOW/ICE").value == 8
    with pytest.raises(InputError, match="not a class"):
        s.by_name("Tundra")
    with pytest.raises(InputError):
        s.index_of(0)
    idx = s.to_index(np.array([[1, 10], [0, 255]]))
    assert idx.tolist() == [[0, 9], [255, 255]] and idx.dtype == np.uint8
    assert s.to_value(np.array([0, 9, 255])).tolist() == [1, 10, 255]
    assert s.label_names(s.multi_hot(["Water", "forest"])) == ["Forest", "Water"]


def test_bigearthnet19_names_match_v2_labels(data_dir):
    s = load_scheme("bigearthnet19")
    meta = json.loads((data_dir / "bigearthnet_v2" / "labels.json").read_text())
    used = {lab for rec in meta.values() for lab in rec["labels"]}
    assert used <= set(s.names)  # exact spelling, not just tolerant matching


def test_corine43_names_match_v1_metadata(data_dir):
    s = load_scheme("corine43")
    used = set()
    for p in (data_dir / "bigearthnet_v1").rglob("*_labels_metadata.json"):
        used |= set(json.loads(p.read_text())["labels"])
    assert used and used <= set(s.names)


def _write(tmp_path, data):
    p = tmp_path / "bad.json"
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def _scheme(classes):
    return {"name": "x", "title": "x", "ignore_value": 255, "classes": classes}


@pytest.mark.parametrize("classes, message", [
    ([{"value": 1, "name": "A", "color": "#000000"}, {"value": 1, "name": "B", "color": "#ffffff"}],
     "duplicate class value 1"),
    ([{"value": 1, "name": "A", "color": "red"}], "colour 'red'"),
    ([{"value": 1, "name": "A", "color": "#00000"}], "colour"),
    ([{"value": 255, "name": "A", "color": "#000000"}], "ignore value"),
    ([{"value": 1, "name": "A", "color": "#000000"}, {"value": 2, "name": "a", "color": "#000000"}],
     "duplicate class name"),
    ([{"value": 1, "name": "A"}], "needs 'value', 'name' and 'color'"),
    ([], "non-empty"),
])
def test_broken_scheme_is_clear_error(tmp_path, classes, message):
    p = _write(tmp_path, _scheme(classes))
    with pytest.raises(InputError, match=message) as err:
        load_scheme(p)
    assert str(p) in str(err.value) and "\n" not in str(err.value)


def test_invalid_json_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="not valid JSON"):
        load_scheme(_write(tmp_path, '{"name": "x", "classes": ['))
    with pytest.raises(InputError, match="not found"):
        load_scheme("no_such_scheme")


def test_scheme_from_dict_valid():
    s = scheme_from_dict(_scheme([{"value": 3, "name": "A", "color": "#ABCDEF"}]))
    assert s.colors == ("#abcdef",) and s.num_classes == 1


# --- mappings -----------------------------------------------------------------------------

def test_every_mapping_file_is_tested():
    assert set(available_mappings()) == {
        "igbp17_to_dfc2020", "dfc2020_to_dfc2020_8", "corine43_to_dfc2020",
        "corine43_to_bigearthnet19", "bigearthnet19_to_dfc2020", "eurosat_to_dfc2020"}


def _full_coverage(m):
    assert [s for s, _ in m.pairs] == list(m.source.names)
    lut = m.lut
    for s, t in m.pairs:
        v = m.source.by_name(s).value
        assert lut[v] == (m.target.ignore_value if t is None else m.target.by_name(t).value)
    assert lut[m.source.ignore_value] == m.target.ignore_value


def test_igbp17_to_dfc2020():
    m = load_mapping("igbp17_to_dfc2020")
    _full_coverage(m)
    igbp = np.arange(1, 18, dtype=np.uint8)
    assert m.apply(igbp).tolist() == [1, 1, 1, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 6, 8, 9, 10]
    assert m.apply("Cropland/Natural Vegetation Mosaics") == "Croplands"
    assert m.apply(np.array([[255, 0]], dtype=np.uint8)).tolist() == [[255, 255]]
    # every DFC2020 class is reachable from IGBP
    assert set(m.apply(igbp).tolist()) == set(m.target.values)


def test_dfc2020_to_dfc2020_8():
    m = load_mapping("dfc2020_to_dfc2020_8")
    _full_coverage(m)
    out = m.apply(np.arange(1, 11, dtype=np.uint8))
    assert out.tolist() == [0, 1, 255, 2, 3, 4, 5, 255, 6, 7] and out.dtype == np.uint8
    assert m.apply("Savanna") is None and m.apply("Urban/Built-up") == "Urban"
    assert m.apply(["Savanna", "Water", "Forest", "Snow/Ice"]) == ["Forest", "Water"]


def test_corine43_to_dfc2020():
    m = load_mapping("corine43_to_dfc2020")
    _full_coverage(m)
    assert all(t is not None for _, t in m.pairs)
    for src, dst in [("Continuous urban fabric", "Urban/Built-up"), ("Non-irrigated arable land", "Croplands"),
                     ("Pastures", "Grassland"), ("Coniferous forest", "Forest"), ("Peatbogs", "Wetlands"),
                     ("Sea and ocean", "Water"), ("Bare rock", "Barren"),
                     ("Transitional woodland/shrub", "Shrubland"), ("Agro-forestry areas", "Savanna")]:
        assert m.apply(src) == dst
    assert "Snow/Ice" not in {t for _, t in m.pairs} and "Snow/Ice" in m.notes


def test_corine43_to_bigearthnet19_official_table():
    m = load_mapping("corine43_to_bigearthnet19")
    _full_coverage(m)
    dropped = {s for s, t in m.pairs if t is None}
    assert dropped == {"Road and rail networks and associated land", "Port areas", "Airports",
                       "Mineral extraction sites", "Dump sites", "Construction sites",
                       "Green urban areas", "Sport and leisure facilities", "Bare rock", "Burnt areas"}
    assert m.apply("Discontinuous urban fabric") == "Urban fabric"
    assert m.apply("Sclerophyllous vegetation") == "Moors, heathland and sclerophyllous vegetation"
    assert m.apply("Rice fields") == "Arable land" and m.apply("Salines") == "Coastal wetlands"
    assert {t for _, t in m.pairs} - {None} == set(m.target.names)  # all 19 reachable


def test_bigearthnet19_to_dfc2020():
    m = load_mapping("bigearthnet19_to_dfc2020")
    _full_coverage(m)
    assert m.apply(["Mixed forest", "Inland waters", "Marine waters", "Arable land"]) == \
        ["Forest", "Croplands", "Water"]
    assert m.apply("Moors, heathland and sclerophyllous vegetation") == "Shrubland"
    hot = m.source.multi_hot(["Urban fabric", "Pastures"])
    assert m.target.label_names(m.apply_multi_hot(hot)) == ["Grassland", "Urban/Built-up"]


def test_eurosat_to_dfc2020():
    m = load_mapping("eurosat_to_dfc2020")
    _full_coverage(m)
    assert m.apply(np.arange(10)).tolist() == [6, 1, 4, 7, 7, 4, 6, 7, 10, 10]
    for missing in ("Shrubland", "Savanna", "Wetlands", "Snow/Ice", "Barren"):
        assert missing in m.notes


def test_broken_mapping(tmp_path):
    p = _write(tmp_path, {"source": "eurosat", "target": "dfc2020", "map": {"Forest": "Forest"}})
    with pytest.raises(InputError, match="not covered: AnnualCrop"):
        load_mapping(p)
    p = _write(tmp_path, {"source": "eurosat", "target": "dfc2020",
                          "map": {n: "Jungle" for n in load_scheme("eurosat").names}})
    with pytest.raises(InputError, match="'Jungle'.*not a class of target"):
        load_mapping(p)

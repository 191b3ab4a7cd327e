import json

import numpy as np
import pytest

from sparsevit.errors import InputError
from sparsevit.schemes import available_mappings, available_schemes, load_mapping, load_scheme, scheme_from_dict

EXPECTED = {
    "dfc2020": (10, 1, ["Forest", "Shrubland", "Savanna", "Grassland", "Wetlands", "Croplands",
                        "Urban/Built-up", "Snow/Ice", "Barren", "Water"]),
    "dfc2020_8": (8, 0, ["Forest", "Shrubland", "Grassland", "Wetlands", "Croplands", "Urban",
                         "Barren", "Water"]),
    "eurosat": (10, 0, ["AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
                        "Pasture", "PermanentCrop", "Residential", "River", "SeaLake"]),
    "eurosat_coarse": (5, 0, ["Water", "Built-up", "Cropland", "Grassland", "Forest"]),
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
        "corine43_to_bigearthnet19", "bigearthnet19_to_dfc2020", "eurosat_to_dfc2020",
        "eurosat_to_eurosat_coarse", "bigearthnet19_to_eurosat_coarse"}


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


def test_eurosat_to_eurosat_coarse():
    m = load_mapping("eurosat_to_eurosat_coarse")
    _full_coverage(m)
    assert all(t is not None for _, t in m.pairs)  # nothing dropped: coarse areas add up
    groups = {}
    for src, dst in m.pairs:
        groups.setdefault(dst, set()).add(src)
    assert groups == {"Water": {"River", "SeaLake"},
                      "Built-up": {"Residential", "Industrial", "Highway"},
                      "Cropland": {"AnnualCrop", "PermanentCrop"},
                      "Grassland": {"Pasture", "HerbaceousVegetation"},
                      "Forest": {"Forest"}}
    # EuroSAT values 0..9 (alphabetical) -> Water 0, Built-up 1, Cropland 2, Grassland 3, Forest 4
    assert m.apply(np.arange(10, dtype=np.uint8)).tolist() == [2, 4, 3, 1, 1, 3, 2, 1, 0, 0]
    assert m.apply(np.array([255], np.uint8)).tolist() == [255]
    assert set(m.apply(np.arange(10)).tolist()) == set(m.target.values)


# --- colours a reader can tell apart ---------------------------------------------------------

def _lab(hex_color: str) -> np.ndarray:
    c = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                    [0.0193339, 0.1191920, 0.9503041]]) @ lin / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _delta_e2000(c1, c2) -> float:
    """CIEDE2000 colour difference of two '#rrggbb' or Lab triples (Sharma et al. 2005); about 2
    is just noticeable, above 20 is obvious at a glance."""
    (l1, a1, b1), (l2, a2, b2) = (_lab(c) if isinstance(c, str) else np.asarray(c, float)
                                  for c in (c1, c2))
    cm = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(cm ** 7 / (cm ** 7 + 25.0 ** 7)))
    a1, a2 = a1 * (1 + g), a2 * (1 + g)
    ch1, ch2 = np.hypot(a1, b1), np.hypot(a2, b2)
    h1, h2 = np.degrees(np.arctan2(b1, a1)) % 360, np.degrees(np.arctan2(b2, a2)) % 360
    dh = 0.0 if ch1 * ch2 == 0 else (h2 - h1 + 180) % 360 - 180
    d_h = 2 * np.sqrt(ch1 * ch2) * np.sin(np.radians(dh / 2))
    lm, chm = (l1 + l2) / 2, (ch1 + ch2) / 2
    if ch1 * ch2 == 0:
        hm = h1 + h2
    elif abs(h1 - h2) <= 180:
        hm = (h1 + h2) / 2
    else:
        hm = (h1 + h2 + 360) / 2 if h1 + h2 < 360 else (h1 + h2 - 360) / 2
    t = (1 - 0.17 * np.cos(np.radians(hm - 30)) + 0.24 * np.cos(np.radians(2 * hm))
         + 0.32 * np.cos(np.radians(3 * hm + 6)) - 0.20 * np.cos(np.radians(4 * hm - 63)))
    rt = (-np.sin(np.radians(60 * np.exp(-(((hm - 275) / 25) ** 2))))
          * 2 * np.sqrt(chm ** 7 / (chm ** 7 + 25.0 ** 7)))
    sl = 1 + 0.015 * (lm - 50) ** 2 / np.sqrt(20 + (lm - 50) ** 2)
    sc, sh = 1 + 0.045 * chm, 1 + 0.015 * chm * t
    dl, dc = (l2 - l1) / sl, (ch2 - ch1) / sc
    return float(np.sqrt(dl ** 2 + dc ** 2 + (d_h / sh) ** 2 + rt * dc * (d_h / sh)))


def test_delta_e2000_reference_pairs():
    # pairs 1, 7, 17 and 25 of the test data of Sharma, Wu & Dalal (2005)
    for lab1, lab2, de in [((50, 2.6772, -79.7751), (50, 0, -82.7485), 2.0425),
                           ((50, 0, 0), (50, -1, 2), 2.3669),
                           ((50, 2.5, 0), (73, 25, -18), 27.1492),
                           ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644)]:
        assert _delta_e2000(lab1, lab2) == pytest.approx(de, abs=1e-4)
    assert _delta_e2000("#ffffff", "#ffffff") == 0.0
    assert _delta_e2000("#000000", "#ffffff") == pytest.approx(100.0, abs=0.01)
    assert _delta_e2000("#e6e64d", "#ccf24d") < 10  # the old AnnualCrop / HerbaceousVegetation


@pytest.mark.parametrize("name, least", [("eurosat", 20.0), ("eurosat_coarse", 30.0)])
def test_map_colours_can_be_told_apart(name, least):
    s = load_scheme(name)
    worst = min((_delta_e2000(a.color, b.color), a.name, b.name)
                for i, a in enumerate(s.classes) for b in s.classes[i + 1:])
    assert worst[0] >= least, worst
    if name == "eurosat":  # the look-alike pairs of the detailed level
        for a, b in [("River", "SeaLake"), ("AnnualCrop", "PermanentCrop"),
                     ("Pasture", "HerbaceousVegetation")]:
            assert _delta_e2000(s.by_name(a).color, s.by_name(b).color) >= least, (a, b)


def test_broken_mapping(tmp_path):
    p = _write(tmp_path, {"source": "eurosat", "target": "dfc2020", "map": {"Forest": "Forest"}})
    with pytest.raises(InputError, match="not covered: AnnualCrop"):
        load_mapping(p)
    p = _write(tmp_path, {"source": "eurosat", "target": "dfc2020",
                          "map": {n: "Jungle" for n in load_scheme("eurosat").names}})
    with pytest.raises(InputError, match="'Jungle'.*not a class of target"):
        load_mapping(p)


def test_bigearthnet19_to_eurosat_coarse():
    m = load_mapping("bigearthnet19_to_eurosat_coarse")
    _full_coverage(m)
    assert m.apply(["Mixed forest", "Inland waters", "Arable land", "Urban fabric", "Pastures"]) == \
        ["Water", "Built-up", "Cropland", "Grassland", "Forest"]
    # classes without a EuroSAT source are ignored when scoring, never forced into a coarse class
    for unmapped in ("Inland wetlands", "Beaches, dunes, sands", "Transitional woodland, shrub"):
        assert m.apply(unmapped) is None
    assert {t for _, t in m.pairs} - {None} == set(m.target.names)


def test_labels_are_what_legends_show_and_names_stay_the_keys(tmp_path):
    from sparsevit.io.styles import class_entries, paletted_qml

    s = load_scheme("eurosat")
    sea = s.by_name("SeaLake")
    assert sea.label == "Sea / lake" and sea.display_name == "Sea / lake"
    assert "SeaLake" in s.names  # files and the engine keep the name
    assert scheme_from_dict(s.to_dict()).by_name("SeaLake").label == "Sea / lake"
    plain = scheme_from_dict({"name": "t", "classes": [{"value": 0, "name": "water", "color": "#0000ff"}]})
    assert plain.classes[0].display_name == "water" and "label" not in plain.to_dict()["classes"][0]
    qml = paletted_qml(class_entries(s))
    assert 'label="Sea / lake"' in qml and 'label="SeaLake"' not in qml
    with pytest.raises(InputError, match="label"):
        scheme_from_dict({"name": "t", "classes": [{"value": 0, "name": "w", "color": "#0000ff", "label": 3}]})

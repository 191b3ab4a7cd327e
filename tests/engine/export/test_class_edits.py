"""Class edits on export (``sparsevit.export.edits``): --classes names and colours, --reclass
merges, in every format, checked in the written files."""
import csv
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
from fixtures.class_maps import write_map

from sparsevit.cli import main
from sparsevit.errors import InputError
from sparsevit.export import area_summary, export_classified, vectorize
from sparsevit.export.classes import import_pyogrio
from sparsevit.io.styles import read_class_table


def eurosat_map() -> np.ndarray:
    """EuroSAT values 0..9 in 10 x 10 px blocks (2 rows of 5), a 3 x 3 nodata corner."""
    arr = np.kron(np.arange(10, dtype=np.uint8).reshape(2, 5), np.ones((10, 10), np.uint8))
    arr[:3, :3] = 255
    return arr


@pytest.fixture
def eurosat_tif(tmp_path):
    return write_map(tmp_path / "eurosat.tif", eurosat_map(), scheme="eurosat")


def category_names(path) -> list[str]:
    root = ET.parse(str(path) + ".aux.xml").getroot()
    return [c.text or "" for c in root.findall("PAMRasterBand[@band='1']/CategoryNames/Category")]


def qml_labels(path) -> dict[int, tuple[str, str]]:
    root = ET.parse(path.with_suffix(".qml")).getroot()
    return {int(e.get("value")): (e.get("label"), e.get("color")) for e in root.iter("paletteEntry")}


def polygon_names(path) -> list[tuple[int, str]]:
    meta, _, _, fields = import_pyogrio().raw.read(str(path))
    data = dict(zip(meta["fields"], fields))
    return list(zip(data["class_value"].tolist(), data["class_name"].tolist()))


def write_json(path, data):
    path.write_text(json.dumps(data))
    return path


WATER_MERGE = {
    "name": "water_merged",
    "classes": [{"value": v, "name": n, "colour": c} for v, n, c in
                ((0, "Crops", "#ffd92f"), (1, "Forest", "#00a600"), (2, "Water", "#00ccf2"),
                 (3, "Other", "#7f7f7f"))],
    "map": {"0": 0, "1": 1, "2": 3, "3": 3, "4": 3, "5": 3, "6": 0, "7": 3, "8": 2, "9": 2},
}


def test_classes_file_renames_and_recolours_the_cog(tmp_path, eurosat_tif):
    classes = write_json(tmp_path / "classes.json", [
        {"value": 9, "name": "Lake", "colour": "#123456"},
        {"value": 8, "name": "River", "color": "#ABCDEF"},  # same name: only the colour changes
        {"value": 1, "name": "Forest", "colour": "#00a600"}])
    export_classified(eurosat_tif, tmp_path / "out.tif", classes=classes)
    out = tmp_path / "out.tif"
    with rasterio.open(out) as ds, rasterio.open(eurosat_tif) as src:
        cmap = ds.colormap(1)
        assert np.array_equal(ds.read(1), src.read(1))  # values untouched
    assert cmap[9][:3] == (0x12, 0x34, 0x56) and cmap[8][:3] == (0xab, 0xcd, 0xef)
    assert cmap[0][:3] == (0xff, 0xd9, 0x2f)  # not in the file: its own colour
    table = read_class_table(out)
    assert table[9] == ("Lake", (0x12, 0x34, 0x56)) and table[8][0] == "River"
    names = category_names(out)
    assert names[9] == "Lake" and names[8] == "River" and names[0] == "AnnualCrop"
    labels = qml_labels(out)
    assert labels[9] == ("Lake", "#123456") and labels[8] == ("River", "#abcdef")


def test_a_legend_label_keeps_the_class_name(tmp_path, eurosat_tif):
    # what an unedited layer shows: "Sea / lake" is SeaLake's label, not a rename
    classes = write_json(tmp_path / "c.json", [{"value": 9, "name": "Sea / lake", "colour": "#1c0dff"}])
    export_classified(eurosat_tif, tmp_path / "o.tif", classes=classes)
    assert read_class_table(tmp_path / "o.tif")[9][0] == "SeaLake"
    assert qml_labels(tmp_path / "o.tif")[9][0] == "Sea / lake"


def test_classes_file_names_polygons_and_area_tables(tmp_path, eurosat_tif):
    classes = write_json(tmp_path / "c.json", [{"value": 9, "name": "Lake", "colour": "#123456"}])
    vectorize(eurosat_tif, tmp_path / "p.gpkg", classes=classes)
    names = dict(polygon_names(tmp_path / "p.gpkg"))
    assert names[9] == "Lake" and names[8] == "River"
    assert main(["export", str(eurosat_tif), "--out", str(tmp_path / "a.csv"), "--classes", str(classes)]) == 0
    with open(tmp_path / "a.csv", newline="") as f:
        rows = {int(r["value"]): r for r in csv.DictReader(f)}
    assert rows[9]["name"] == "Lake" and int(rows[9]["pixels"]) == 100


def test_reclass_file_merges_classes_in_the_cog(tmp_path, eurosat_tif):
    spec = write_json(tmp_path / "reclass.json", WATER_MERGE)
    res = export_classified(eurosat_tif, tmp_path / "merged.tif", reclass=spec)
    assert res["scheme"] == "water_merged"
    with rasterio.open(tmp_path / "merged.tif") as ds:
        data, cmap = ds.read(1), ds.colormap(1)
    lut = np.full(256, 255, np.uint8)
    for old, new in WATER_MERGE["map"].items():
        lut[int(old)] = new
    assert np.array_equal(data, lut[eurosat_map()])
    assert (data == 255).sum() == 9  # nodata stays nodata
    assert (data == 2).sum() == 200  # River + SeaLake
    assert cmap[2][:3] == (0x00, 0xcc, 0xf2)
    assert category_names(tmp_path / "merged.tif") == ["Crops", "Forest", "Water", "Other"]
    assert read_class_table(tmp_path / "merged.tif")[2] == ("Water", (0x00, 0xcc, 0xf2))


def test_reclass_with_a_bundled_mapping_reports_merged_areas(tmp_path, eurosat_tif, capsys):
    summary = area_summary(eurosat_tif, reclass="eurosat_to_eurosat_coarse")
    rows = {r["name"]: r["pixels"] for r in summary["classes"]}
    assert summary["scheme"] == "eurosat_coarse"
    assert rows["Water"] == 200 and rows["Built-up"] == 300 and rows["Forest"] == 100
    assert summary["nodata_pixels"] == 9 and summary["classified_pixels"] == 991
    assert main(["--json", "export", str(eurosat_tif), "--out", str(tmp_path / "p.gpkg"),
                 "--reclass", "eurosat_to_eurosat_coarse"]) == 0
    names = [n for _, n in polygon_names(tmp_path / "p.gpkg")]
    assert set(names) == {"Water", "Built-up", "Cropland", "Grassland", "Forest"}
    # the River and SeaLake blocks touch: merged first, they make one polygon
    assert names.count("Water") == 1


def test_reclass_then_classes_names_the_new_values(tmp_path, eurosat_tif):
    spec = write_json(tmp_path / "r.json", WATER_MERGE)
    classes = write_json(tmp_path / "c.json", [{"value": 2, "name": "Wasser", "colour": "#0000ff"}])
    export_classified(eurosat_tif, tmp_path / "o.tif", reclass=spec, classes=classes)
    assert read_class_table(tmp_path / "o.tif")[2] == ("Wasser", (0, 0, 255))


@pytest.mark.parametrize("edit, data, match", [
    ("classes", [{"value": 12, "name": "X", "colour": "#000000"}], "value 12 is not a class"),
    ("classes", [{"value": 1, "name": "X", "colour": "green"}], "has colour 'green'"),
    ("classes", [{"value": 1, "name": "X", "colour": "#000000"}, {"value": 1, "name": "Y", "colour": "#000000"}],
     "listed twice"),
    ("classes", [{"value": 255, "name": "X", "colour": "#000000"}], "255 is nodata"),
    ("reclass", {**WATER_MERGE, "map": {**WATER_MERGE["map"], "12": 0}}, "value 12 is not a class"),
    ("reclass", {**WATER_MERGE, "map": {**WATER_MERGE["map"], "9": 7}}, "none of the new classes"),
    ("reclass", {**WATER_MERGE, "map": {k: v for k, v in WATER_MERGE["map"].items() if k != "4"}},
     r"classes not mapped: 4 \(Industrial\)"),
    ("reclass", {**WATER_MERGE, "classes": [*WATER_MERGE["classes"],
                                            {"value": 5, "name": "water", "colour": "#000000"}]},
     "both named"),
    ("reclass", {**WATER_MERGE, "classes": [{**WATER_MERGE["classes"][0], "colour": "#12345"},
                                            *WATER_MERGE["classes"][1:]]},
     "has colour '#12345'"),
])
def test_bad_edit_files_name_the_file_and_keep_the_output(tmp_path, eurosat_tif, edit, data, match):
    spec = write_json(tmp_path / "edit.json", data)
    dst = tmp_path / "keep.tif"
    dst.write_bytes(b"old")
    with pytest.raises(InputError, match=match) as err:
        export_classified(eurosat_tif, dst, **{edit: spec})
    assert str(spec) in str(err.value)
    assert dst.read_bytes() == b"old"


def test_a_mapping_for_another_scheme_is_refused(tmp_path):
    dfc = write_map(tmp_path / "dfc.tif")  # DFC2020 classes
    with pytest.raises(InputError, match="maps the classes of scheme 'eurosat'"):
        export_classified(dfc, tmp_path / "o.tif", reclass="eurosat_to_eurosat_coarse")
    assert not (tmp_path / "o.tif").exists()


def test_cli_reports_a_bad_classes_file_on_one_line(tmp_path, eurosat_tif, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    code = main(["export", str(eurosat_tif), "--out", str(tmp_path / "o.tif"), "--classes", str(bad)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "not valid JSON" in err and str(bad) in err and err.count("\n") == 0
    assert main(["export", str(eurosat_tif), "--out", str(tmp_path / "o.tif"),
                 "--classes", str(tmp_path / "none.json")]) == 2
    assert "classes file not found" in capsys.readouterr().err

"""The band mapping: the core logic (table -> --band-order, checks), the panel's editor with a
real Inspect of rasters whose bands are unnamed, and the band-order parameter of Processing's
predict."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import wait_for_panel
from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback

from sparsevit_qgis.core.band_mapping import (
    BandMappingError,
    band_order_args,
    band_order_text,
    detected_bands,
    file_bands,
    is_multi_file,
    normalize_name,
    preset_of,
    problems,
    split_names,
)


def _unnamed_raster(path: Path, count: int, descriptions=()) -> Path:
    """A small georeferenced uint16 stack whose bands carry no Sentinel-2 name."""
    from osgeo import gdal, osr
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 24, 24, count, gdal.GDT_UInt16)
    ds.SetGeoTransform((500000.0, 10.0, 0.0, 4200000.0, 0.0, -10.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32630)
    ds.SetProjection(srs.ExportToWkt())
    for i in range(1, count + 1):
        band = ds.GetRasterBand(i)
        band.Fill(100 * i + 50)
        if i <= len(descriptions):
            band.SetDescription(descriptions[i - 1])
        band = None
    ds = None  # close before the engine opens it
    return path




# --- core logic ------------------------------------------------------------------------------
def test_band_mapping_names_are_normalized_like_the_engine_does():
    assert [normalize_name(t) for t in ("B4", "b04", "band_8a", "B8A", "B12", "B10")] == [
        "B04", "B04", "B8A", "B8A", "B12", "B10"]
    assert [normalize_name(t) for t in ("-", "(unused)", "", "unused")] == ["-"] * 4
    assert [normalize_name(t) for t in ("B13", "B00", "red", "B4x")] == [None] * 4


def test_band_mapping_table_becomes_the_band_order():
    assert band_order_text(["B04", "B03", "B02", "B08"], 4) == "B04,B03,B02,B08"
    assert band_order_text(["b4", "(unused)", "B2", "B8a"]) == "B04,-,B02,B8A"
    # a first band left out stays a value: argparse reads a leading "-" as an option
    assert band_order_args("-,B03,B02") == ["--band-order=-,B03,B02"]
    assert band_order_args("B04,B03") == ["--band-order", "B04,B03"]
    assert band_order_args("  ") == [] and band_order_args(None) == []
    assert split_names("eurosat")[-1] == "B8A" and len(split_names("esa12")) == 12
    assert split_names("B02, B03 B04") == ["B02", "B03", "B04"]
    assert preset_of(split_names("esa")) == "esa" and preset_of(["B02"]) is None


def test_band_mapping_checks_say_which_row_and_the_fix():
    (dup,) = problems(["B04", "B03", "B04", "B08"], 4)
    assert dup.startswith("B04 is given to file bands 1, 3:") and "(unused)" in dup
    (unknown,) = problems(["B04", "B13", "B02"], 3)
    assert unknown.startswith("File band 2: 'B13' is not a Sentinel-2 band name")
    (count,) = problems(split_names("eurosat"), 4)
    assert count.startswith("The mapping names 13 band(s) but the file has 4")
    assert problems(["-", "(unused)"], 2) == ["Every band is set to (unused): name at least one band."]
    assert problems(["B02", "-", "B04"], 3) == []
    with pytest.raises(BandMappingError, match="B02 is given to file bands 1, 2"):
        band_order_text(["B02", "B02"], 2)


def test_band_mapping_reads_what_inspect_found(tmp_path):
    f = str(tmp_path / "s.tif")
    result = {"products": [{"kind": "S2", "bands": {
        "B02": {"path": f, "index": 3, "how": "override"},
        "B04": {"path": f, "index": 1, "how": "override"},
        "B05": {"path": str(tmp_path / "other.tif"), "index": 1, "how": "filename"}}}]}
    assert detected_bands(result, f) == {3: ("B02", "override"), 1: ("B04", "override")}
    rows = file_bands(["red", "", "blue"], result, f)
    assert [(r.index, r.description, r.detected, r.how) for r in rows] == [
        (1, "red", "B04", "override"), (2, "", None, None), (3, "blue", "B02", "override")]
    assert detected_bands(None, f) == {} and detected_bands({"products": [{"kind": "S1"}]}, f) == {}
    (tmp_path / "bands").mkdir()
    assert is_multi_file(str(tmp_path / "bands")) and is_multi_file("/x/S2A.zip")
    assert is_multi_file("/x/MTD_MSIL2A.xml") and not is_multi_file(f) and not is_multi_file("")


def test_band_mapping_reaches_the_predict_request(tiny_bundle, tmp_path):
    from sparsevit_qgis.core.predict_job import PredictRequest
    base = dict(s2="in.tif", out=str(tmp_path), model=str(tiny_bundle))
    assert "--band-order" not in PredictRequest(**base).to_args()
    assert PredictRequest(**base, band_order="B04,B03,B02,B08").to_args()[-2:] == [
        "--band-order", "B04,B03,B02,B08"]
    assert PredictRequest(**base, band_order="-,B03").to_args()[-1] == "--band-order=-,B03"


# --- the panel's editor, with the real engine --------------------------------------------------
@pytest.fixture
def dock(new_dock, real_engine, engine_setting, tiny_bundle, tmp_path, qgis_new_project):
    python, _sample = real_engine
    engine_setting.set_python_path(str(python))
    d = new_dock()
    d.model_input.set_custom(str(tiny_bundle))
    (tmp_path / "out").mkdir()
    d.output_dir.setFilePath(str(tmp_path / "out"))
    return d


def _found(editor) -> list[str]:
    return [editor.table.item(r, 2).text() for r in range(editor.table.rowCount())]


def _pick(editor, row: int, name: str) -> None:
    """What a user does: choose ``name`` in the row's combo."""
    combo = editor.combo(row)
    combo.setCurrentIndex(combo.findData(name))


def test_band_mapping_edit_after_a_refused_inspect_reaches_predict_and_inspect(dock, tmp_path):
    from sparsevit_qgis.core.predict_job import JobError
    raster = _unnamed_raster(tmp_path / "stack.tif", 4, descriptions=["", "green?"])
    editor = dock.band_mapping
    dock.s2_input.set_path(str(raster))
    assert editor.path == str(raster) and editor.table.rowCount() == 0
    assert "--band-order" not in " ".join(dock.build_predict_args())

    dock.inspect()  # 4 unnamed bands: the engine names none and refuses
    wait_for_panel(dock)
    assert dock.stage_label.text() == "Failed", dock.log.toPlainText()
    assert "neither Sentinel-2 bands" in dock.log.toPlainText()
    assert [(b.index, b.description) for b in editor.rows()] == [(1, ""), (2, "green?"), (3, ""), (4, "")]
    assert _found(editor) == ["not used"] * 4 and editor.names() == ["-"] * 4
    assert not editor.override and editor.band_order() is None
    assert "The engine names none of the 4 band(s)" in editor.status_label.text()

    for row, name in enumerate(("B04", "B03", "B02", "B08")):
        _pick(editor, row, name)
    assert editor.override and not editor.reset_button.isHidden() and editor.reset_button.isEnabled()
    args = dock.build_predict_args()
    assert args[-2:] == ["--band-order", "B04,B03,B02,B08"]
    assert args.count("--band-order") == 1
    assert "--band-order B04,B03,B02,B08" in editor.order_label.text()

    dock.inspect()  # rerun with the override: the engine reads the bands as mapped
    wait_for_panel(dock)
    assert dock.stage_label.text().startswith("Done"), dock.log.toPlainText()
    assert "$ sparsevit info " + str(raster) + " --band-order B04,B03,B02,B08" in dock.log.toPlainText()
    assert [(b.detected, b.how) for b in editor.rows()] == [
        ("B04", "override"), ("B03", "override"), ("B02", "override"), ("B08", "override")]
    assert _found(editor) == ["B04 (override)", "B03 (override)", "B02 (override)", "B08 (override)"]
    assert "B02  <- stack.tif band 3 (by override" in dock.log.toPlainText()
    assert editor.override and editor.names() == ["B04", "B03", "B02", "B08"]

    _pick(editor, 3, "B04")  # a duplicate: refused with the rows named, before any engine run
    assert editor.problems() == [
        "B04 is given to file bands 1, 4: each Sentinel-2 band can be one file band only; set "
        "the others to another band or (unused)."]
    assert editor.error_label.text().startswith("B04 is given to file bands 1, 4")
    with pytest.raises(JobError, match="band mapping .* B04 is given to file bands 1, 4"):
        dock.build_predict_args()
    assert dock.run_predict() is None
    assert not list((tmp_path / "out").iterdir())  # no run folder for a refused run
    assert "[error] The band mapping (Input) cannot be used" in dock.log.toPlainText()

    _pick(editor, 3, "-")  # leave band 4 out
    assert dock.build_predict_args()[-2:] == ["--band-order", "B04,B03,B02,-"]
    _pick(editor, 0, "-")
    assert dock.build_predict_args()[-1] == "--band-order=-,B03,B02,-"

    editor.reset()  # back to what the engine found by itself: nothing, and no --band-order
    assert not editor.override and editor.names() == ["-"] * 4 and not editor.error_label.text()
    assert _found(editor) == ["not used"] * 4
    assert "--band-order" not in " ".join(dock.build_predict_args())


def test_band_mapping_clears_when_the_input_changes_and_on_multi_file_inputs(dock, tmp_path):
    raster = _unnamed_raster(tmp_path / "a.tif", 3)
    editor = dock.band_mapping
    dock.s2_input.set_path(str(raster))
    assert editor.load_bands() and editor.table.rowCount() == 3  # "Show bands", no engine run
    editor.set_row(0, "B02")
    assert editor.override and editor.band_order() == "B02,-,-"
    other = _unnamed_raster(tmp_path / "b.tif", 3)
    dock.s2_input.set_path(str(other))  # another file: the mapping was for the old one
    assert not editor.override and editor.table.rowCount() == 0
    assert "--band-order" not in " ".join(dock.build_predict_args())

    folder = tmp_path / "bands"
    folder.mkdir()
    _unnamed_raster(folder / "B02.tif", 1)
    dock.s2_input.set_path(str(folder))
    assert editor.multi_file and not editor.table.isEnabled() and not editor.preset_combo.isEnabled()
    assert "does not apply" in editor.status_label.text()
    assert not editor.load_bands() and editor.band_order() is None


def test_band_mapping_positional_bands_presets_and_training(dock, tmp_path):
    raster = _unnamed_raster(tmp_path / "l2a.tif", 12)
    editor = dock.band_mapping
    dock.s2_input.set_path(str(raster))
    dock.inspect()  # 12 unnamed bands: the engine takes the ESA order without B10
    wait_for_panel(dock)
    assert dock.stage_label.text().startswith("Done"), dock.log.toPlainText()
    assert {b.how for b in editor.rows()} == {"position"}
    assert editor.names()[8] == "B8A" and not editor.override
    assert "--band-order" not in " ".join(dock.build_predict_args())

    editor.preset_combo.activated.emit(editor.preset_combo.findData("eurosat"))  # 13 names: refused
    assert "The eurosat preset names 13 bands but the file has 12" in editor.error_label.text()
    assert not editor.override
    editor.set_names("esa12")  # what the engine guessed, now said explicitly
    assert editor.override and "(the esa12 preset)" in editor.order_label.text()
    _pick(editor, 1, "B03")
    _pick(editor, 2, "B02")  # the blue and green bands swapped in this file
    order = "B01,B03,B02,B04,B05,B06,B07,B08,B8A,B09,B11,B12"
    assert dock.build_predict_args()[-2:] == ["--band-order", order]

    # the Train section maps the same file with the same band order, another file without it
    train = dock.train_section
    train.output_dir.setFilePath(str(tmp_path / "out"))
    train.raster_input.set_path(str(raster))
    grid_args, _ = train.plan_grid()
    assert grid_args[-2:] == ["--band-order", order]
    train.raster_input.set_path(str(_unnamed_raster(tmp_path / "other.tif", 12)))
    assert "--band-order" not in train.plan_grid()[0]


# --- Processing ---------------------------------------------------------------------------------
def test_band_mapping_processing_predict_takes_a_band_order(provider, real_engine, engine_setting,
                                                            tiny_bundle, tmp_path):
    from qgis.core import QgsProcessingParameterDefinition, QgsProcessingParameterString
    python, sample = real_engine
    engine_setting.set_python_path(str(python))
    alg = QgsApplication.processingRegistry().createAlgorithmById("sparsevit:predict")
    param = alg.parameterDefinition("BAND_ORDER")
    assert isinstance(param, QgsProcessingParameterString)
    assert param.flags() & QgsProcessingParameterDefinition.FlagOptional
    assert param.flags() & QgsProcessingParameterDefinition.FlagAdvanced
    assert "eurosat, esa, esa12" in param.description()
    base = {"INPUT": str(sample), "MODEL": str(tiny_bundle), "OUTPUT_FOLDER": str(tmp_path / "o")}

    def args(**extra):
        return alg.engine_args({**base, **extra}, QgsProcessingContext(), QgsProcessingFeedback())

    assert "--band-order" not in args() and "--band-order" not in args(BAND_ORDER="")
    assert args(BAND_ORDER="esa")[-2:] == ["--band-order", "esa"]
    assert args(BAND_ORDER="B04,B03,B02,B08")[-2:] == ["--band-order", "B04,B03,B02,B08"]
    assert args(BAND_ORDER="-,B03,B02,B08")[-1] == "--band-order=-,B03,B02,B08"

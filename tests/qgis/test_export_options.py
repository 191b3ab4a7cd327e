"""GeoPackage polygon options of an export: the panel's Minimum area / Simplify rows (shown for
polygons only, saved in the settings) and Processing's advanced MIN_AREA_PIXELS / SIMPLIFY, each
given to the engine as --min-area-pixels / --simplify only for gpkg and only when > 0."""
from __future__ import annotations

import pytest
from conftest import write_gdal_raster
from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
)

EXPORT_KEYS = ("export/min_area_pixels", "export/simplify")
FLAGS = ("--min-area-pixels", "--simplify")


@pytest.fixture
def export_settings():
    """No saved export options during the test; the user's own ones back afterwards."""
    from qgis.core import QgsSettings

    from sparsevit_qgis.core import settings
    store = QgsSettings()
    before = {k: store.value(settings.PREFIX + k) for k in EXPORT_KEYS}
    for k in EXPORT_KEYS:
        store.remove(settings.PREFIX + k)
    yield settings
    for k, v in before.items():
        if v is None:
            store.remove(settings.PREFIX + k)
        else:
            store.setValue(settings.PREFIX + k, v)


@pytest.fixture
def export_dock(new_dock, qgis_new_project, export_settings):
    """Panels with the export settings restored afterwards, in a project cleared afterwards."""
    yield new_dock
    QgsProject.instance().clear()


@pytest.fixture
def landcover(uint8_tif, qgis_new_project) -> QgsRasterLayer:
    layer = QgsRasterLayer(str(uint8_tif), "classes")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    return layer


def _select_format(dock, fmt: str) -> None:
    index = dock.export_format.findData(fmt)
    assert index >= 0
    dock.export_format.setCurrentIndex(index)


def _rows(dock):
    return (dock.export_min_area_label, dock.export_min_area_row,
            dock.export_simplify_label, dock.export_simplify)


def test_panel_polygon_options_become_engine_flags_for_gpkg_only(export_dock, landcover, tmp_path):
    dock = export_dock()
    dock.export_layer.setLayer(landcover)
    dock.export_file.setFilePath(str(tmp_path / "out.tif"))
    # defaults: keep every patch, exact outlines; rows hidden for the first format (COG)
    assert dock.export_format.currentData() == "cog"
    assert dock.export_min_area.value() == 0 and dock.export_simplify.value() == 0
    assert all(w.isHidden() for w in _rows(dock))
    _select_format(dock, "gpkg")
    assert not any(w.isHidden() for w in _rows(dock))
    args = dock.build_export_args()
    assert args[:5] == [str(landcover.source()), "--out", str(tmp_path / "out.gpkg"), "--format", "gpkg"]
    assert not set(FLAGS) & set(args)  # 0: no flags, the engine's defaults

    dock.export_min_area.setValue(25)
    dock.export_simplify.setValue(1.5)
    args = dock.build_export_args()
    assert args[args.index("--min-area-pixels"):] == ["--min-area-pixels", "25", "--simplify", "1.5"]
    assert "0.25 ha" in dock.export_min_area_ha.text()
    assert "ha" in dock.export_min_area.toolTip() and "overlap" in dock.export_simplify.toolTip()
    dock.export_simplify.setValue(0)
    assert dock.build_export_args()[-2:] == ["--min-area-pixels", "25"]
    dock.export_simplify.setValue(1.5)
    dock.export_min_area.setValue(0)
    assert dock.build_export_args()[-2:] == ["--simplify", "1.5"]
    dock.export_min_area.setValue(25)

    # other formats never get them, whatever the (hidden) rows hold
    for fmt in ("cog", "csv", "json"):
        _select_format(dock, fmt)
        assert all(w.isHidden() for w in _rows(dock)), fmt
        args = dock.build_export_args()
        assert args[4] == fmt and not set(FLAGS) & set(args), fmt


def test_panel_polygon_options_survive_a_new_panel(export_dock, export_settings):
    dock = export_dock()
    dock.export_min_area.setValue(40)
    dock.export_simplify.setValue(0.75)
    assert export_settings.export_min_area_pixels() == 40
    assert export_settings.export_simplify() == pytest.approx(0.75)
    again = export_dock()
    assert again.export_min_area.value() == 40
    assert again.export_simplify.value() == pytest.approx(0.75)
    _select_format(again, "gpkg")
    assert again.export_polygon_args() == ["--min-area-pixels", "40", "--simplify", "0.75"]


def test_settings_ignore_bad_stored_values(export_settings):
    from qgis.core import QgsSettings
    store = QgsSettings()
    store.setValue(export_settings.PREFIX + "export/min_area_pixels", -3)
    store.setValue(export_settings.PREFIX + "export/simplify", "much")
    assert export_settings.export_min_area_pixels() == 0
    assert export_settings.export_simplify() == 0.0


def _export_alg(provider):
    return QgsApplication.processingRegistry().createAlgorithmById("sparsevit:export")


def test_processing_export_has_advanced_polygon_parameters(provider):
    from qgis.core import QgsProcessingParameterDefinition, QgsProcessingParameterNumber
    alg = _export_alg(provider)
    for name, kind in (("MIN_AREA_PIXELS", QgsProcessingParameterNumber.Integer),
                       ("SIMPLIFY", QgsProcessingParameterNumber.Double)):
        param = alg.parameterDefinition(name)
        assert isinstance(param, QgsProcessingParameterNumber), name
        assert param.dataType() == kind, name
        assert param.flags() & QgsProcessingParameterDefinition.FlagAdvanced, name
        assert param.defaultValue() == 0 and param.minimum() == 0, name
    assert "Minimum area" in alg.shortHelpString() and "Simplify" in alg.shortHelpString()


def test_processing_export_passes_polygon_flags_for_gpkg_only(provider, uint8_tif, tmp_path):
    alg = _export_alg(provider)
    base = {"INPUT": str(uint8_tif), "OUTPUT": str(tmp_path / "out.gpkg")}

    def args(**extra):
        return alg.engine_args({**base, **extra}, QgsProcessingContext(), QgsProcessingFeedback())

    gpkg = args(FORMAT="gpkg", MIN_AREA_PIXELS=25, SIMPLIFY=1.5)
    assert gpkg[3:] == ["--format", "gpkg", "--min-area-pixels", "25", "--simplify", "1.5"]
    assert args(FORMAT="gpkg", SIMPLIFY=2)[-2:] == ["--simplify", "2"]
    assert args(FORMAT="gpkg", MIN_AREA_PIXELS=4)[-2:] == ["--min-area-pixels", "4"]
    for extra in ({"FORMAT": "gpkg"}, {"FORMAT": "gpkg", "MIN_AREA_PIXELS": 0, "SIMPLIFY": 0},
                  {"FORMAT": "cog", "MIN_AREA_PIXELS": 25, "SIMPLIFY": 1.5},
                  {"FORMAT": "csv", "MIN_AREA_PIXELS": 25}):
        assert not set(FLAGS) & set(args(**extra)), extra


@pytest.fixture
def specks_tif(tmp_path):
    """16 x 16 px of class 0 with three single-pixel specks of class 1."""
    values = bytearray(16 * 16)
    for row, col in ((3, 3), (8, 11), (12, 5)):
        values[row * 16 + col] = 1
    return write_gdal_raster(tmp_path / "specks.tif", 16, 16, bytes(values))


def test_processing_export_min_area_merges_specks_on_the_real_engine(provider, real_engine,
                                                                     engine_setting, specks_tif,
                                                                     tmp_path):
    import processing
    from qgis.core import QgsVectorLayer
    engine_setting.set_python_path(str(real_engine[0]))
    # without a minimum area: the background (with three holes) and the three specks = 4
    result = processing.run("sparsevit:export", {
        "INPUT": str(specks_tif), "FORMAT": "gpkg", "MIN_AREA_PIXELS": 4, "SIMPLIFY": 0.5,
        "OUTPUT": str(tmp_path / "polys.gpkg")})
    layer = QgsVectorLayer(result["OUTPUT"], "polys", "ogr")
    assert layer.isValid()
    assert layer.featureCount() == 1  # the specks merged into the background

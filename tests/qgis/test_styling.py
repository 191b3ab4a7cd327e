"""Result styling: paletted renderer from a scheme, .qml sidecars, layer groups, basemap."""
from __future__ import annotations

import json

import pytest
from qgis.core import QgsPalettedRasterRenderer, QgsProject, QgsRasterLayer

from sparsevit_qgis.core import styling
from sparsevit_qgis.core.schemes import SchemeError, available_schemes, load_scheme


def test_paletted_renderer_from_scheme(qgis_app, uint8_tif, scheme_file):
    layer = QgsRasterLayer(str(uint8_tif), "classes")
    assert layer.isValid()
    styling.apply_scheme(layer, load_scheme(scheme_file), opacity=0.6)
    renderer = layer.renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert renderer.band() == 1
    got = [(c.value, c.color.name(), c.label) for c in renderer.classes()]
    assert got == [(0, "#1f78b4", "Water"), (1, "#33a02c", "Trees"), (2, "#e31a1c", "Built-up")]
    assert renderer.opacity() == pytest.approx(0.6)
    ranges = layer.dataProvider().userNoDataValues(1)
    assert [(r.min(), r.max()) for r in ranges] == [(255, 255)]


def test_scheme_by_path_string(qgis_app, uint8_tif, scheme_file):
    layer = QgsRasterLayer(str(uint8_tif), "classes")
    styling.apply_scheme(layer, str(scheme_file))
    assert [c.label for c in layer.renderer().classes()] == ["Water", "Trees", "Built-up"]


def test_sidecar_qml_wins(qgis_app, uint8_tif, scheme_file):
    styled = QgsRasterLayer(str(uint8_tif), "styled")
    styling.apply_scheme(styled, load_scheme(scheme_file))
    msg, ok = styled.saveNamedStyle(str(uint8_tif.with_suffix(".qml")))
    assert ok, msg
    fresh = QgsRasterLayer(str(uint8_tif), "fresh")
    assert styling.style_result_layer(fresh, scheme=None) == "qml"
    assert [c.label for c in fresh.renderer().classes()] == ["Water", "Trees", "Built-up"]


def test_no_qml_falls_back_to_scheme(qgis_app, uint8_tif, scheme_file):
    layer = QgsRasterLayer(str(uint8_tif), "classes")
    assert styling.apply_sidecar_qml(layer) is False
    assert styling.style_result_layer(layer, scheme=scheme_file) == "scheme"


def test_bad_scheme_names_file_and_fix(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"classes": [{"value": 0, "name": "x", "color": "red"}]}))
    with pytest.raises(SchemeError, match=r"bad.json.*#rrggbb"):
        load_scheme(bad)


def test_bundled_schemes_load():
    schemes = available_schemes()
    if not schemes:
        pytest.skip("resources/schemes not present yet")
    for name, path in schemes.items():
        scheme = load_scheme(path)
        assert scheme.classes, name


def test_results_go_to_a_group_per_run(qgis_new_project, uint8_tif):
    project = QgsProject.instance()
    layers = [QgsRasterLayer(str(uint8_tif), "a"), QgsRasterLayer(str(uint8_tif), "b")]
    group = styling.add_layers_to_group(layers, styling.run_group_name("predict"), project)
    assert group.name().startswith("predict ")
    assert [n.layer().name() for n in group.findLayers()] == ["a", "b"]
    assert project.layerTreeRoot().children()[0] is group
    assert len(project.mapLayers()) == 2


def test_basemap_is_an_xyz_layer_at_the_bottom(qgis_new_project, uint8_tif):
    project = QgsProject.instance()
    styling.add_layers_to_group([QgsRasterLayer(str(uint8_tif), "r")], "run", project)
    layer = styling.add_basemap(project)
    assert layer.providerType() == "wms"
    assert "type=xyz" in layer.source() and "tile.openstreetmap.org" in layer.source()
    assert layer.name() == "OpenStreetMap"
    assert project.layerTreeRoot().children()[-1].layer() is layer


def test_basemap_template_with_query_is_encoded():
    uri = styling.basemap_uri("https://tiles.example.org/{z}/{x}/{y}.png?key=a&style=b")
    assert uri.startswith("type=xyz&url=https://tiles.example.org/{z}/{x}/{y}.png%3Fkey%3Da%26style%3Db")
    assert styling.basemap_uri("type=xyz&url=https://x/{z}/{x}/{y}.png") == "type=xyz&url=https://x/{z}/{x}/{y}.png"


def test_confidence_ramp_leaves_cloudy_pixels_undrawn(qgis_app, tmp_path):
    """-1 (the engine's cloudy pixel) is no confidence: transparent, while 0 and 1 are drawn."""
    import struct

    from conftest import write_gdal_raster
    from qgis.core import QgsRectangle
    path = write_gdal_raster(tmp_path / "confidence.tif", 3, 1, struct.pack("3f", -1.0, 0.0, 1.0), "Float32")
    layer = QgsRasterLayer(str(path), "confidence")
    styling.confidence_renderer(layer)
    block = layer.renderer().block(1, QgsRectangle(500000, 4199990, 500030, 4200000), 3, 1)
    alphas = [(block.color(0, c) >> 24) & 0xFF for c in range(3)]
    assert alphas[0] == 0 and alphas[1] == 255 and alphas[2] == 255

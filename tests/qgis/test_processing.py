"""The Processing provider and sparsevit:info through processing.run."""
from __future__ import annotations

import json

import pytest


def test_provider_lists_one_algorithm_per_engine_command(provider):
    assert sorted(a.id() for a in provider.algorithms()) == [
        "sparsevit:evaluate", "sparsevit:export", "sparsevit:fit", "sparsevit:grid", "sparsevit:info",
        "sparsevit:predict", "sparsevit:train"]


def test_the_changelog_names_every_algorithm_and_the_help_no_polygon_clip(provider):
    """The plugin's docs said one algorithm while seven exist, and 'selected polygons' for what is
    their bounding box."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    metadata = (root / "metadata.txt").read_text(encoding="utf-8")
    changelog = metadata.split("changelog=", 1)[1]
    for alg in provider.algorithms():
        assert alg.id() in changelog and alg.displayName() in changelog, alg.id()
    help_html = (root / "sparsevit_qgis" / "help" / "index.html").read_text(encoding="utf-8")
    assert "bounding box of the selected polygons" in help_html and "Install engine" in help_html
    # every action of the panel is explained (the help once left out the compare, export,
    # reclassify and band-mapping tools)
    for action in ("Inspect", "Show bands", "Reset to detected", "Preset", "Swipe", "Imagery", "Basemap",
                   "Add basemap", "Export", "Minimum area", "Simplify", "Reclassify", "Mask clouds",
                   "Make tile grid", "Tag cells", "Train", "Cancel"):
        assert f"<b>{action}" in help_html or f"<i>{action}" in help_html, action


def test_info_algorithm_returns_the_band_report(provider, real_engine, engine_setting):
    import processing
    python, sample = real_engine
    engine_setting.set_python_path(str(python))
    result = processing.run("sparsevit:info", {"INPUT": str(sample)})
    report = json.loads(result["REPORT"])
    product = report["products"][0]
    assert product["kind"] == "S2"
    assert product["bands"]["B04"]["index"] == 4


def test_info_algorithm_engine_error_is_one_line(provider, real_engine, engine_setting, uint8_tif):
    import processing
    from qgis.core import QgsProcessingException
    python, _ = real_engine
    engine_setting.set_python_path(str(python))
    with pytest.raises(QgsProcessingException) as err:
        processing.run("sparsevit:info", {"INPUT": str(uint8_tif)})
    assert "classes.tif" in str(err.value)


def test_every_algorithm_has_a_title_and_help_and_runs_its_engine_command(provider):
    for alg in provider.algorithms():
        assert alg.name() == alg.engine_command
        assert alg.displayName() and alg.displayName() != alg.name()
        assert len(alg.shortHelpString()) > 80
        assert alg.createInstance().displayName() == alg.displayName()

"""A prediction's layers in the project: the coarse land-cover map on top of the detailed one."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import REPO
from qgis.core import QgsPalettedRasterRenderer, QgsProject


def _labels(scheme: str) -> list[str]:
    """What a legend shows: each class's readable label, else its name."""
    data = json.loads((REPO / "resources" / "schemes" / f"{scheme}.json").read_text())
    return [c.get("label", c["name"]) for c in data["classes"]]


def test_coarse_map_is_a_styled_layer_on_top_of_the_detailed_one(small_prediction, qgis_new_project):
    from sparsevit_qgis.core.results import add_predict_results, set_view
    result = small_prediction  # the engine's default level: both
    assert result["coarse_scheme"] == "eurosat_coarse"
    run = add_predict_results(result, "x")
    assert not run.warnings, run.warnings
    coarse, detailed = run.get("landcover_coarse"), run.get("landcover")
    assert run.main_role == "landcover_coarse" and run.main_map is coarse
    assert Path(coarse.source()) == Path(result["outputs"]["landcover_coarse"])
    roles = [n.layer().customProperty("sparsevit/role") for n in run.group.findLayers()]
    # the run's input in true colour at the bottom, under every map
    assert roles == ["landcover_coarse", "landcover", "pseudomask", "confidence", "true_colour"]
    assert coarse.name().startswith("Land cover, coarse")
    for layer, scheme in ((coarse, "eurosat_coarse"), (detailed, "eurosat")):
        assert isinstance(layer.renderer(), QgsPalettedRasterRenderer)
        assert [c.label for c in layer.renderer().classes()] == _labels(scheme)
    water = next(c for c in coarse.renderer().classes() if c.label == "Water")
    assert water.color.name() == "#2c7fb8"
    node = {r: run.group.findLayer(run.get(r).id()) for r in roles}
    assert node["landcover_coarse"].itemVisibilityChecked()
    assert not any(node[r].itemVisibilityChecked() for r in roles[1:-1])
    assert node["true_colour"].itemVisibilityChecked()
    set_view(run, "landcover")  # the detailed map, one click away
    assert node["landcover"].itemVisibilityChecked() and not node["landcover_coarse"].itemVisibilityChecked()
    set_view(run, "landcover_coarse")
    assert node["landcover_coarse"].itemVisibilityChecked() and not node["landcover"].itemVisibilityChecked()


def test_a_coarse_only_run_shows_the_coarse_map(small_prediction, qgis_new_project):
    from sparsevit_qgis.core.results import add_predict_results
    result = dict(small_prediction, level="coarse")
    result["outputs"] = {k: v for k, v in small_prediction["outputs"].items()
                         if k not in ("landcover", "areas_csv", "areas_json")}
    run = add_predict_results(result, "y")
    assert run.get("landcover") is None and run.main_map is run.get("landcover_coarse")
    assert run.group.findLayer(run.main_map.id()).itemVisibilityChecked()
    assert len(QgsProject.instance().mapLayers()) == 4  # coarse, pseudomask, confidence, imagery


def test_level_args():
    import pytest

    from sparsevit_qgis.core.predict_job import LEVELS, JobError, level_args
    assert [v for v, _ in LEVELS] == ["both", "detailed", "coarse"]
    assert level_args(None) == [] and level_args("both") == []
    assert level_args("coarse") == ["--level", "coarse"] and level_args("Detailed") == ["--level", "detailed"]
    with pytest.raises(JobError, match="medium"):
        level_args("medium")

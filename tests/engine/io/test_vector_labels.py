"""Layer choice, field lookup and label values shared by ``evaluate --points`` and ``fit``."""
from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from sparsevit.errors import InputError
from sparsevit.export.classes import import_pyogrio
from sparsevit.io.vector_labels import as_number, is_missing, pick_layer, resolve_field


def _layer(path, name, geoms, geometry_type):
    raw = import_pyogrio().raw
    raw.write(str(path), shapely.to_wkb(np.array(geoms, dtype=object)), [np.array(["a"] * len(geoms), dtype=object)],
              ["Class"], layer=name, driver="GPKG", crs="EPSG:32633", append=path.exists(),
              promote_to_multi=False, geometry_type=geometry_type)


@pytest.fixture()
def two_layers(tmp_path):
    path = tmp_path / "labels.gpkg"
    _layer(path, "pts", [shapely.Point(0, 0)], "Point")
    _layer(path, "areas", [shapely.box(0, 0, 1, 1)], "Polygon")
    return path


def test_several_layers_need_a_choice_unless_one_is_preferred(two_layers):
    pyogrio = import_pyogrio()
    with pytest.raises(InputError, match=r"2 layers \(.*pts.*areas|2 layers \(.*areas.*pts") as exc:
        pick_layer(pyogrio, two_layers, None, what="points")
    assert "--layer" in str(exc.value) and "points" in str(exc.value)
    assert pick_layer(pyogrio, two_layers, None, preferred=lambda _n, g: "point" in g.lower()) == "pts"
    assert pick_layer(pyogrio, two_layers, "areas") == "areas"
    with pytest.raises(InputError, match="no layer 'roads'"):
        pick_layer(pyogrio, two_layers, "roads")


def test_a_file_that_is_no_vector_is_named(tmp_path):
    bad = tmp_path / "notes.gpkg"
    bad.write_text("not a geopackage")
    with pytest.raises(InputError, match="not a readable vector file") as exc:
        pick_layer(import_pyogrio(), bad, None)
    assert "notes.gpkg" in str(exc.value)


def test_field_lookup_folds_case_only_when_unambiguous(tmp_path):
    path = tmp_path / "labels"
    assert resolve_field({"fields": ["Class", "note"]}, "class", path) == "Class"
    assert resolve_field({"fields": ["Class", "class"]}, "class", path) == "class"
    with pytest.raises(InputError, match=r"no field 'CLASS'.*fields: Class, class"):
        resolve_field({"fields": ["Class", "class"]}, "CLASS", path)


@pytest.mark.parametrize("value, code", [(3, 3), (np.int16(-1), -1), (2.0, 2), ("7", 7), (" -1 ", -1),
                                         (2.5, None), ("water", None), (True, None), (math.inf, None)])
def test_integer_codes_are_told_from_names(value, code):
    assert as_number(value) == code


@pytest.mark.parametrize("value, missing", [(None, True), (float("nan"), True), ("  ", True), ("", True),
                                            (0, False), ("land", False)])
def test_missing_labels(value, missing):
    assert is_missing(value) is missing

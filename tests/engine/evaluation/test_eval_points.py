import numpy as np
import pytest
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform

from sparsevit.errors import InputError
from sparsevit.evaluation.points import evaluate_points
from sparsevit.export.classes import import_pyogrio
from sparsevit.io.scene import Grid
from sparsevit.io.writers import write_classified
from sparsevit.schemes import load_scheme

UTM = CRS.from_epsg(32630)
X0, Y0 = 440000.0, 4220000.0


def make_pred(path):
    # left half Forest (1), right half Water (10), top-left 2x2 nodata; 10 m pixels
    arr = np.full((20, 20), 1, np.uint8)
    arr[:, 10:] = 10
    arr[:2, :2] = 255
    write_classified(path, Grid(UTM, Affine(10, 0, X0, 0, -10, Y0), 20, 20), load_scheme("dfc2020"), arr)
    return path


def centre(row, col):
    return X0 + 10 * col + 5, Y0 - 10 * row - 5


def write_points(path, xy, fields, crs="EPSG:4326", geoms=None, driver=None):
    pyogrio = import_pyogrio()
    if geoms is None:
        xs, ys = zip(*xy)
        if crs != "EPSG:32630":
            xs, ys = transform(UTM, crs, list(xs), list(ys))
        geoms = [shapely.Point(x, y) for x, y in zip(xs, ys)]
    names = list(fields)
    arrays = [np.asarray(fields[n], dtype=object if isinstance(fields[n][0], str) else None)
              for n in names]
    gtype = geoms[0].geom_type
    pyogrio.raw.write(str(path), shapely.to_wkb(np.array(geoms, dtype=object)), arrays, names,
                      driver=driver, geometry_type=gtype, crs=crs)
    return path


def test_names_inside_outside_nodata_and_reprojection(tmp_path):
    pred = make_pred(tmp_path / "pred.tif")
    xy = [centre(5, 3), centre(6, 4), centre(7, 15), centre(8, 16), centre(9, 2),
          centre(0, 0),  # nodata
          (X0 - 500, Y0)]  # outside
    labels = ["forest", "Forest", "WATER", "Forest", "Water", "Forest", "Water"]
    pts = write_points(tmp_path / "pts.geojson", xy, {"klass": labels})
    res = evaluate_points(pred, pts, "KLASS")  # field names match case-insensitively
    assert res["reprojected"] is True and res["field"] == "klass"
    assert res["point_counts"] == {"total": 7, "scored": 5, "outside": 1, "nodata": 1,
                                   "no_geometry": 0, "no_label": 0, "ignored": 0}
    assert sorted(s["reason"] for s in res["skipped"]) == ["nodata", "outside"]
    names = res["class_names"]
    f, w = names.index("Forest"), names.index("Water")
    cm = np.array(res["confusion_matrix"])
    assert cm[f, f] == 2 and cm[w, w] == 1 and cm[f, w] == 1 and cm[w, f] == 1
    assert cm.sum() == 5
    assert res["overall_accuracy"] == pytest.approx(3 / 5)


def test_integer_values_and_scheme_map_with_ignore(tmp_path):
    pred = make_pred(tmp_path / "pred.tif")
    xy = [centre(3, 3), centre(4, 12), centre(5, 13), centre(6, 5)]
    pts = write_points(tmp_path / "pts.gpkg", xy, {"code": [1, 10, 10, 3]}, crs="EPSG:32630")
    res = evaluate_points(pred, pts, "code")
    assert res["reprojected"] is False and res["point_counts"]["scored"] == 4
    names = res["class_names"]
    assert np.array(res["confusion_matrix"])[names.index("Savanna"), names.index("Forest")] == 1
    mapped = evaluate_points(pred, pts, "code", scheme_map={1: "Forest", 10: "Water", 3: None})
    assert mapped["point_counts"]["ignored"] == 1 and mapped["overall_accuracy"] == 1.0


def test_clear_errors(tmp_path):
    pred = make_pred(tmp_path / "pred.tif")
    pts = write_points(tmp_path / "p.gpkg", [centre(3, 3)], {"label": ["Forest"], "note": ["x"]},
                       crs="EPSG:32630")
    with pytest.raises(InputError, match=r"no field 'class'.*fields: label, note"):
        evaluate_points(pred, pts, "class")
    bad = write_points(tmp_path / "u.gpkg", [centre(3, 3)], {"label": ["Forrest"]}, crs="EPSG:32630")
    with pytest.raises(InputError, match="Forrest"):
        evaluate_points(pred, bad, "label")
    far = write_points(tmp_path / "far.gpkg", [(X0 - 1e4, Y0), (X0 + 1e5, Y0)],
                       {"label": ["Forest", "Water"]}, crs="EPSG:32630")
    with pytest.raises(InputError, match="none of the 2 points falls inside the raster"):
        evaluate_points(pred, far, "label")
    poly = write_points(tmp_path / "poly.gpkg", None, {"label": ["Forest"]}, crs="EPSG:32630",
                        geoms=[shapely.box(X0, Y0 - 50, X0 + 50, Y0)])
    with pytest.raises(InputError, match="Polygon geometries, not points"):
        evaluate_points(pred, poly, "label")

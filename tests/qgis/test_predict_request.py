"""One typed predict request (core/predict_job.PredictRequest) for the dock and Processing."""
from __future__ import annotations

import pytest
from conftest import REPO
from qgis.core import QgsCoordinateReferenceSystem, QgsRectangle


def test_request_builds_the_engine_arguments(tiny_bundle, tmp_path):
    from sparsevit_qgis.core.predict_job import PredictRequest

    req = PredictRequest(s2="/d/s2.tif", out=str(tmp_path), model=str(tiny_bundle / "bundle.json"),
                         s1="/d/s1.tif", area=(QgsRectangle(-0.78, 38.11, -0.76, 38.12),
                                               QgsCoordinateReferenceSystem("EPSG:4326")),
                         tile=256, level="coarse", attention=True, polygons=True, overview=False)
    args = req.to_args()
    assert args[:3] == ["/d/s2.tif", "--s1", "/d/s1.tif"]
    assert args[args.index("--model") + 1] == str(tiny_bundle)  # bundle.json -> its folder
    assert args[args.index("--out") + 1] == str(tmp_path)
    assert "--area=-0.78,38.11,-0.76,38.12" in args
    assert args[args.index("--area-crs") + 1] == "EPSG:4326"
    assert args[args.index("--tile") + 1] == "256" and args[args.index("--level") + 1] == "coarse"
    assert {"--attention", "--polygons", "--no-overview"} <= set(args)
    plain = PredictRequest(s2="/d/s2.tif", out=str(tmp_path), model=str(tiny_bundle)).to_args()
    assert plain == ["/d/s2.tif", "--model", str(tiny_bundle), "--out", str(tmp_path)]


@pytest.mark.parametrize("kw,match", [
    (dict(s2=""), "Sentinel-2 raster"),
    (dict(out=" "), "output folder"),
    (dict(tile=-1), "tile size"),
    (dict(level="medium"), "Unknown land-cover level"),
    (dict(model="/no/such/model"), "does not exist"),
    (dict(area=(QgsRectangle(), None)), "area is empty"),
])
def test_request_refuses_what_the_engine_cannot_run(kw, match, tmp_path):
    from sparsevit_qgis.core.predict_job import JobError, PredictRequest

    base = dict(s2="/d/s2.tif", out=str(tmp_path), model=str(REPO / "resources" / "models" / "default"))
    with pytest.raises(JobError, match=match):
        PredictRequest(**{**base, **kw}).to_args()

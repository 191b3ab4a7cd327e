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
                         tile=256, level="coarse", attention=True, polygons=True, overview=False,
                         cloud_mask=False)
    args = req.to_args()
    assert args[:3] == ["/d/s2.tif", "--s1", "/d/s1.tif"]
    assert args[args.index("--model") + 1] == str(tiny_bundle)  # bundle.json -> its folder
    assert args[args.index("--out") + 1] == str(tmp_path)
    assert "--area=-0.78,38.11,-0.76,38.12" in args
    assert args[args.index("--area-crs") + 1] == "EPSG:4326"
    assert args[args.index("--tile") + 1] == "256" and args[args.index("--level") + 1] == "coarse"
    assert {"--attention", "--polygons", "--no-overview", "--no-cloud-mask"} <= set(args)
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


DEFAULT_MODEL = REPO / "resources" / "models" / "default"


@pytest.mark.parametrize("compute,expected", [
    (dict(), []),  # every option "auto": the engine chooses, no argument at all
    (dict(device="auto", threads=0, precision="auto", batch_size=8), []),
    (dict(device=" Auto ", batch_size=0), []),
    (dict(device="cpu"), ["--device", "cpu"]),
    (dict(device="CUDA"), ["--device", "cuda"]),
    (dict(device="cuda:1"), ["--device", "cuda:1"]),
    (dict(threads=3), ["--threads", "3"]),
    (dict(precision="bf16"), ["--precision", "bf16"]),
    (dict(precision="FP32"), ["--precision", "fp32"]),
    (dict(batch_size=32), ["--batch-size", "32"]),
    (dict(batch_size=1), ["--batch-size", "1"]),
    (dict(device="cuda:0", threads=2, precision="bf16", batch_size=4),
     ["--device", "cuda:0", "--threads", "2", "--precision", "bf16", "--batch-size", "4"]),
    (dict(device="cpu", threads=16, precision="auto", batch_size=8), ["--device", "cpu", "--threads", "16"]),
])
def test_request_gives_compute_options_only_when_not_auto(compute, expected, tmp_path):
    from sparsevit_qgis.core.predict_job import PredictRequest

    base = ["/d/s2.tif", "--model", str(DEFAULT_MODEL), "--out", str(tmp_path)]
    args = PredictRequest(s2="/d/s2.tif", out=str(tmp_path), model=str(DEFAULT_MODEL), **compute).to_args()
    assert args == base + expected
    # before --tile and the output switches, so a form's last arguments stay where they were
    args = PredictRequest(s2="/d/s2.tif", out=str(tmp_path), model=str(DEFAULT_MODEL), tile=128,
                          polygons=True, **compute).to_args()
    assert args == base + expected + ["--tile", "128", "--polygons"]


@pytest.mark.parametrize("kw,match", [
    (dict(device="tpu"), "Unknown device"),
    (dict(device="cuda:x"), "Unknown device"),
    (dict(threads=-1), "CPU threads"),
    (dict(precision="fp16"), "Unknown precision"),
    (dict(batch_size=-4), "batch size"),
])
def test_request_refuses_compute_options_the_engine_lacks(kw, match, tmp_path):
    from sparsevit_qgis.core.predict_job import JobError, PredictRequest

    with pytest.raises(JobError, match=match):
        PredictRequest(s2="/d/s2.tif", out=str(tmp_path), model=str(DEFAULT_MODEL), **kw).to_args()


def test_fit_request_takes_the_same_device_and_threads(tmp_path):
    from sparsevit_qgis.core.fit_job import FitRequest

    labels = tmp_path / "tags.gpkg"
    base = dict(rasters=["/d/s2.tif"], labels=str(labels), out=str(tmp_path))
    assert "--device" not in FitRequest(**base).to_args() and "--threads" not in FitRequest(**base).to_args()
    args = FitRequest(**base, device="cuda:1", threads=3).to_args()
    assert args[-4:] == ["--threads", "3", "--device", "cuda:1"]

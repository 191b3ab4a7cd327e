import io
import json

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from sparsevit.errors import InputError
from sparsevit.evaluation import ConfusionMatrix, evaluate_rasters
from sparsevit.progress import Progress

CRS = "EPSG:32633"
X0, Y0 = 500000.0, 5200000.0


def write(path, data, res=10.0, x0=X0, y0=Y0, crs=CRS, nodata=None):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0],
                       count=1, dtype=data.dtype, crs=crs, transform=from_origin(x0, y0, res, res),
                       nodata=nodata) as ds:
        ds.write(data, 1)
    return path


def blocks(shape, block, n_classes, seed):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, n_classes, (shape[0] // block, shape[1] // block)).astype(np.uint8)
    return np.kron(small, np.ones((block, block), dtype=np.uint8))


def test_same_grid_equals_array_scores_and_streams_windows(tmp_path):
    ref = blocks((40, 48), 4, 4, 0)
    ref[:2] = 255
    pred = ref.copy()
    rng = np.random.default_rng(1)
    noise = rng.random(ref.shape) < 0.2
    pred[noise] = rng.integers(0, 4, noise.sum())
    write(tmp_path / "ref.tif", ref, nodata=255)
    write(tmp_path / "pred.tif", pred)
    expected = ConfusionMatrix(4).update(pred, ref).scores(json_safe=True)
    stream = io.StringIO()
    got = evaluate_rasters(tmp_path / "pred.tif", tmp_path / "ref.tif", block_pixels=48 * 7,
                           progress=Progress(json_lines=True, stream=stream))
    assert got["reprojected"] is False
    assert got["num_classes"] == 4  # inferred from the reference
    assert got["confusion_matrix"] == expected["confusion_matrix"]
    assert got["miou"] == pytest.approx(expected["miou"])
    assert got["coverage"] == 1.0
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    progress = [e for e in events if e["event"] == "progress"]
    assert progress[-1]["done"] == progress[-1]["total"] == 6  # ceil(40 / 7) windows
    json.dumps(got, allow_nan=False)


def test_scheme_maps_translate_codes(tmp_path):
    # reference in DFC codes 1..10, prediction in class indices; Savanna (3) is ignored
    ref = np.array([[1, 2, 3, 4], [10, 10, 6, 7]], dtype=np.uint8)
    pred = np.array([[0, 1, 1, 2], [7, 7, 4, 4]], dtype=np.uint8)
    write(tmp_path / "ref.tif", ref)
    write(tmp_path / "pred.tif", pred)
    dfc = {1: 0, 2: 1, 4: 2, 5: 3, 6: 4, 7: 5, 9: 6, 10: 7}
    got = evaluate_rasters(tmp_path / "pred.tif", tmp_path / "ref.tif", ref_scheme_map=dfc)
    assert got["num_classes"] == 8 and got["pixels"] == 7
    assert got["overall_accuracy"] == pytest.approx(6 / 7)  # urban (7 -> 5) predicted as 4
    # a prediction scheme map: codes not in it are "no prediction"
    got2 = evaluate_rasters(tmp_path / "pred.tif", tmp_path / "ref.tif", pred_scheme_map={0: 0, 1: 1},
                            ref_scheme_map=dfc)
    assert got2["unpredicted_pixels"] == 5


def test_prediction_on_coarser_partial_grid_is_warped(tmp_path):
    ref = blocks((32, 32), 4, 3, 2)
    # prediction at 20 m covering the left half only: exact 2x2 aggregation of the reference
    pred = ref[::2, :16:2].copy()
    write(tmp_path / "ref.tif", ref)
    write(tmp_path / "pred.tif", pred, res=20.0)
    got = evaluate_rasters(tmp_path / "pred.tif", tmp_path / "ref.tif", num_classes=3)
    assert got["reprojected"] is True
    assert got["overall_accuracy"] == pytest.approx(1.0)
    assert got["coverage"] == pytest.approx(0.5)
    assert got["pixels"] == 32 * 16
    miss = evaluate_rasters(tmp_path / "pred.tif", tmp_path / "ref.tif", num_classes=3,
                            uncovered="miss")
    assert miss["overall_accuracy"] == pytest.approx(0.5)
    assert miss["unpredicted_pixels"] == 32 * 16


def test_prediction_in_another_crs(tmp_path):
    ref = blocks((64, 64), 16, 4, 3)
    write(tmp_path / "ref.tif", ref)
    # the same labels in WGS84 via GDAL, nearest; edges may shift by a pixel
    from rasterio.warp import Resampling, calculate_default_transform, reproject
    src_t = from_origin(X0, Y0, 10, 10)
    dst_t, w, h = calculate_default_transform(CRS, "EPSG:4326", 64, 64, X0, Y0 - 640, X0 + 640, Y0)
    out = np.full((h, w), 255, dtype=np.uint8)
    reproject(ref, out, src_transform=src_t, src_crs=CRS, dst_transform=dst_t, dst_crs="EPSG:4326",
              resampling=Resampling.nearest, dst_nodata=255)
    with rasterio.open(tmp_path / "pred.tif", "w", driver="GTiff", width=w, height=h, count=1,
                       dtype="uint8", crs="EPSG:4326", transform=dst_t, nodata=255) as ds:
        ds.write(out, 1)
    got = evaluate_rasters(tmp_path / "pred.tif", tmp_path / "ref.tif", num_classes=4)
    assert got["reprojected"] is True
    assert got["overall_accuracy"] > 0.9
    assert got["coverage"] > 0.9


def test_disjoint_and_unreadable_rasters_raise_input_error(tmp_path):
    ref = blocks((16, 16), 4, 2, 0)
    write(tmp_path / "ref.tif", ref)
    write(tmp_path / "far.tif", ref, x0=X0 + 10000)
    with pytest.raises(InputError, match="do not overlap"):
        evaluate_rasters(tmp_path / "far.tif", tmp_path / "ref.tif")
    with pytest.raises(InputError, match="not found"):
        evaluate_rasters(tmp_path / "missing.tif", tmp_path / "ref.tif")
    (tmp_path / "junk.tif").write_text("not a raster")
    with pytest.raises(InputError, match="cannot be read"):
        evaluate_rasters(tmp_path / "junk.tif", tmp_path / "ref.tif")
    write(tmp_path / "nocrs.tif", ref, crs=None, res=20.0)
    with pytest.raises(InputError, match="coordinate reference system"):
        evaluate_rasters(tmp_path / "nocrs.tif", tmp_path / "ref.tif")

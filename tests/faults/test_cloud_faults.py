"""Cloud faults through the real CLI: a cloud is no land cover (no data in the map, -1 in the
confidence, out of the areas, counted in the run record); a cloud mask the engine cannot read is
a clear error that loses nothing; --no-cloud-mask maps the clouds."""
from __future__ import annotations

import json

import numpy as np
import rasterio
from fixtures.cli_runs import T10, UTM, assert_clean_error, run_cli, s2_data, snapshot, write_s2


def _product(folder, scl=None, corrupt=False):
    """Band stack + an L2A scene classification beside it (as Earth Engine / openEO export SCL)."""
    folder.mkdir()
    write_s2(folder / "bands.tif", data=s2_data())
    if scl is not None:
        with rasterio.open(folder / "S2_SCL.tif", "w", driver="GTiff", width=64, height=64, count=1,
                           dtype="uint8", crs=UTM, transform=T10) as ds:
            ds.write(scl, 1)
        if corrupt:
            f = folder / "S2_SCL.tif"
            f.write_bytes(f.read_bytes()[:300])
    return folder


def _predict(capsys, src, model, out, *extra):
    return run_cli(capsys, ["--json", "predict", str(src), "--model", str(model), "--out", str(out),
                            "--tile", "32", "--overlap", "4", "--no-overview", *extra])


def test_clouds_of_the_scene_classification_are_no_land_cover(capsys, tmp_path, tiny_bundle, out_dir):
    scl = np.full((64, 64), 4, np.uint8)
    scl[:20, :30] = 9  # cloud, high probability
    scl[40:44, 40:60] = 3  # its shadow
    src = _product(tmp_path / "p", scl)
    code, out, err = _predict(capsys, src, tiny_bundle, out_dir)
    assert code == 0, err
    cloudy = np.isin(scl, (3, 9))
    with rasterio.open(out_dir / "p_landcover.tif") as lc, rasterio.open(out_dir / "p_confidence.tif") as cf:
        lcv, cfv = lc.read(1), cf.read(1)
    assert (lcv[cloudy] == 255).all() and (lcv[~cloudy] != 255).all()
    assert (cfv[cloudy] == -1).all() and (cfv[~cloudy] >= 0).all()
    run = json.loads((out_dir / "p_run.json").read_text())
    assert run["counts"]["cloud_pixels"] == int(cloudy.sum()) and run["counts"]["clouds"]["kind"] == "scl"
    areas = json.loads((out_dir / "p_class_areas.json").read_text())
    assert sum(c["pixels"] for c in areas["classes"]) == 64 * 64 - int(cloudy.sum())
    logs = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    assert any(e.get("event") == "log" and "clouds:" in e.get("message", "") and "masked" in e["message"]
               for e in logs), out
    # --no-cloud-mask: every pixel mapped
    code, _, err = _predict(capsys, src, tiny_bundle, out_dir, "--no-cloud-mask", "--name", "all")
    assert code == 0, err
    with rasterio.open(out_dir / "all_landcover.tif") as lc:
        assert (lc.read(1) != 255).all()


def test_a_corrupt_cloud_mask_is_a_clear_error_and_loses_nothing(capsys, tmp_path, tiny_bundle, out_dir):
    src = _product(tmp_path / "p", np.full((64, 64), 4, np.uint8), corrupt=True)
    (out_dir / "older.txt").write_text("an older output")
    before = snapshot(out_dir)
    code, _, err = _predict(capsys, src, tiny_bundle, out_dir)
    assert_clean_error(code, err, "predict", "S2_SCL.tif", "--no-cloud-mask", exit_code=2)
    assert snapshot(out_dir) == before
    code, _, err = _predict(capsys, src, tiny_bundle, out_dir, "--no-cloud-mask")
    assert code == 0, err


def test_a_scene_entirely_under_clouds_gives_empty_maps_and_says_so(capsys, tmp_path, tiny_bundle, out_dir):
    src = _product(tmp_path / "p", np.full((64, 64), 9, np.uint8))
    code, out, err = _predict(capsys, src, tiny_bundle, out_dir)
    assert code == 0, err
    with rasterio.open(out_dir / "p_landcover.tif") as lc:
        assert (lc.read(1) == 255).all()
    areas = json.loads((out_dir / "p_class_areas.json").read_text())
    assert sum(c["pixels"] for c in areas["classes"]) == 0
    assert "100.0 % of the valid pixels masked" in out


def test_without_the_suns_position_shadows_are_said_to_stay_mapped(capsys, tmp_path, tiny_bundle, out_dir):
    src = _product(tmp_path / "p")  # bands only: the brightness flag, no sun angles
    code, out, err = _predict(capsys, src, tiny_bundle, out_dir)
    assert code == 0, err
    assert "cloud shadows: not masked (the input does not say where the sun was)" in out
    run = json.loads((out_dir / "p_run.json").read_text())
    assert run["counts"]["clouds"]["kind"] == "brightness" and "shadows" not in run["counts"]["clouds"]

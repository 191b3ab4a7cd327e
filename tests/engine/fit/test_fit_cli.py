"""``sparsevit grid`` and ``sparsevit fit`` end to end on a small river scene (tiny base model,
one epoch per stage: the plumbing, the outputs and the contract, not the accuracy, which
``benchmarks/bench_fit.py`` measures)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from fixtures.bundle import write_tiny_bundle
from fixtures.cli_runs import assert_clean_error, run_cli
from fixtures.fit_scenes import SCHEME, river_scene

from sparsevit.bundle import load_bundle
from sparsevit.export.classes import import_pyogrio

QUICK = ["--epochs", "1", "--refine-epochs", "1", "--iterations", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return write_tiny_bundle(tmp_path_factory.mktemp("base"), tile=64, overlap=8, class_tokens=True,
                             band_flexible=True)


def _tag_grid(grid, truth, tile=32):
    raw = import_pyogrio().raw
    meta, _, wkb, fields = raw.read(str(grid))
    names = list(meta["fields"])
    tags = []
    for r, c in zip(fields[names.index("row")], fields[names.index("col")]):
        cell = truth[r:r + tile, c:c + tile]
        tags.append(";".join(n for k, n in enumerate(("water", "land")) if np.mean(cell == k) >= 0.05))
    fields[names.index("classes")] = np.array(tags, dtype=object)
    raw.write(str(grid), wkb, fields, names, layer="tiles", driver="GPKG", crs=meta["crs"], geometry_type="Polygon")


def test_grid_then_fit_writes_a_model_in_the_users_classes_and_its_map(capsys, tmp_path, base):
    raster, truth = river_scene(tmp_path / "river.tif")
    (tmp_path / "classes.json").write_text(json.dumps(SCHEME))
    code, out, err = run_cli(capsys, ["--json", "grid", str(raster), "--tile", "32", "--out", str(tmp_path / "g.gpkg")])
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e for e in events if e["event"] == "result"][-1]["cells"] == 16
    _tag_grid(tmp_path / "g.gpkg", truth)
    code, out, err = run_cli(capsys, ["--json", "fit", str(raster), "--labels", str(tmp_path / "g.gpkg"),
                                      "--classes", str(tmp_path / "classes.json"), "--base", str(base),
                                      "--out", str(tmp_path / "run"), *QUICK])
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    stages = [e["stage"] for e in events if e["event"] == "stage_start"]
    assert stages[:3] == ["labels", "read tiles", "train epoch 1/1"] and "spectral refinement" in stages
    result = [e for e in events if e["event"] == "result"][-1]
    held = result["tiles"].pop("holdout_ids")
    assert result["tiles"] == {"tagged": 16, "train": 13, "holdout": 3, "dropped_no_data": 0}
    assert len(set(held)) == 3  # named, so a comparison can train on the same 13 tiles
    assert result["scheme"]["name"] == "water_land"
    model = load_bundle(result["outputs"]["model"])
    assert model.scheme.names == ("water", "land") and model.card["tag_tile"] == 32
    assert model.classifier.config.num_classes == 2
    with rasterio.open(result["outputs"]["landcover"]) as ds:
        values = set(np.unique(ds.read(1)).tolist())
        assert values <= {1, 2}
        assert ds.colormap(1)[1][:3] == (0x1f, 0x78, 0xb4)  # the analyst's water colour
    assert "holdout_classifier_macro_f1" in result["metrics"]
    assert not (tmp_path / "run" / ".fit-work").exists()
    # the model maps another raster through plain predict
    (tmp_path / "again").mkdir()
    code, _, err = run_cli(capsys, ["predict", str(raster), "--model", result["outputs"]["model"],
                                    "--out", str(tmp_path / "again"), "--no-overview"])
    assert code == 0, err


def test_fit_from_points_without_a_scheme_takes_the_label_values(capsys, tmp_path, base):
    import shapely
    from fixtures.fit_scenes import pixel_center
    raster, _ = river_scene(tmp_path / "river.tif")
    pts = [shapely.Point(*pixel_center(r, c)) for r, c in ((10, 50), (50, 50), (90, 60), (10, 10), (50, 100), (100, 5))]
    raw = import_pyogrio().raw
    raw.write(str(tmp_path / "p.gpkg"), shapely.to_wkb(np.array(pts, dtype=object)),
              [np.array(["water"] * 3 + ["land"] * 3, dtype=object)], ["cls"], layer="pts", driver="GPKG",
              crs="EPSG:32633", geometry_type="Point")
    code, out, err = run_cli(capsys, ["--json", "fit", str(raster), "--labels", str(tmp_path / "p.gpkg"),
                                      "--field", "cls", "--tile", "32", "--base", str(base), "--no-predict",
                                      "--holdout", "0", "--out", str(tmp_path / "run"), *QUICK])
    assert code == 0, err
    result = [json.loads(x) for x in out.splitlines() if '"result"' in x][-1]
    assert [c["name"] for c in result["scheme"]["classes"]] == ["land", "water"]
    assert set(result["outputs"]) == {"model", "fit"}
    # a second run into the same folder is refused, not overwritten
    code, _, err = run_cli(capsys, ["fit", str(raster), "--labels", str(tmp_path / "p.gpkg"), "--field", "cls",
                                    "--tile", "32", "--base", str(base), "--no-predict", "--out",
                                    str(tmp_path / "run"), *QUICK])
    assert_clean_error(code, err, "fit", "model", exit_code=3)


def test_one_class_only_is_refused_before_training(capsys, tmp_path, base):
    import shapely
    from fixtures.fit_scenes import pixel_center
    raster, _ = river_scene(tmp_path / "river.tif")
    raw = import_pyogrio().raw
    raw.write(str(tmp_path / "p.gpkg"), shapely.to_wkb(np.array([shapely.Point(*pixel_center(5, 5))], dtype=object)),
              [np.array(["land"], dtype=object)], ["cls"], layer="pts", driver="GPKG", crs="EPSG:32633",
              geometry_type="Point")
    code, _, err = run_cli(capsys, ["fit", str(raster), "--labels", str(tmp_path / "p.gpkg"), "--field", "cls",
                                    "--tile", "32", "--base", str(base), "--out", str(tmp_path / "run"), *QUICK])
    assert_clean_error(code, err, "fit", "p.gpkg", exit_code=2)
    assert "one class only" in err and not (tmp_path / "run" / "model").exists()


def test_cancelled_fit_leaves_no_model_and_resume_reuses_the_classifier(capsys, tmp_path, base, monkeypatch):
    from sparsevit.fit import pipeline
    raster, truth = river_scene(tmp_path / "river.tif")
    run_cli(capsys, ["grid", str(raster), "--tile", "32", "--out", str(tmp_path / "g.gpkg")])
    _tag_grid(tmp_path / "g.gpkg", truth)
    cancel = tmp_path / "cancel.flag"
    real_refine = pipeline.spectral_refine

    def cancel_after_pseudomasks(*a, **k):
        cancel.write_text("stop")
        return real_refine(*a, **k)

    monkeypatch.setattr(pipeline, "spectral_refine", cancel_after_pseudomasks)
    args = ["fit", str(raster), "--labels", str(tmp_path / "g.gpkg"), "--base", str(base), "--no-predict",
            "--out", str(tmp_path / "run"), *QUICK]
    code, _, err = run_cli(capsys, ["--cancel-file", str(cancel), *args])
    assert code == 130, err
    assert not (tmp_path / "run" / "model").exists()
    assert (tmp_path / "run" / ".fit-work" / "classifier.safetensors").exists()
    cancel.unlink()
    monkeypatch.setattr(pipeline, "spectral_refine", real_refine)
    code, out, err = run_cli(capsys, ["--json", *args, "--resume"])
    assert code == 0, err
    assert "classifier of the interrupted run reused" in out and "pseudomasks of the interrupted run reused" in out

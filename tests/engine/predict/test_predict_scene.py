import json
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio

from sparsevit.bundle import load_bundle
from sparsevit.cli import main
from sparsevit.errors import InputError, OutputError
from sparsevit.predict import PredictOptions, predict_scene
from sparsevit.progress import Progress

S2 = "resources/sample/Spain_7370579_S2Hand.tif"


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return load_bundle(tiny_bundle)


def test_predict_writes_every_output_on_the_input_grid(bundle, tmp_path, repo_root):
    s2 = repo_root / S2
    summary = predict_scene(bundle, s2, tmp_path, opts=PredictOptions(attention=True, batch_size=4))
    out = summary["outputs"]
    for key in ("landcover", "pseudomask", "confidence", "attention", "areas_csv", "areas_json",
                "overview", "run"):
        assert os.path.exists(out[key]), key
    with rasterio.open(s2) as src, rasterio.open(out["landcover"]) as lc:
        assert lc.crs == src.crs and lc.transform == src.transform
        assert (lc.width, lc.height) == (src.width, src.height)
        assert lc.dtypes[0] == "uint8" and lc.nodata == 255
        assert lc.colormap(1)[0][:3] == tuple(int(bundle.scheme.classes[0].color[i:i + 2], 16) for i in (1, 3, 5))
        values = set(np.unique(lc.read(1)).tolist())
    assert values <= set(bundle.scheme.values) | {255}
    assert os.path.exists(out["landcover"][:-4] + ".qml")
    with rasterio.open(out["attention"]) as at:
        assert at.count == 3 and at.descriptions[0] == "block1_head0"
    assert summary["counts"]["tiles"] == 25  # 512 px, tile 128, overlap 16
    assert not [p for p in os.listdir(tmp_path) if ".partial" in p or p.startswith(".")]
    areas = json.loads(open(out["areas_json"]).read())
    assert abs(sum(r["percent"] for r in areas["classes"]) - 100) < 0.5


def test_area_subset_and_existing_outputs(bundle, tmp_path, repo_root):
    s2 = repo_root / S2
    with rasterio.open(s2) as src:
        b = src.bounds
        t = src.transform
    area = (b.left + 100 * t.a, b.top - 200 * abs(t.e), b.left + 250 * t.a, b.top - 100 * abs(t.e))
    opts = PredictOptions(area=area, overview=False, stats=False)
    summary = predict_scene(bundle, s2, tmp_path, opts=opts)
    with rasterio.open(summary["outputs"]["landcover"]) as lc:
        assert (lc.width, lc.height) == (150, 100)
        assert lc.transform.c == pytest.approx(area[0])
    with pytest.raises(OutputError, match="already exist"):
        predict_scene(bundle, s2, tmp_path, opts=opts)
    opts.overwrite = True
    predict_scene(bundle, s2, tmp_path, opts=opts)
    with pytest.raises(InputError, match="does not overlap"):
        predict_scene(bundle, s2, tmp_path, opts=PredictOptions(area=(0, 0, 1e-3, 1e-3), overwrite=True))


def test_cancel_leaves_nothing_behind(bundle, tmp_path, repo_root):
    cancel = tmp_path / "cancel"
    out = tmp_path / "out"
    out.mkdir()

    from sparsevit.errors import Cancelled
    prog = Progress(json_lines=False, bar=False, cancel_file=str(cancel))
    orig = prog.check_cancelled
    calls = {"n": 0}

    def check():  # the cancel file appears once a few tiles are done
        calls["n"] += 1
        if calls["n"] > 3:
            cancel.touch()
        orig()

    prog.check_cancelled = check
    with pytest.raises(Cancelled):
        predict_scene(bundle, repo_root / S2, out, opts=PredictOptions(batch_size=2), progress=prog)
    assert os.listdir(out) == []


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(bundle, tmp_path, repo_root):
    """SIGKILL (the plugin's hard stop after a cancel) leaves OUT/.<stem>.partial-<pid>-*; the
    next run removes it once that process is gone, and leaves a live run's folder alone."""
    import subprocess
    import sys
    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stem = Path(S2).stem
    dead = out / f".{stem}.partial-{int(gone.stdout)}-abc"
    alive = out / f".{stem}.partial-{os.getpid()}-def"
    for d in (dead, alive):
        d.mkdir()
        (d / "half.tif").write_bytes(b"half")
    predict_scene(bundle, repo_root / S2, out, opts=PredictOptions(overview=False, stats=False))
    assert not dead.exists() and alive.is_dir()
    assert (out / f"{stem}_landcover.tif").is_file()


def test_cli_predict_json_events(tiny_bundle, tmp_path, repo_root, capsys):
    code = main(["--json", "predict", str(repo_root / S2), "--model", str(tiny_bundle),
                 "--out", str(tmp_path), "--no-overview", "--tile", "256"])
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and "result" in kinds
    assert any(e["event"] == "log" and e["message"].startswith("device: CPU") for e in events)
    result = next(e for e in events if e["event"] == "result")
    assert result["scheme"] == "eurosat" and os.path.exists(result["outputs"]["landcover"])


def test_model_needing_missing_bands_is_a_clear_error(tiny_bundle, tmp_path, capsys):
    rgb = tmp_path / "rgb.tif"
    with rasterio.open(rgb, "w", driver="GTiff", width=32, height=32, count=3, dtype="uint16",
                       crs="EPSG:32633", transform=rasterio.transform.from_origin(0, 0, 10, 10)) as ds:
        ds.write(np.full((3, 32, 32), 1000, np.uint16))
        ds.descriptions = ("B04", "B03", "B02")
    out = tmp_path / "out"
    out.mkdir()
    code = main(["predict", str(rgb), "--model", str(tiny_bundle), "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing Sentinel-2 bands B01" in err[0] and "rgb.tif" in err[0]
    assert os.listdir(out) == []


def test_bf16_precision_runs_and_is_recorded(bundle, tmp_path, repo_root):
    summary = predict_scene(bundle, repo_root / S2, tmp_path,
                            opts=PredictOptions(precision="bf16", overview=False, stats=False,
                                                area=None, tile=256))
    assert summary["counts"]["precision"] == "bf16"
    with rasterio.open(summary["outputs"]["landcover"]) as lc:
        assert set(np.unique(lc.read(1)).tolist()) <= set(bundle.scheme.values) | {255}


def test_auto_precision_follows_the_cpu(bundle, tmp_path, repo_root, monkeypatch):
    """``auto`` runs bf16 on a CPU with native bf16 (the same maps on 98-99.6 % of the pixels of
    the real scenes, benchmarks/results/predict.md) and float32 elsewhere; the record says which."""
    from sparsevit import devices

    for native, expect in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda native=native: native)
        out = tmp_path / expect
        out.mkdir()
        summary = predict_scene(bundle, repo_root / S2, out,
                                opts=PredictOptions(overview=False, stats=False, device="cpu"))
        assert summary["counts"]["precision"] == expect


def test_class_token_bundle_predicts_with_its_own_masks(tmp_path, repo_root):
    from fixtures.bundle import write_tiny_bundle
    (tmp_path / "ct").mkdir()
    b = load_bundle(write_tiny_bundle(tmp_path / "ct", class_tokens=True))
    assert b.classifier.config.class_tokens and b.pseudomask.method == "attention_class_tokens"
    (tmp_path / "out").mkdir()
    summary = predict_scene(b, repo_root / S2, tmp_path / "out", opts=PredictOptions(batch_size=4))
    with rasterio.open(summary["outputs"]["pseudomask"]) as pm:
        values = set(np.unique(pm.read(1)).tolist())
    # three confident classes (head bias): the multi-class path painted more than one of them
    assert len(values - {255}) >= 2 and values <= set(b.scheme.values) | {255}
    assert summary["counts"]["tiles"] == 25


def _subset_raster(repo_root, path, bands):
    """The bundled sample scene cut down to ``bands`` (named by band descriptions)."""
    with rasterio.open(repo_root / S2) as src:
        names = [d.upper().replace("B", "B0") if len(d) == 2 else d for d in src.descriptions]
        names = ["B8A" if n == "B8A" else n for n in names]
        idx = [names.index(b) + 1 for b in bands]
        profile = src.profile | {"count": len(bands)}
        data = src.read(idx)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = tuple(bands)
    return path


@pytest.fixture(scope="module")
def flexible(tmp_path_factory):
    from fixtures.bundle import write_tiny_bundle
    return load_bundle(write_tiny_bundle(tmp_path_factory.mktemp("flex"), band_flexible=True))


def test_band_flexible_model_reads_a_band_subset_and_says_what_is_missing(flexible, tmp_path, repo_root):
    rgb = _subset_raster(repo_root, tmp_path / "rgb.tif", ["B04", "B03", "B02"])
    (tmp_path / "out").mkdir()
    logs = []

    class Capture(Progress):
        def log(self, message, level="info"):
            logs.append((level, message))

    summary = predict_scene(flexible, rgb, tmp_path / "out", s1=repo_root / S2.replace("S2Hand", "S1Hand"),
                            opts=PredictOptions(overview=False, batch_size=4), progress=Capture())
    bands = summary["counts"]["bands"]
    assert bands["used"] == ["B02", "B03", "B04"] and "B08" in bands["missing"]
    assert bands["s1_ignored"] and any("Sentinel-1 input ignored" in m for _, m in logs)
    assert any(m.startswith("bands: using 3 of the model's 12") and "missing B01" in m for _, m in logs)
    with rasterio.open(summary["outputs"]["landcover"]) as lc:
        rgb_map = lc.read(1)
    assert set(np.unique(rgb_map).tolist()) <= set(flexible.scheme.values)  # no pixel lost
    # all bands: a different input, so (for this untrained model too) a different map
    (tmp_path / "full").mkdir()
    full = predict_scene(flexible, repo_root / S2, tmp_path / "full",
                         opts=PredictOptions(overview=False, stats=False, batch_size=4))
    assert full["counts"]["bands"]["missing"] == []
    with rasterio.open(full["outputs"]["landcover"]) as lc:
        assert not np.array_equal(lc.read(1), rgb_map)


def test_band_flexible_model_still_needs_its_required_bands(flexible, tmp_path, repo_root):
    two = _subset_raster(repo_root, tmp_path / "two.tif", ["B08", "B03"])
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match="missing Sentinel-2 bands B02, B04"):
        predict_scene(flexible, two, tmp_path / "out")
    assert os.listdir(tmp_path / "out") == []

"""Many scenes: ``predict --scenes`` split over two torchrun workers, failures kept apart, resume."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import rasterio
from rasterio.windows import Window

from sparsevit.errors import InputError
from sparsevit.predict.batch import Worker, read_scene_list, scene_stem, worker_from

SAMPLE = "resources/sample/Spain_7370579_S2Hand.tif"


def _chip(repo_root, path, row, col, size=96):
    with rasterio.open(repo_root / SAMPLE) as src:
        win = Window(col, row, size, size)
        profile = src.profile | {"width": size, "height": size, "transform": src.window_transform(win)}
        data, names = src.read(window=win), src.descriptions
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = names
    return path


@pytest.fixture()
def scene_folder(tmp_path, repo_root):
    folder = tmp_path / "scenes"
    folder.mkdir()
    for k, (r, c) in enumerate([(0, 0), (96, 96), (192, 0), (0, 192)]):
        _chip(repo_root, folder / f"chip{k}.tif", r, c)
    return folder


def _engine(*args, env_extra=None, torchrun=0, cwd=None):
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **(env_extra or {}))
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={torchrun}",
                "-m", "sparsevit"] if torchrun else [sys.executable, "-m", "sparsevit"]
    return subprocess.run([*launcher, *args], capture_output=True, text=True, env=env, timeout=600, cwd=cwd)


def test_scene_list_from_a_text_file_or_a_folder(tmp_path, scene_folder):
    (scene_folder / "chip0.tif.aux.xml").write_text("<PAMDataset/>")
    (scene_folder / ".hidden.tif").write_text("")
    (scene_folder / "notes.txt").write_text("")
    assert [p.name for p in read_scene_list(scene_folder)] == [f"chip{k}.tif" for k in range(4)]
    listing = tmp_path / "scenes.txt"
    listing.write_text("# my scenes\nscenes/chip2.tif\n\n  scenes/chip0.tif  # the first\n")
    assert [p.name for p in read_scene_list(listing)] == ["chip2.tif", "chip0.tif"]
    listing.write_text("scenes/chip0.tif\nscenes/missing.tif\n")
    with pytest.raises(InputError, match="line 2 names a scene that does not exist: scenes/missing.tif"):
        read_scene_list(listing)
    listing.write_text("# nothing yet\n")
    with pytest.raises(InputError, match="names no scene"):
        read_scene_list(listing)


def test_workers_split_the_list_and_names_become_folders():
    a, b = Worker(0, 2), Worker(1, 2)
    assert [i for i in range(5) if a.owns(i)] == [0, 2, 4] and [i for i in range(5) if b.owns(i)] == [1, 3]
    assert worker_from(None, {"RANK": "1", "WORLD_SIZE": "3"}) == Worker(1, 3)
    assert worker_from("2/4", {"RANK": "0", "WORLD_SIZE": "1"}) == Worker(2, 4)
    assert worker_from(None, {}) == Worker(0, 1)
    for bad in ("4/4", "1-4", "-1/2"):
        with pytest.raises(InputError, match="worker"):
            worker_from(bad, {})
    from pathlib import Path
    assert scene_stem(Path("S2A_MSIL1C_20230601T103031_N0509.SAFE")) == "S2A_MSIL1C_20230601T103031_N0509"


def test_two_torchrun_workers_share_the_scenes_keep_failures_apart_and_resume(tmp_path, scene_folder,
                                                                             tiny_bundle):
    (scene_folder / "broken.tif").write_bytes(b"not a GeoTIFF")
    out = tmp_path / "maps"
    out.mkdir()
    args = ["predict", "--scenes", str(scene_folder), "--out", str(out), "--model", str(tiny_bundle),
            "--no-overview", "--threads", "1"]
    first = _engine(*args, torchrun=2)
    assert first.returncode != 0, "a failed scene must fail the run (torchrun reports its worker's 2 as 1)"
    records = [json.loads((out / ".batch" / f"worker-{r}-of-2.json").read_text()) for r in (0, 1)]
    done = [d["scene"] for rec in records for d in rec["done"]]
    failed = [f["scene"] for rec in records for f in rec["failed"]]
    # sorted list: broken, chip0..chip3 -> worker 0 gets broken, chip1, chip3; worker 1 chip0, chip2
    assert sorted(d["scene"] for d in records[1]["done"]) == ["chip0", "chip2"]
    assert sorted(done) == ["chip0", "chip1", "chip2", "chip3"] and len(failed) == 1
    assert failed[0].endswith("broken.tif") and "broken.tif" in records[0]["failed"][0]["error"]
    for k in range(4):
        run = json.loads((out / f"chip{k}" / f"chip{k}_run.json").read_text())
        with rasterio.open(out / f"chip{k}" / f"chip{k}_landcover.tif") as ds:
            assert ds.width == 96
        assert run
    assert not list(out.rglob(".*partial-*"))

    # resume: one process, nothing finished is redone; a scene whose run record is gone is
    (out / "chip2" / "chip2_run.json").unlink()
    again = _engine("--json", *args)
    assert again.returncode == 2
    rec = json.loads((out / ".batch" / "worker-0-of-1.json").read_text())
    assert [d["scene"] for d in rec["done"]] == ["chip2"]
    assert sorted(rec["skipped"]) == ["chip0", "chip1", "chip3"] and len(rec["failed"]) == 1
    events = [json.loads(line) for line in again.stdout.splitlines() if line.startswith("{")]
    assert [e for e in events if e["event"] == "result"][-1]["batch"]["skipped"] == rec["skipped"]


def test_batch_refuses_single_scene_options_and_both_inputs(tmp_path, scene_folder, tiny_bundle):
    out = tmp_path / "maps"
    out.mkdir()
    both = _engine("predict", str(scene_folder / "chip0.tif"), "--scenes", str(scene_folder), "--out", str(out))
    assert both.returncode != 0 and "either the scene" in both.stderr
    named = _engine("predict", "--scenes", str(scene_folder), "--out", str(out), "--name", "x")
    assert named.returncode != 0 and "--name applies to one scene" in named.stderr
    assert not any(out.iterdir())

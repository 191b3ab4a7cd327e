"""Output folders that are missing, not folders, not writable or full; outputs that exist."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import rasterio.shutil
from fixtures.cli_runs import assert_clean_error, run_cli, snapshot, write_s2

ARGS = ("--tile", "32", "--overlap", "4")


@pytest.fixture
def s2(tmp_path):
    return write_s2(tmp_path / "s2.tif")


def _predict(capsys, s2, model, out, *extra):
    return run_cli(capsys, ["--json", "predict", str(s2), "--model", str(model), "--out", str(out),
                            *ARGS, *extra])


def test_output_folder_missing(capsys, tmp_path, s2, tiny_bundle):
    code, _, err = _predict(capsys, s2, tiny_bundle, tmp_path / "nope")
    assert "does not exist" in assert_clean_error(code, err, "predict", tmp_path / "nope", exit_code=3)
    assert not (tmp_path / "nope").exists()


def test_output_folder_is_a_file(capsys, tmp_path, s2, tiny_bundle):
    f = tmp_path / "out"
    f.write_bytes(b"keep me")
    code, _, err = _predict(capsys, s2, tiny_bundle, f)
    assert "is a file, not a folder" in assert_clean_error(code, err, "predict", f, exit_code=3)
    assert f.read_bytes() == b"keep me"


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="needs sysfs")
def test_output_folder_not_writable(capsys, s2, tiny_bundle):
    # Tests run as root, for whom chmod 555 changes nothing and os.access says yes; sysfs
    # refuses to create files for everyone, which is what a read-only share looks like.
    code, _, err = _predict(capsys, s2, tiny_bundle, "/sys")
    assert "cannot write into the output folder" in assert_clean_error(code, err, "predict", "/sys",
                                                                       exit_code=3)


def test_output_folder_not_writable_for_user(capsys, out_dir, s2, tiny_bundle, monkeypatch):
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m, *a, **k: False if (m & os.W_OK) and Path(p) == out_dir
                        else real(p, m, *a, **k))
    code, _, err = _predict(capsys, s2, tiny_bundle, out_dir)
    assert "not writable" in assert_clean_error(code, err, "predict", out_dir, exit_code=3)
    assert snapshot(out_dir) == {}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, tiny_bundle):
    """Outputs of one good run of s2.tif, made once and copied into each case's folder."""
    from sparsevit.cli import main
    root = tmp_path_factory.mktemp("baseline")
    s2 = write_s2(root / "s2.tif")
    (root / "out").mkdir()
    assert main(["predict", str(s2), "--model", str(tiny_bundle), "--out", str(root / "out"), *ARGS]) == 0
    return snapshot(root / "out")


@pytest.fixture
def _existing_files(baseline, out_dir):
    for name, data in baseline.items():
        (out_dir / name).write_bytes(data)
    return baseline


def _existing(capsys, s2, tiny_bundle, out_dir):
    return snapshot(out_dir)


def test_output_already_exists(capsys, s2, tiny_bundle, out_dir, _existing_files):
    before = _existing(capsys, s2, tiny_bundle, out_dir)
    code, _, err = _predict(capsys, s2, tiny_bundle, out_dir)
    line = assert_clean_error(code, err, "predict", "s2_landcover.tif", exit_code=3)
    assert "--overwrite" in line
    assert snapshot(out_dir) == before


@pytest.mark.parametrize("where", ["cog-layout", "run-json", "commit"])
def test_full_disk_keeps_existing_outputs(capsys, s2, tiny_bundle, out_dir, monkeypatch, where,
                                         _existing_files):
    before = _existing(capsys, s2, tiny_bundle, out_dir)

    def enospc(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if where == "cog-layout":
        monkeypatch.setattr(rasterio.shutil, "copy", enospc)
    elif where == "run-json":
        real = Path.write_text
        monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: enospc() if self.name.endswith("_run.json")
                            else real(self, *a, **k))
    else:
        import sparsevit.predict.scene as ps
        real_replace = os.replace
        monkeypatch.setattr(ps.os, "replace", lambda s, d: enospc() if "landcover.tif" in str(d)
                            else real_replace(s, d))
    code, _, err = _predict(capsys, s2, tiny_bundle, out_dir, "--overwrite")
    line = assert_clean_error(code, err, "predict", exit_code=3)
    assert "No space left on device" in line
    if where != "commit":  # a commit that fails half-way has already replaced some files
        assert snapshot(out_dir) == before
    else:
        assert set(snapshot(out_dir)) == set(before)
        assert snapshot(out_dir)["s2_landcover.tif"] == before["s2_landcover.tif"]


def test_other_run_writes_same_names_meanwhile(capsys, s2, tiny_bundle, out_dir, monkeypatch):
    """Two jobs into one folder: the later commit refuses instead of clobbering the first."""
    import sparsevit.cli as cli

    class Racer(cli.Progress):
        def emit(self, event, **f):
            if event == "stage_start" and f.get("stage") == "overview":
                (out_dir / "s2_confidence.tif").write_bytes(b"the other run's file")
            super().emit(event, **f)
    monkeypatch.setattr(cli, "Progress", Racer)
    code, _, err = _predict(capsys, s2, tiny_bundle, out_dir)
    line = assert_clean_error(code, err, "predict", "s2_confidence.tif", exit_code=3)
    assert "another run wrote them meanwhile" in line
    assert snapshot(out_dir) == {"s2_confidence.tif": b"the other run's file"}

"""Model files that are missing, corrupt, hostile or do not fit the input."""
from __future__ import annotations

import json
import pickle
import shutil

import pytest
import torch
from fixtures.cli_runs import assert_clean_error, run_cli, snapshot, write_s2


@pytest.fixture
def s2(tmp_path):
    return write_s2(tmp_path / "s2.tif")


@pytest.fixture
def model_copy(tmp_path, tiny_bundle):
    dst = tmp_path / "model"
    shutil.copytree(tiny_bundle, dst)
    return dst


def _fails(capsys, s2, model, out_dir, *names):
    before = snapshot(out_dir)
    code, _, err = run_cli(capsys, ["--json", "predict", str(s2), "--model", str(model),
                                    "--out", str(out_dir)])
    line = assert_clean_error(code, err, "predict", *names, exit_code=2)
    assert snapshot(out_dir) == before
    return line


def _edit(path, fn):
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def test_model_missing(capsys, tmp_path, s2, out_dir):
    assert "model not found" in _fails(capsys, s2, tmp_path / "no_model", out_dir, tmp_path / "no_model")


def test_bundle_json_corrupt(capsys, s2, model_copy, out_dir):
    (model_copy / "bundle.json").write_text('{"format": "sparsevit-bundle", ')
    assert "not valid JSON" in _fails(capsys, s2, model_copy, out_dir, model_copy / "bundle.json")


def test_not_a_checkpoint(capsys, tmp_path, s2, out_dir):
    f = tmp_path / "weights.safetensors"
    f.write_text("definitely not tensors")
    (tmp_path / "weights.json").write_text('{"hello": 1}')
    assert "not a SparseViT model description" in _fails(capsys, s2, f, out_dir, "weights.json")


def test_truncated_weights(capsys, s2, model_copy, out_dir):
    w = model_copy / "classifier.safetensors"
    w.write_bytes(w.read_bytes()[:500])
    assert "not a readable safetensors file" in _fails(capsys, s2, model_copy, out_dir, w)


def test_pickle_disguised_as_safetensors_is_never_unpickled(capsys, s2, model_copy, out_dir, monkeypatch):
    w = model_copy / "classifier.safetensors"
    torch.save({"patch_embed.weight": torch.zeros(3)}, w)

    def boom(*a, **k):
        raise AssertionError("the engine tried to unpickle a model file")
    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(pickle, "Unpickler", boom)
    monkeypatch.setattr(torch, "load", boom)
    assert "not a readable safetensors file" in _fails(capsys, s2, model_copy, out_dir, w)


@pytest.mark.parametrize("target,edit,expect", [
    ("bundle.json", lambda d: d.update(tile="big"), "bundle.json is inconsistent"),
    ("bundle.json", lambda d: d.update(format_version="x"), "bundle.json) has no valid 'format_version'"),
    ("bundle.json", lambda d: d.update(pseudomask={"method": "attention", "shell": "rm -rf /"}),
     "unexpected keyword argument 'shell'"),
    ("bundle.json", lambda d: d.update(classifier=5), "not a file name"),
    ("bundle.json", lambda d: d.update(classifier="../../../etc/passwd"), "points outside the model folder"),
    ("classifier.json", lambda d: d["architecture"].update(bogus_key=1), "unknown model config keys"),
    ("classifier.json", lambda d: d["architecture"].update(depth="two"), "model description is inconsistent"),
    ("classifier.json", lambda d: d.update(classes="eurosat"), "'classes' must be a JSON object"),
    ("classifier.json", lambda d: d.update(format_version=[1]), "no valid 'format_version'"),
    ("segmenter.json", lambda d: d.pop("bands"), "trained on different bands"),
    ("segmenter.json", lambda d: d.update(in_channels="many"), "segmenter description is inconsistent"),
], ids=["tile-str", "version-str", "unknown-key", "ref-int", "ref-traversal", "arch-unknown",
        "arch-type", "classes-str", "version-list", "seg-no-bands", "seg-channels-str"])
def test_json_config_wrong_types_or_unknown_keys(capsys, s2, model_copy, out_dir, target, edit, expect):
    _edit(model_copy / target, edit)
    # the band check compares the two descriptions, so it names the bundle that pairs them
    named = "bundle.json" if "different bands" in expect else target
    assert expect in _fails(capsys, s2, model_copy, out_dir, named)


def test_model_class_scheme_does_not_fit(capsys, s2, model_copy, out_dir):
    _edit(model_copy / "classifier.json", lambda d: d["classes"].update(scheme="dfc2020"))
    assert "class names do not match scheme 'dfc2020'" in _fails(capsys, s2, model_copy, out_dir)


def test_model_bands_do_not_fit_the_input(capsys, tmp_path, tiny_bundle, out_dir):
    ten = write_s2(tmp_path / "ten.tif", names=["B02", "B03", "B04", "B05", "B06", "B07", "B08",
                                                "B8A", "B11", "B12"])
    line = _fails(capsys, ten, tiny_bundle, out_dir, ten)
    assert "missing Sentinel-2 bands B01, B09" in line


def test_model_needs_s1_but_none_given(capsys, tmp_path, s2, out_dir):
    from sparsevit.bands import S2_BANDS_NO_CIRRUS
    from sparsevit.models.vit import create_model
    from sparsevit.schemes import load_scheme
    from sparsevit.training.checkpoint import save_checkpoint
    from sparsevit.training.normalization import Normalizer

    scheme = load_scheme("eurosat")
    vit = create_model("tiny", num_classes=scheme.num_classes, embed_dim=24, num_heads=2, depth=1,
                       mlp_hidden=32, has_s1=True)
    n = len(S2_BANDS_NO_CIRRUS) + 2
    save_checkpoint(tmp_path / "s1model", vit, Normalizer(mode="dataset_stats", mean=[0.0] * n,
                                                          std=[1.0] * n), list(scheme.names), "eurosat")
    line = _fails(capsys, s2, tmp_path / "s1model.safetensors", out_dir, "s1model")
    assert "needs Sentinel-1" in line and "--s1" in line

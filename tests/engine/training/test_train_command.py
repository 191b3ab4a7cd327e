import json

import pytest

from sparsevit.cli import main
from sparsevit.training import load_model


def test_train_command_end_to_end_on_eurosat_mosaic(tmp_path, data_dir, capsys):
    eurosat = data_dir / "eurosat_ms"
    if not eurosat.is_dir():
        pytest.skip("data/eurosat_ms not present")
    out = tmp_path / "run"
    code = main(["--json", "train", "--dataset", "eurosat-mosaic", "--data", str(eurosat),
                 "--config", "tiny", "--epochs", "1", "--batch-size", "4", "--crop", "64",
                 "--train-scenes", "8", "--val-scenes", "4", "--lambda-l0", "0.5",
                 "--keep-heads-in-last", "1", "--class-tokens", "--out", str(out), "--seed", "1"])
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    result = next(e for e in events if e["event"] == "result")
    assert result["checkpoint"].endswith("model.safetensors")
    assert any(e["event"] == "progress" and e["stage"].startswith("train epoch") for e in events)
    model, conf = load_model(out / "model.safetensors")
    assert conf["classes"]["scheme"] == "eurosat" and len(conf["classes"]["names"]) == 10
    assert conf["bands"] == {"s2": list(model.config.s2_bands), "has_s1": False}
    assert "B10" not in conf["bands"]["s2"]
    assert conf["architecture"]["keep_heads_in_last"] == 1
    assert conf["architecture"]["class_tokens"] is True and model.cls_token.shape[1] == 10
    assert conf["training"]["dataset_name"] == "eurosat-mosaic"
    assert 0.0 <= conf["metrics"]["macro_f1"] <= 1.0
    assert (out / "last.state.safetensors").is_file()


def test_train_command_user_errors(tmp_path, capsys):
    code = main(["train", "--dataset", "dfc2020", "--data", str(tmp_path / "absent"),
                 "--out", str(tmp_path / "o")])
    assert code == 2
    assert "absent: dataset folder does not exist" in capsys.readouterr().err
    code = main(["train", "--dataset", "eurosat-mosaic", "--data", str(tmp_path), "--s1",
                 "--out", str(tmp_path / "o")])
    assert code == 2
    assert "no Sentinel-1" in capsys.readouterr().err

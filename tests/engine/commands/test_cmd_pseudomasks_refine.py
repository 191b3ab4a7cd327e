"""Stage 2 and 3 through the CLI, on a handful of mosaic scenes with an untrained model:
the plumbing (every image written and counted, masks read back, bundle usable by predict)."""
import json
import os

import rasterio

from sparsevit.bundle import load_bundle
from sparsevit.cli import main


def test_pseudomasks_then_refine_then_predict(tiny_bundle_root, tmp_path, repo_root, capsys):
    data = str(repo_root / "data" / "eurosat_ms")
    pm = tmp_path / "pm"
    assert main(["pseudomasks", "--model", str(tiny_bundle_root), "--dataset", "eurosat-mosaic",
                 "--data", data, "--split", "train", "--scenes", "4", "--methods",
                 "top1_fill,attention", "--relabel", "--ignore-uncertain", "--use-image-labels",
                 "--out", str(pm)]) == 0
    doc = json.loads((pm / "pseudomasks.json").read_text())
    assert doc["classes_from"] == "image labels"
    assert doc["images"] == 4 and set(doc["scores"]) == {"top1_fill", "attention", "attention_relabel"}
    for m in doc["scores"].values():
        assert m["counts"]["images"] == 4  # every image counted
    assert len(os.listdir(pm / "attention")) == 4
    with rasterio.open(next((pm / "attention").iterdir())) as src:
        assert src.dtypes[0] == "uint8" and src.colormap(1)

    out = tmp_path / "refine"
    assert main(["refine", "--model", str(tiny_bundle_root), "--dataset", "eurosat-mosaic",
                 "--data", data, "--scenes", "4", "--test-scenes", "2", "--masks", str(pm / "attention"),
                 "--iterations", "2", "--epochs", "1", "--segmenter", "unet-r18-small",
                 "--crop", "64", "--bundle", "--out", str(out)]) == 0
    rep = json.loads((out / "refine.json").read_text())
    assert set(rep["iterations"]) == {"it1", "it2"}
    assert rep["iterations"]["it2"]["scores"]["counts"]["images"] == 2
    # defaults: it2 learns it1's label-restricted masks, starting from it1
    assert rep["config"]["image_labels"] is True and rep["config"]["warm_start_lr"] == 0.3
    assert rep["iterations"]["it2"]["history"]["warm_started"]
    assert not rep["iterations"]["it1"]["history"]["warm_started"]
    b = load_bundle(out)
    assert b.segmenter is not None and b.scheme.name == "eurosat"
    capsys.readouterr()


def test_refine_without_masks_for_every_scene_is_a_clear_error(tiny_bundle_root, tmp_path, repo_root, capsys):
    (tmp_path / "masks").mkdir()
    code = main(["refine", "--model", str(tiny_bundle_root), "--dataset", "eurosat-mosaic",
                 "--data", str(repo_root / "data" / "eurosat_ms"), "--scenes", "3",
                 "--masks", str(tmp_path / "masks"), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert "3 of 3 training scenes have no mask" in err and "sparsevit pseudomasks" in err


def test_class_token_method_needs_a_class_token_model(tiny_bundle_root, tmp_path, repo_root, capsys):
    code = main(["pseudomasks", "--model", str(tiny_bundle_root), "--dataset", "eurosat-mosaic",
                 "--data", str(repo_root / "data" / "eurosat_ms"), "--scenes", "2",
                 "--methods", "attention_class_tokens", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "class tokens" in capsys.readouterr().err

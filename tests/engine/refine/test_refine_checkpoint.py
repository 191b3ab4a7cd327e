import json

import pytest
import torch

from sparsevit.errors import InputError
from sparsevit.refine.checkpoint import load_segmenter, save_segmenter
from sparsevit.refine.segmenter import build_segmenter
from sparsevit.training.normalization import Normalizer

NORM = Normalizer(mode="dataset_stats", mean=[0.0] * 4, std=[1.0] * 4)


@pytest.mark.parametrize("half", [False, True])
def test_round_trip_gives_the_same_predictions(tmp_path, half):
    torch.manual_seed(0)
    m = build_segmenter("unet-r18-small", 4, 3).eval()
    save_segmenter(tmp_path / "seg", m, in_channels=4, class_names=["a", "b", "c"], normalizer=NORM,
                   s2_bands=["B02", "B03", "B04", "B08"], scheme="x", half=half)
    m2, doc = load_segmenter(tmp_path / "seg.safetensors")
    x = torch.randn(1, 4, 32, 32)
    with torch.no_grad():
        a, b = m(x), m2(x)
    assert doc["classes"]["names"] == ["a", "b", "c"]
    if half:
        assert doc["stored_dtype"] == "float16"
        assert (a.argmax(1) == b.argmax(1)).float().mean() > 0.99
    else:
        assert torch.equal(a, b)


def test_not_a_segmenter_is_a_clear_error(tmp_path):
    (tmp_path / "seg.json").write_text(json.dumps({"format": "something-else"}))
    (tmp_path / "seg.safetensors").write_bytes(b"garbage")
    with pytest.raises(InputError, match="not a SparseViT segmenter"):
        load_segmenter(tmp_path / "seg")
    with pytest.raises(InputError, match="missing"):
        load_segmenter(tmp_path / "nothing")

import pytest
import torch

from sparsevit.bands import S2_BANDS_NO_CIRRUS
from sparsevit.bundle import PseudomaskSettings, write_bundle_json
from sparsevit.models.vit import create_model
from sparsevit.refine.checkpoint import save_segmenter
from sparsevit.refine.segmenter import build_segmenter
from sparsevit.schemes import load_scheme
from sparsevit.training.checkpoint import save_checkpoint
from sparsevit.training.normalization import Normalizer


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """An untrained but complete model bundle (random weights, eurosat scheme): predict's
    plumbing, not its accuracy, is under test here."""
    root = tmp_path_factory.mktemp("bundle")
    scheme = load_scheme("eurosat")
    torch.manual_seed(0)
    n = len(S2_BANDS_NO_CIRRUS)
    norm = Normalizer(mode="dataset_stats", mean=[1500.0] * n, std=[1000.0] * n)
    vit = create_model("tiny", num_classes=scheme.num_classes, embed_dim=48, num_heads=3, depth=2,
                       mlp_hidden=96)
    with torch.no_grad():
        vit.head.bias[:3] = 4.0  # three confident classes: the multi-label path runs
    save_checkpoint(root / "classifier", vit, norm, list(scheme.names), "eurosat")
    seg = build_segmenter("unet-r18-small", n, scheme.num_classes)
    save_segmenter(root / "segmenter", seg, in_channels=n, class_names=list(scheme.names),
                   normalizer=norm, s2_bands=list(S2_BANDS_NO_CIRRUS), scheme="eurosat", half=True)
    write_bundle_json(root, classifier="classifier", segmenter="segmenter",
                      pseudomask=PseudomaskSettings(method="attention", attn_blocks=1,
                                                    options={"mode": "heads"}), tile=128, overlap=16)
    return root

"""Band-flexible input: missing bands as NaN channels, for the ViT and the segmenter."""
from __future__ import annotations

import pytest
import torch

from sparsevit.bands import S2_BANDS_NO_CIRRUS
from sparsevit.models import prune_heads
from sparsevit.models.vit import band_presence, create_model
from sparsevit.refine.checkpoint import load_segmenter, save_segmenter
from sparsevit.refine.segmenter import build_segmenter
from sparsevit.training.checkpoint import load_model, save_checkpoint
from sparsevit.training.normalization import Normalizer

RGB = ("B02", "B03", "B04")
N = len(S2_BANDS_NO_CIRRUS)


def _model(**kw):
    torch.manual_seed(0)
    return create_model("tiny", embed_dim=48, num_heads=3, depth=2, mlp_hidden=96, num_classes=10,
                        band_flexible=True, required_bands=RGB, **kw).eval()


def _rgb_only(x):
    x = x.clone()
    keep = [S2_BANDS_NO_CIRRUS.index(b) for b in RGB]
    drop = [i for i in range(N) if i not in keep]
    x[:, drop] = float("nan")
    return x


def test_presence_is_per_sample_and_channel():
    x = torch.randn(2, 4, 8, 8)
    x[0, 1] = float("nan")
    x[1, :, 0, 0] = float("nan")  # a no-data pixel does not make a band absent
    filled, present = band_presence(x)
    assert present.tolist() == [[True, False, True, True], [True, True, True, True]]
    assert torch.isfinite(filled).all() and filled[0, 1].abs().sum() == 0


def test_presence_equals_the_per_pixel_definition():
    """The one-reduction shortcut gives what the per-pixel test gives (isfinite/any/where), for
    finite batches (returned as they are), whole NaN channels, scattered NaN and +-inf."""
    g = torch.Generator().manual_seed(0)
    for case in range(6):
        x = torch.randn(3, 5, 16, 16, generator=g)
        if case >= 1:
            x[1, 2] = float("nan")
        if case >= 2:
            x[0, :, 3, 4] = float("nan")
        if case >= 3:
            x[2, 0, 5, 5], x[2, 1, 0, 0] = float("inf"), float("-inf")
        if case >= 4:
            x[:, 4] = float("nan")
        if case == 5:
            x[0, 0, 0, 0] = 3e38
            x[0, 0, 0, 1] = 3e38  # a finite channel whose sum overflows: still present, kept
        finite = torch.isfinite(x)
        filled, present = band_presence(x)
        assert torch.equal(present, finite.flatten(2).any(-1))
        assert torch.equal(filled, torch.where(finite, x, torch.zeros(())))
        if case == 0:
            assert filled is x


def test_missing_bands_give_finite_outputs_that_know_the_band_is_absent():
    m = _model()
    x = torch.randn(2, N, 64, 64)
    with torch.no_grad():
        full = m(x)
        rgb = m(_rgb_only(x))
        zero = _rgb_only(x).nan_to_num(0.0)
        as_zero = m(zero)  # the same pixels, but every band "present" with value 0
    assert torch.isfinite(rgb).all()
    assert not torch.allclose(rgb, full)
    # the band embeddings tell an absent band from a band at its mean value
    assert not torch.allclose(rgb, as_zero)


def test_each_sample_is_read_with_its_own_bands():
    m = _model()
    x = torch.randn(2, N, 64, 64)
    mixed = torch.cat([x[:1], _rgb_only(x[1:])])
    with torch.no_grad():
        alone = m(x[:1])
        batched = m(mixed)
    assert torch.allclose(batched[:1], alone, atol=1e-5)


def test_required_bands_and_non_flexible_models_refuse_nan():
    m = _model()
    x = torch.randn(1, N, 32, 32)
    x[:, S2_BANDS_NO_CIRRUS.index("B03")] = float("nan")
    with pytest.raises(ValueError, match="B03"):
        m(x)
    plain = create_model("tiny", embed_dim=48, num_heads=3, depth=2, mlp_hidden=96).eval()
    with pytest.raises(ValueError, match="not band-flexible"):
        plain(_rgb_only(torch.randn(1, N, 32, 32)))


def test_checkpoint_and_pruning_keep_the_band_embeddings(tmp_path):
    m = _model(class_tokens=True, patch_head=True)
    with torch.no_grad():
        m.blocks[0].attn.gates.log_a[:2] = -10.0  # close two heads
    x = _rgb_only(torch.randn(1, N, 64, 64))
    norm = Normalizer("dataset_stats", mean=[0.0] * N, std=[1.0] * N)
    save_checkpoint(tmp_path / "m", m, norm, [str(i) for i in range(10)], None)
    back, doc = load_model(tmp_path / "m.safetensors")
    assert doc["architecture"]["band_flexible"] and doc["architecture"]["required_bands"] == list(RGB)
    pruned = prune_heads(back.eval())
    assert pruned.config.band_flexible and pruned.config.min_bands == RGB
    with torch.no_grad():
        assert torch.allclose(pruned(x), back(x), atol=1e-5)
        assert torch.equal(pruned.band_embed, m.band_embed)


def test_band_flexible_segmenter_reads_subsets_and_round_trips(tmp_path):
    torch.manual_seed(0)
    seg = build_segmenter("unet-mnv3-flex", N, 10).eval()
    x = torch.randn(1, N, 64, 64)
    with torch.no_grad():
        full, rgb = seg(x), seg(_rgb_only(x))
        zero = seg(_rgb_only(x).nan_to_num(0.0))
    assert torch.isfinite(rgb).all() and not torch.allclose(full, rgb)
    assert not torch.allclose(rgb, zero)  # the presence planes reach the network
    norm = Normalizer("dataset_stats", mean=[0.0] * N, std=[1.0] * N)
    save_segmenter(tmp_path / "s", seg, in_channels=N, class_names=[str(i) for i in range(10)],
                   normalizer=norm, s2_bands=list(S2_BANDS_NO_CIRRUS))
    back, doc = load_segmenter(tmp_path / "s")
    assert doc["segmenter"]["band_flexible"] is True
    with torch.no_grad():
        assert torch.allclose(back(_rgb_only(x)), rgb, atol=1e-5)

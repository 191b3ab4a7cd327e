import math

import pytest
import torch

from sparsevit.models import HeadGates, ModelConfig, create_model, get_config, list_configs, prune_heads

BANDS = ("B02", "B03", "B04", "B08")


def tiny(**kw):
    base = dict(embed_dim=32, depth=3, num_heads=4, mlp_hidden=64, patch_size=8, img_size=32,
                s2_bands=BANDS, num_classes=5, drop_path_rate=0.0)
    base.update(kw)
    return create_model(ModelConfig(**base))


def test_registry_has_tiny_to_paper():
    assert {"tiny", "paper"} <= set(list_configs())
    p = get_config("paper")
    assert (p.embed_dim, p.depth, p.num_heads, p.head_dim, p.mlp_hidden, p.patch_size,
            p.img_size) == (1024, 12, 16, 64, 2048, 14, 224)
    t = get_config("tiny", num_classes=3)
    assert (t.embed_dim, t.depth, t.num_heads, t.patch_size, t.num_classes) == (192, 6, 6, 16, 3)
    with pytest.raises(KeyError):
        get_config("nope")


def test_forward_shapes_and_wrong_channels():
    torch.manual_seed(0)
    m = tiny().eval()
    assert m(torch.randn(2, 4, 32, 32)).shape == (2, 5)
    with pytest.raises(ValueError, match="expected input"):
        m(torch.randn(2, 6, 32, 32))


def test_s1_tokens_are_fused():
    torch.manual_seed(0)
    m = tiny(has_s1=True).eval()
    x = torch.randn(1, 6, 32, 32)
    x2 = x.clone()
    x2[:, 4:] += 1.0  # change only S1
    with torch.no_grad():
        assert not torch.allclose(m(x), m(x2))
    assert m.patch_embed_s1.in_channels == 2 and m.patch_embed_s2.in_channels == 4


def test_attention_on_request_matches_plain_forward():
    torch.manual_seed(0)
    m = tiny().eval()
    x = torch.randn(2, 4, 32, 32)
    with torch.no_grad():
        plain = m(x)
        logits, maps = m(x, return_attention=2)
    assert torch.allclose(plain, logits, atol=1e-5)
    assert [a.block for a in maps] == [1, 2]
    a = maps[-1]
    assert a.probs.shape == (2, 4, 17, 17)
    assert torch.allclose(a.probs.sum(-1), torch.ones(2, 4, 17), atol=1e-5)
    assert a.cls_to_patch().shape == (2, 4, 4, 4)
    assert a.patch_to_patch().shape == (2, 4, 16, 16)
    assert a.head_ids.tolist() == [0, 1, 2, 3]


def test_positional_embedding_interpolates_to_larger_inputs():
    torch.manual_seed(0)
    m = tiny().eval()
    with torch.no_grad():
        logits, maps = m(torch.randn(1, 4, 64, 64), return_attention=1)
        # non-multiple of the patch size is padded, not rejected
        assert m(torch.randn(1, 4, 36, 44)).shape == (1, 5)
    assert logits.shape == (1, 5)
    assert maps[0].grid == (8, 8) and maps[0].probs.shape[-1] == 65
    assert m.pos_embed.shape[1] == 17  # stored at the training size


def test_hard_concrete_gate_train_and_eval():
    torch.manual_seed(0)
    g = HeadGates(4)
    g.log_a.data = torch.tensor([-3.0, -0.1, 0.1, 3.0])
    g.eval()
    assert g().tolist() == [0.0, 0.0, 1.0, 1.0]
    g.train()
    draws = torch.stack([g() for _ in range(2000)])
    assert ((draws == 0) | (draws == 1)).all()  # straight-through: binary forward
    # P(open) = sigmoid(log_a) for the stretched, binarised sample
    assert torch.allclose(draws.mean(0), torch.sigmoid(g.log_a.detach()), atol=0.05)
    g.straight_through = False
    soft = torch.stack([g() for _ in range(200)])
    assert (soft >= 0).all() and (soft <= 1).all() and ((soft > 0) & (soft < 1)).any()
    # gradient reaches log_a through the straight-through sample
    g.straight_through = True
    (g() * torch.arange(4.0)).sum().backward()
    assert g.log_a.grad is not None and g.log_a.grad.abs().sum() > 0
    expected = torch.sigmoid(g.log_a - 0.33 * math.log(0.1 / 1.1))
    assert torch.allclose(g.expected_open(), expected)


def test_min_open_protects_best_head():
    g = HeadGates(3, min_open=1)
    g.log_a.data = torch.tensor([-5.0, -1.0, -4.0])
    g.eval()
    assert g().tolist() == [0.0, 1.0, 0.0]
    g.train()
    assert all(g()[1] == 1.0 for _ in range(20))
    assert g.expected_open()[1] == 0 and g.expected_open()[0] > 0


def test_l0_penalty_is_mean_and_pruned_share_counts_closed_heads():
    m = tiny()
    gates = m.head_gates()
    for g in gates:
        g.log_a.data.fill_(10.0)
    assert torch.isclose(m.l0_penalty(), torch.tensor(1.0), atol=1e-3)
    gates[0].log_a.data = torch.tensor([-1.0, -1.0, 1.0, 1.0])
    gates[2].log_a.data.fill_(-2.0)
    assert m.open_heads_per_block() == [2, 4, 0]
    assert m.pruned_share() == pytest.approx(6 / 12)
    big = create_model("tiny", s2_bands=BANDS, num_classes=5)  # same lambda meaning at any size
    for g in big.head_gates():
        g.log_a.data.fill_(10.0)
    assert torch.isclose(big.l0_penalty(), torch.tensor(1.0), atol=1e-3)


def test_keep_heads_in_last_blocks_excluded_from_penalty():
    m = tiny(keep_heads_in_last=2)
    for g in m.head_gates():
        g.log_a.data.fill_(-5.0)
    assert m.open_heads_per_block() == [0, 1, 1]
    assert [g.min_open for g in m.head_gates()] == [0, 1, 1]


def test_pruned_model_matches_gated_model_and_is_smaller():
    torch.manual_seed(1)
    m = tiny(depth=4, keep_heads_in_last=1).eval()
    for blk in m.blocks:  # trained biases are not zero; a closed block still adds its proj bias
        torch.nn.init.normal_(blk.attn.proj.bias)
    gates = m.head_gates()
    gates[0].log_a.data = torch.tensor([2.0, -1.0, 3.0, -2.0])
    gates[1].log_a.data.fill_(-3.0)  # whole block closed -> MLP-only block
    gates[2].log_a.data = torch.tensor([-1.0, -1.0, -1.0, 0.5])
    gates[3].log_a.data = torch.tensor([-1.0, -0.5, -2.0, -3.0])  # protected best head 1
    p = prune_heads(m)
    assert p.open_heads_per_block() == [2, 0, 1, 1]
    assert p.config.head_ids == [[0, 2], [], [3], [1]]
    assert p.blocks[1].attn is None
    assert p.pruned_share() == pytest.approx(m.pruned_share()) == pytest.approx(12 / 16)
    assert sum(t.numel() for t in p.parameters()) < sum(t.numel() for t in m.parameters())
    x = torch.randn(3, 4, 32, 32)
    with torch.no_grad():
        assert torch.allclose(m(x), p(x), atol=1e-5)
        _, maps_m = m(x, return_attention=2)
        _, maps_p = p(x, return_attention=2)
    open_m = maps_m[-1].open_only()
    assert open_m.head_ids.tolist() == maps_p[-1].head_ids.tolist() == [1]
    assert torch.allclose(open_m.probs, maps_p[-1].probs, atol=1e-5)
    # fine-tuning a pruned model ends in prune_heads again (train() saves model_pruned): a no-op
    again = prune_heads(p)
    assert again.config.head_ids == p.config.head_ids
    with torch.no_grad():
        assert torch.allclose(again(x), p(x), atol=1e-6)


def test_model_with_a_fully_closed_block_runs_under_flop_counting_and_trains_its_bias():
    from torch.utils.flop_counter import FlopCounterMode
    torch.manual_seed(2)
    m = tiny(depth=2).eval()
    m.head_gates()[0].log_a.data.fill_(-3.0)  # block 0 closes completely
    p = prune_heads(m)
    assert p.blocks[0].attn is None
    x = torch.randn(2, 4, 32, 32)
    # the benchmark's FLOP count runs the model under no_grad inside FlopCounterMode
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        p(x)
    assert fc.get_total_flops() > 0
    p.train()
    p(x).sum().backward()
    assert p.blocks[0].attn_bias.grad is not None and p.blocks[0].attn_bias.grad.abs().sum() > 0


def test_conv_stem_gives_the_same_tokens_and_survives_pruning_and_checkpoints(tmp_path):
    from sparsevit.training.checkpoint import load_model, save_checkpoint
    from sparsevit.training.normalization import Normalizer

    torch.manual_seed(0)
    m = tiny(stem="conv", band_flexible=True, required_bands=("B02", "B03", "B04"))
    assert isinstance(m.patch_embed_s2, torch.nn.Sequential)
    x = torch.randn(3, 4, 40, 40)  # not a multiple of the patch: padded like the linear stem
    tok, grid = m.embed(x)
    assert grid == (5, 5) and tok.shape == (3, 1 + 25, 32)
    m.train()
    m(x).sum().backward()  # BatchNorm statistics move in training ...
    m.eval()
    x[:, 3] = float("nan")  # ... and an absent band still reads in eval mode
    with torch.no_grad():
        for g in m.head_gates():
            g.log_a.data[:2] = -10.0  # close two heads per block
        pruned = prune_heads(m).eval()
        assert pruned.config.stem == "conv" and torch.isfinite(pruned(x)).all()
    norm = Normalizer(mean=[0.0] * 4, std=[1.0] * 4)
    save_checkpoint(tmp_path / "m", m, norm, [f"c{i}" for i in range(5)])
    back, cfg = load_model(tmp_path / "m.safetensors")
    assert cfg["architecture"]["stem"] == "conv"
    with torch.no_grad():  # the BatchNorm running statistics travel with the weights
        assert torch.allclose(back(x), m(x), atol=1e-5)


def test_unknown_stem_or_odd_patch_is_refused():
    with pytest.raises(ValueError, match="stem"):
        ModelConfig(stem="resnet")
    with pytest.raises(ValueError, match="power-of-two"):
        ModelConfig(stem="conv", patch_size=14)

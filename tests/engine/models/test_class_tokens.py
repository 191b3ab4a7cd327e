"""One class token per class (class_tokens=True): logits, maps, pruning and checkpoints."""
import numpy as np
import pytest
import torch

from sparsevit.models import create_model, prune_heads
from sparsevit.pseudomasks.extract import classifier_evidence
from sparsevit.training import load_model, save_checkpoint
from sparsevit.training.normalization import Normalizer


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("tiny", num_classes=4, embed_dim=48, num_heads=3, depth=3, mlp_hidden=96,
                        class_tokens=True).eval()


def test_each_logit_reads_only_its_own_class_token(model):
    x = torch.randn(2, 12, 64, 64)
    tok, _ = model.forward_tokens(x)
    tok = tok.detach().requires_grad_(True)
    logits = model.logits_from_tokens(tok)
    assert logits.shape == (2, 4) and tok.shape[1] == 4 + 16
    logits[:, 2].sum().backward()
    touched = torch.nonzero(tok.grad.abs().sum(dim=(0, 2))).flatten().tolist()
    assert touched == [2]  # class 2's logit depends on token 2 only
    torch.testing.assert_close(model(x), logits.detach())


def test_class_tokens_start_distinct(model):
    t = model.cls_token[0]
    assert t.shape == (4, 48)
    assert torch.cdist(t, t).fill_diagonal_(1.0).min() > 0.01


def test_class_attention_maps_match_the_full_attention(model):
    x = torch.randn(2, 12, 64, 64)
    ev = classifier_evidence(model, x, attn_blocks=2, threshold=None)
    with torch.no_grad():
        logits, maps = model(x, return_attention=2)
    np.testing.assert_allclose(ev.probs, torch.sigmoid(logits).numpy(), atol=1e-5)
    # reference: mean over open heads per block, then over the two blocks
    ref = torch.stack([m.class_to_patch().mean(1) for m in maps]).mean(0).numpy()
    assert ev.class_attention.shape == (2, 4, 4, 4)
    np.testing.assert_allclose(ev.class_attention, ref, atol=1e-5)
    assert np.abs(ev.gradcam).sum() > 0  # Grad-CAM still works with K prefix tokens
    # each class map is a share of one softmax row over prefix + patch tokens
    assert (ev.class_attention >= 0).all() and (ev.class_attention.sum((2, 3)) <= 1 + 1e-5).all()


def test_cls_models_have_no_class_attention():
    m = create_model("tiny", num_classes=3, embed_dim=24, num_heads=2, depth=2, mlp_hidden=48).eval()
    ev = classifier_evidence(m, torch.randn(1, 12, 32, 32), attn_blocks=1)
    assert ev.class_attention is None


def test_pruned_class_token_model_matches_and_round_trips(model, tmp_path):
    gates = model.blocks[1].attn.gates
    saved = gates.log_a.detach().clone()
    try:
        with torch.no_grad():
            gates.log_a[:] = torch.tensor([5.0, -5.0, 5.0])
        x = torch.randn(2, 12, 64, 64)
        pruned = prune_heads(model).eval()
        with torch.no_grad():
            torch.testing.assert_close(pruned(x), model(x), atol=1e-5, rtol=1e-5)
        norm = Normalizer(mean=[0.0] * 12, std=[1.0] * 12)
        path = save_checkpoint(tmp_path / "ct", pruned, norm, ["a", "b", "c", "d"], "custom")
        again, doc = load_model(path)
        assert again.config.class_tokens and doc["architecture"]["class_tokens"] is True
        with torch.no_grad():
            torch.testing.assert_close(again.eval()(x), pruned(x))
    finally:
        with torch.no_grad():
            gates.log_a[:] = saved


def test_patch_head_cam_matches_forward_and_feeds_the_class_token_masks():
    from sparsevit.pseudomasks.generate import PseudomaskOptions, needs_gradcam, pseudomasks_for_batch
    torch.manual_seed(1)
    m = create_model("tiny", num_classes=4, embed_dim=48, num_heads=3, depth=3, mlp_hidden=96,
                     class_tokens=True, patch_head=True).eval()
    x = torch.randn(2, 12, 64, 64)
    with torch.no_grad():
        logits, cam = m(x, return_patch_logits=True)
        torch.testing.assert_close(m(x), logits)
    assert cam.shape == (2, 4, 4, 4)
    with pytest.raises(ValueError, match="not both"):
        m(x, return_attention=1, return_patch_logits=True)
    # no Grad-CAM needed: the class-token method fuses with the patch-head CAM
    assert not needs_gradcam(["attention_class_tokens"], m)
    assert needs_gradcam(["attention_class_tokens"], create_model(
        "tiny", num_classes=4, embed_dim=24, num_heads=2, depth=2, mlp_hidden=48, class_tokens=True))
    ev = classifier_evidence(m, x, attn_blocks=2, gradcam=False, threshold=None)
    np.testing.assert_allclose(ev.patch_cam, cam.numpy(), atol=1e-5)
    np.testing.assert_allclose(ev.probs, torch.sigmoid(logits).numpy(), atol=1e-5)
    assert ev.maps_for("attention_class_tokens", 0)["class_maps"] is not None
    masks, _ = pseudomasks_for_batch(m, x, PseudomaskOptions(methods=("attention_class_tokens",),
                                                                attn_blocks=2, threshold=0.0))
    assert masks[0]["attention_class_tokens"].info["fused_with_cam"] is True


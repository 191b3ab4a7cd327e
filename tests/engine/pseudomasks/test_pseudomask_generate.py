import numpy as np
import pytest
import torch

from sparsevit.models.vit import create_model
from sparsevit.pseudomasks.extract import classifier_evidence
from sparsevit.pseudomasks.generate import PseudomaskOptions, pseudomasks_for_batch, relabel


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = create_model("tiny", num_classes=4, embed_dim=48, num_heads=3, depth=3, mlp_hidden=96).eval()
    return m


def test_evidence_probs_match_the_plain_forward(model):
    x = torch.randn(2, 12, 64, 64)
    ev = classifier_evidence(model, x, attn_blocks=2)
    with torch.no_grad():
        ref = torch.sigmoid(model(x)).numpy()
    np.testing.assert_allclose(ev.probs, ref, atol=1e-5)
    assert ev.gradcam.shape == (2, 4, 4, 4) and ev.grid == (4, 4)
    assert ev.head_maps[0].shape == (6, 4, 4)  # 3 open heads x 2 blocks
    assert np.abs(ev.gradcam).sum() > 0


def test_last_block_output_patch_tokens_get_no_gradient(model):
    # why Grad-CAM is taken at the last block's INPUT: the CLS-token head ignores the output
    # patch tokens, so their gradient is exactly zero
    tok, _ = model.embed(torch.randn(1, 12, 64, 64))
    for blk in model.blocks[:-1]:
        tok, _ = blk(tok)
    out, _ = model.blocks[-1](tok)
    out.retain_grad()
    model.head(model.norm(out)[:, 0]).sum().backward()
    assert torch.count_nonzero(out.grad[:, 1:]) == 0
    assert torch.count_nonzero(out.grad[:, 0]) > 0


def test_closed_heads_give_no_maps(model):
    gates = model.blocks[-1].attn.gates
    saved = gates.log_a.detach().clone()
    try:
        with torch.no_grad():
            gates.log_a[:] = torch.tensor([5.0, -5.0, -5.0])
        ev = classifier_evidence(model, torch.randn(1, 12, 32, 32), attn_blocks=1, gradcam=False)
        assert ev.head_maps[0].shape[0] == 1 and ev.head_ids == [(2, 0)] and ev.gradcam is None
    finally:
        with torch.no_grad():
            gates.log_a[:] = saved


def test_every_image_gets_every_method_even_without_confident_classes(model):
    with torch.no_grad():
        saved = model.head.bias.clone()
        model.head.bias[:] = -20.0  # nothing reaches 0.5
    try:
        opts = PseudomaskOptions(methods=("top1_fill", "gradcam", "attention_faithful", "attention"),
                                 relabel=("attention",))
        res, ev = pseudomasks_for_batch(model, torch.randn(3, 12, 48, 48), opts)
    finally:
        with torch.no_grad():
            model.head.bias[:] = saved
    assert len(res) == 3
    for per in res:
        assert set(per) == {"top1_fill", "gradcam", "attention_faithful", "attention", "attention_relabel"}
        for pm in per.values():
            assert pm.labels.shape == (48, 48)
        assert per["attention"].info["fallback"] == "top1"


def test_relabel_keeps_the_partition_and_records_each_region(model):
    from sparsevit.pseudomasks.postprocess import PseudoMask
    labels = np.zeros((32, 32), np.uint8)
    labels[:, 16:] = 3
    pm = PseudoMask(labels, np.ones((32, 32), np.float32), np.zeros((32, 32), bool), {})
    out = relabel(model, torch.randn(12, 32, 32), pm)
    assert set(out.info["relabel"]) == {"0", "3"}
    left, right = out.labels[:, :16], out.labels[:, 16:]
    assert len(np.unique(left)) == 1 and len(np.unique(right)) == 1
    assert left[0, 0] == out.info["relabel"]["0"] and right[0, 0] == out.info["relabel"]["3"]


def test_known_image_labels_decide_the_classes_of_training_masks(model):
    from sparsevit.pseudomasks.generate import probs_from_image_labels
    p = np.array([0.9, 0.6, 0.2, 0.05])
    lifted = probs_from_image_labels(p, np.array([0, 1, 1, 0]), 0.5)
    assert (lifted[[1, 2]] >= 0.5).all() and (lifted[[0, 3]] < 0.5).all()
    assert lifted[1] > lifted[2] and lifted[0] > lifted[3]  # order kept within each group
    np.testing.assert_array_equal(probs_from_image_labels(p, np.zeros(4), 0.5), p)

    x = torch.randn(2, 12, 64, 64)
    labels = np.array([[0, 0, 1, 1], [1, 0, 0, 0]])
    opts = PseudomaskOptions(methods=("gradcam", "attention_weighted", "top1_fill"), attn_blocks=2,
                             relabel=("gradcam",))
    masks, _ = pseudomasks_for_batch(model, x, opts, labels)
    for m, lab in zip(masks, labels):
        for name, pm in m.items():
            present = set(np.unique(pm.labels).tolist())
            assert present <= set(np.flatnonzero(lab).tolist()), name
    assert masks[1]["gradcam"].info["predicted_classes"] == [0]
    assert masks[0]["gradcam"].info["predicted_classes"] in ([2, 3], [3, 2])

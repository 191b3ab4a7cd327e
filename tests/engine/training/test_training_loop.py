import json
import os

import numpy as np
import pytest
import torch
from fixtures.training_fakes import NAMES, FakeDataset, FakeSample, model_cfg, train_cfg

from sparsevit.errors import Cancelled, InputError
from sparsevit.progress import Progress
from sparsevit.training import (
    Normalizer,
    TorchSampleDataset,
    compute_stats,
    flip_rotate,
    load_model,
    multilabel_scores,
    save_checkpoint,
    train,
)
from sparsevit.training.data import sample_generator


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_weights_other_seed_differs():
    r1 = train(model_cfg(), FakeDataset(), None, train_cfg(epochs=1))
    r2 = train(model_cfg(), FakeDataset(), None, train_cfg(epochs=1))
    r3 = train(model_cfg(), FakeDataset(), None, train_cfg(epochs=1, seed=4))
    assert same_weights(weights(r1.model), weights(r2.model))
    assert not same_weights(weights(r1.model), weights(r3.model))
    assert len(r1.history) == 1 and r1.history[0]["l0"] > 0


def test_epochs_call_set_epoch_and_lr_follows_warmup_cosine():
    ds = FakeDataset()
    r = train(model_cfg(), ds, None, train_cfg(epochs=3, warmup_fraction=0.34, lr=1e-3))
    assert ds.epochs_seen[-3:] == [0, 1, 2]
    lrs = [h["lr"] for h in r.history]
    assert lrs[0] > lrs[1] > lrs[2]  # after warmup the cosine decays to min_lr_ratio
    assert lrs[2] == pytest.approx(1e-5, rel=1e-3)


class CancelAfter(Progress):
    def __init__(self, steps):
        super().__init__(json_lines=False, bar=False)
        self.left = steps

    def check_cancelled(self):
        self.left -= 1
        if self.left < 0:
            raise Cancelled("test cancel")


def test_cancel_then_resume_equals_uninterrupted(tmp_path):
    cfg = train_cfg(epochs=3)
    full = train(model_cfg(), FakeDataset(), FakeDataset(n=8, seed=9), cfg, out_dir=tmp_path / "a")
    # per epoch: 1 stage check + 2 steps + 1 eval stage check + 1 eval step; cancel in epoch 2
    with pytest.raises(Cancelled):
        train(model_cfg(), FakeDataset(), FakeDataset(n=8, seed=9), cfg, out_dir=tmp_path / "b",
              progress=CancelAfter(7))
    b = tmp_path / "b"
    assert not (b / "model.safetensors").exists()
    assert not [p for p in os.listdir(b) if ".part" in p]
    assert json.loads((b / "last.json").read_text())["training_state"]["epoch"] == 1
    resumed = train(model_cfg(), FakeDataset(), FakeDataset(n=8, seed=9), cfg, out_dir=b,
                    resume=b / "last.safetensors")
    assert same_weights(weights(full.model), weights(resumed.model))
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    loaded, conf = load_model(b / "model.safetensors")
    assert same_weights(weights(loaded), weights(resumed.model))
    assert conf["classes"]["names"] == list(NAMES) and conf["classes"]["scheme"] == "fake3"
    assert conf["normalization"]["mode"] == "dataset_stats"
    assert len(conf["normalization"]["mean"]) == 4
    assert conf["metrics"]["macro_f1"] == full.metrics["macro_f1"]
    assert set(conf["metrics"]["per_class_f1"]) == set(NAMES)


def test_strong_penalty_closes_heads_and_writes_pruned_model(tmp_path):
    r = train(model_cfg(), FakeDataset(n=48), None,
              train_cfg(epochs=3, lambda_l0=20.0, gate_lr=0.5, warmup_fraction=0.0),
              out_dir=tmp_path)
    assert r.model.pruned_share() > 0.5
    assert r.pruned_checkpoint is not None
    pruned, conf = load_model(r.pruned_checkpoint)
    assert conf["physically_pruned"] and conf["pruned_share"] == pytest.approx(r.model.pruned_share())
    x = torch.randn(2, 4, 32, 32)
    with torch.no_grad():
        assert torch.allclose(pruned(x), r.model.eval()(x), atol=1e-5)


def test_learns_fake_task():
    r = train(model_cfg(drop_path_rate=0.0), FakeDataset(n=64), FakeDataset(n=32, seed=5),
              train_cfg(epochs=4, lambda_l0=0.0, lr=3e-3, batch_size=16))
    assert r.metrics["macro_f1"] > 0.6


def test_s1_and_s2_get_the_same_augmentation():
    x = torch.arange(2 * 6 * 6, dtype=torch.float32).reshape(2, 6, 6)
    stacked = torch.cat([x, x])  # S2 channels followed by an identical "S1"
    for i in range(8):
        out, _ = flip_rotate(stacked, sample_generator(0, 0, i))
        assert torch.equal(out[:2], out[2:])
    outs = {tuple(flip_rotate(stacked, sample_generator(0, 0, i))[0].flatten().tolist())
            for i in range(40)}
    assert len(outs) > 4  # several of the 8 dihedral transforms occur


def test_crop_relabels_from_mask():
    ds = FakeDataset(n=4, size=32)
    norm = Normalizer("per_image_max")
    tds = TorchSampleDataset(ds, norm, crop=8, train=False, crop_label_fraction=0.1)
    for i in range(4):
        s = ds[i]
        _, y, _ = tds[i]
        centre = s.mask[12:20, 12:20]
        expect = np.zeros(3, np.float32)
        expect[np.unique(centre)] = 1
        assert y.tolist() == expect.tolist()


def test_normalisation_modes():
    s2 = np.stack([np.full((4, 4), 20000.0), np.linspace(0, 5000, 16).reshape(4, 4)]).astype(np.float32)
    s1 = np.stack([np.full((4, 4), -40.0), np.full((4, 4), 5.0)]).astype(np.float32)
    out = Normalizer("per_image_max")(s2, s1)
    assert out.shape == (4, 4, 4)
    assert torch.allclose(out[0], torch.ones(4, 4)) and out[1].max() == 1.0
    assert torch.equal(out[2], torch.zeros(4, 4))  # -40 dB clipped to -25 -> 0, max 0 kept 0
    assert torch.allclose(out[3], torch.ones(4, 4))  # +5 dB clipped to 0 dB -> 25 -> 1
    stats = compute_stats([FakeSample(s2, s1, None, None, "a")])
    assert stats.mean[0] == pytest.approx(10000.0) and stats.mean[2] == pytest.approx(0.0)
    z = stats(s2, s1)
    assert torch.allclose(z.mean(dim=(1, 2)), torch.zeros(4), atol=1e-5)
    assert Normalizer.from_dict(stats.to_dict()) == stats


def test_metrics_by_hand():
    t = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    p = np.array([[0.9, 0.2], [0.4, 0.3], [0.6, 0.8], [0.1, 0.7]])
    s = multilabel_scores(p, t, class_names=["a", "b"])
    assert s["per_class_f1"]["a"] == pytest.approx(1.0)
    assert s["per_class_f1"]["b"] == pytest.approx(0.5)  # tp 1, fp 1, fn 1
    assert s["macro_f1"] == pytest.approx(0.75)
    assert s["per_class_ap"]["a"] == pytest.approx(1.0)
    # b ranked: 0.8 pos, 0.7 neg, 0.3 pos -> AP = 1/2 * 1 + 1/2 * 2/3
    assert s["mAP"] == pytest.approx((1.0 + (0.5 + 1 / 3)) / 2)


def test_bad_checkpoints_raise_input_error(tmp_path):
    torch.manual_seed(0)
    from sparsevit.models import SparseViT
    m = SparseViT(model_cfg())
    norm = Normalizer("per_image_max")
    path = save_checkpoint(tmp_path / "m", m, norm, list(NAMES), "fake3")
    loaded, conf = load_model(tmp_path / "m.json")
    assert same_weights(weights(loaded), weights(m)) and conf["format_version"] == 1
    with pytest.raises(InputError, match="missing"):
        load_model(tmp_path / "nothing.safetensors")
    (tmp_path / "m.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(InputError, match="m.safetensors.*not a readable safetensors"):
        load_model(path)
    other = SparseViT(model_cfg(embed_dim=64))
    save_checkpoint(tmp_path / "o", other, norm, list(NAMES))
    os.replace(tmp_path / "o.safetensors", tmp_path / "m.safetensors")
    with pytest.raises(InputError, match="wrong shape"):
        load_model(path)
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(InputError, match="m.json.*not valid JSON"):
        load_model(path)
    (tmp_path / "m.json").unlink()
    with pytest.raises(InputError, match="m.json.*missing"):
        load_model(path)


def test_distillation_pulls_the_student_towards_the_teacher():
    teacher = train(model_cfg(drop_path_rate=0.0), FakeDataset(n=64), None,
                    train_cfg(epochs=3, lambda_l0=0.0, lr=3e-3, batch_size=16)).model.eval()
    with pytest.raises(ValueError, match="teacher"):
        train(model_cfg(), FakeDataset(), None, train_cfg(epochs=1, distill_weight=1.0))
    kw = dict(epochs=2, lambda_l0=0.0, lr=1e-3, batch_size=16, seed=2)
    plain = train(model_cfg(), FakeDataset(n=64), None, train_cfg(**kw)).model.eval()
    kd = train(model_cfg(), FakeDataset(n=64), None, train_cfg(distill_weight=5.0, **kw),
               teacher=teacher)
    assert kd.history[-1]["distill"] > 0 and plain is not kd.model
    x = torch.stack([TorchSampleDataset(FakeDataset(n=16, seed=9), kd.normalizer, train=False)[i][0]
                     for i in range(16)])
    with torch.no_grad():
        t = torch.sigmoid(teacher(x))
        gap_kd = (torch.sigmoid(kd.model.eval()(x)) - t).abs().mean()
        gap_plain = (torch.sigmoid(plain(x)) - t).abs().mean()
    assert gap_kd < gap_plain


def test_patch_head_is_trained_through_its_image_level_mean():
    from sparsevit.models import ModelConfig, create_model
    cfg = ModelConfig.from_dict({**model_cfg().to_dict(), "class_tokens": True, "patch_head": True})
    before = create_model(cfg).patch_head.weight.detach().clone()
    r = train(cfg, FakeDataset(n=16), None, train_cfg(epochs=1, lambda_l0=0.0))
    assert r.history[0]["patch_bce"] > 0
    assert not torch.equal(before, r.model.patch_head.weight.detach())

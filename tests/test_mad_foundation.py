"""DifFoundMAD-style detector on a tiny random-init open_clip ViT (shipped JSON config)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
pytest.importorskip("peft")

from madpad.errors import UsageError
from madpad.mad import NotFittedError, get_detector, load_detector
from madpad.mad.foundation import FoundationConfig, FoundationDetector, _Net
from madpad.mad.optimization import class_pos_weight, make_sampler, sample_weights, warmup_cosine
from madpad.mad.synthetic import synthetic_pairs

TINY = dict(backbone="madpad-tiny-vit", model_config="madpad-tiny-vit", pretrained=None, pair_feature="diff_prod",
            head_hidden=32, head_dropout=0.0, lora_rank=2, lora_alpha=4.0, lora_dropout=0.0, batch_size=8,
            lr_lora=1e-2, lr_head=3e-2, warmup=0.0, device="cpu", progress=False, patience=0, augment=0.0)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def data():
    return synthetic_pairs(48, seed=1), synthetic_pairs(24, seed=2)


@pytest.fixture(scope="module")
def trained(data):
    train, dev = data
    det = FoundationDetector(**TINY, epochs=5)
    det.fit(train, dev=dev)
    return det


def test_every_lora_parameter_gets_a_gradient():
    cfg = FoundationConfig(**{**TINY, "lora_targets": "auto"}).validate()
    net = _Net(cfg)
    names = net.lora_names
    # attention (fused in_proj via nn.MultiheadAttention, and out_proj) and both MLP layers of every block
    for part in ("attn.lora_A", "attn.base_layer.out_proj.lora_A", "mlp.c_fc.lora_A", "mlp.c_proj.lora_B"):
        assert sum(part in n for n in names) == 2, part  # 2 blocks in the tiny ViT
    lora, head = net.trainable_parameters()
    opt = torch.optim.SGD(lora + head, lr=0.1)
    x = torch.randn(4, 3, 64, 64)

    def step():
        opt.zero_grad()
        e = net.embed(x)
        net.logits_from_embeddings(e[:2], e[2:]).sum().backward()

    step()
    opt.step()  # lora_B starts at zero, so lora_A's gradient is zero until B has moved once
    step()
    dead = [n for n, p in net.visual.named_parameters() if "lora_" in n and (p.grad is None or p.grad.abs().sum() == 0)]
    assert dead == []
    frozen_with_grad = [n for n, p in net.visual.named_parameters() if "lora_" not in n and p.requires_grad]
    assert frozen_with_grad == []


def test_out_proj_only_targets_are_refused():
    with pytest.raises(UsageError, match="out_proj"):
        FoundationDetector(**{**TINY, "lora_targets": ["out_proj"]})


def test_unknown_option_names_a_close_match():
    with pytest.raises(UsageError, match="lora_rnak.*lora_rank"):
        FoundationDetector(**TINY, lora_rnak=3)


def test_training_learns_the_synthetic_task(trained, data):
    hist = trained.history_
    assert len(hist) == 5
    assert hist[-1]["train_loss"] < 0.5 * hist[0]["train_loss"]
    # LoRA weights moved away from their initialisation (lora_B starts at exactly zero)
    lora = trained.net_.lora_state()
    b = [v for k, v in lora.items() if "lora_B" in k]
    assert b and all(float(v.abs().sum()) > 0 for v in b)
    # the head separates held-out pairs
    _, dev = data
    s = trained.score(dev)
    y = np.array([p.y for p in dev])
    assert s.dtype == np.float64 and s.shape == (len(dev),)
    assert s[y == 1].mean() > s[y == 0].mean() + 0.3
    from madpad.mad.evaluation import detection_eer

    assert detection_eer(s, y) <= 0.1
    # the head moved away from its (seeded) initialisation
    fresh = _Net(trained.config)
    moved = [k for k, v in fresh.head_state().items() if not torch.equal(v, trained.net_.head_state()[k])]
    assert len(moved) == len(fresh.head_state())


def test_learning_rate_schedule_warms_up_then_decays(trained):
    assert warmup_cosine(0, warmup=4, total=20) == pytest.approx(0.25)
    assert warmup_cosine(3, warmup=4, total=20) == pytest.approx(1.0)
    assert warmup_cosine(12, warmup=4, total=20) == pytest.approx(0.5)
    assert warmup_cosine(20, warmup=4, total=20) == pytest.approx(0.0)
    lr = [h["lr_head"] for h in trained.history_]
    assert lr[-1] < lr[0] and lr[-1] == pytest.approx(0.0, abs=1e-9)


def test_checkpoint_round_trip_gives_the_same_scores(trained, data, tmp_path):
    _, dev = data
    trained.save(tmp_path / "ck")
    files = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert files == ["detector.json", "weights.safetensors"]
    head = json.loads((tmp_path / "ck" / "detector.json").read_text())
    assert head["detector"] == "foundation" and head["backbone_in_checkpoint"] is True
    a = load_detector(tmp_path / "ck")
    b = load_detector(tmp_path / "ck")
    sa, sb = a.score(dev), b.score(dev)
    np.testing.assert_array_equal(sa, sb)
    # the frozen weights are restored after each of peft's MultiheadAttention merges: exact
    np.testing.assert_array_equal(sa, trained.score(dev))


def test_resume_continues_an_interrupted_run_exactly(data, tmp_path, monkeypatch):
    import madpad.mad.foundation as F

    train, _ = data
    train = train[:24]
    cfg = {**TINY, "epochs": 3, "patience": 0}
    full = FoundationDetector(**cfg, checkpoint_dir=str(tmp_path / "a")).fit(train)

    real_save = F._save_resume

    def save_then_crash(path, *args, epoch, **kw):
        real_save(path, *args, epoch=epoch, **kw)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(F, "_save_resume", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        FoundationDetector(**cfg, checkpoint_dir=str(tmp_path / "b")).fit(train)
    monkeypatch.setattr(F, "_save_resume", real_save)
    resumed = FoundationDetector(**cfg, checkpoint_dir=str(tmp_path / "b")).fit(train)
    assert [h["epoch"] for h in resumed.history_] == [0, 1, 2]
    for k, v in full.net_.lora_state().items():
        assert torch.equal(resumed.net_.lora_state()[k], v), k
    # another configuration must not silently resume from that state
    with pytest.raises(UsageError, match="another configuration"):
        FoundationDetector(**{**cfg, "lr_head": 5e-3}, checkpoint_dir=str(tmp_path / "b")).fit(train)


def test_class_weights_follow_class_counts():
    y = np.array([0] * 30 + [1] * 10)
    assert class_pos_weight(y) == pytest.approx(3.0)
    w = sample_weights(y)
    assert w[:30].sum() == pytest.approx(w[30:].sum())  # each class gets the same total weight
    g = torch.Generator().manual_seed(0)
    drawn = np.array(list(make_sampler(y, "sampler", generator=g)) * 1)
    assert len(drawn) == len(y)
    draws = np.concatenate([list(make_sampler(y, "sampler", generator=g)) for _ in range(50)])
    assert 0.45 < (y[draws] == 1).mean() < 0.55  # balanced although attacks are 25 %
    assert make_sampler(y, "weighted", generator=g) is None
    with pytest.raises(ValueError, match="both classes"):
        class_pos_weight(np.zeros(5))


def test_unfitted_detector_raises_a_clear_error(data):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        get_detector("foundation", **TINY).score(data[1][:2])


def test_single_image_detector_ignores_the_live_capture(data):
    train, dev = data
    det = get_detector("foundation_smad", **TINY, epochs=1).fit(train[:24])
    s1 = det.score(dev[:6])
    swapped = [type(p)(id=p.id, suspect=p.suspect, live=dev[-1].live, label=p.label) for p in dev[:6]]
    np.testing.assert_array_equal(s1, det.score(swapped))

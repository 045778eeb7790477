"""The foundation detector with real weights: preprocessing of local checkpoints, class balance,
timm backbones, face alignment, unusable images, augmentation, LoRA targets, exact resume,
early stopping and precision (issue 11, part 2). Tiny random models only."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
pytest.importorskip("peft")

from madpad.errors import FaceNotFoundError, UsageError
from madpad.mad import Pair, load_detector
from madpad.mad.augment import AugmentConfig, augment_image, augmentation_rng
from madpad.mad.backbone import align_for_backbone, lora_module_names, preprocess_config, register_model_config
from madpad.mad.foundation import FoundationConfig, FoundationDetector, _Net
from madpad.mad.synthetic import synthetic_pairs

TINY = dict(backbone="madpad-tiny-vit", model_config="madpad-tiny-vit", pretrained=None, pair_feature="diff_prod",
            head_hidden=16, head_dropout=0.0, lora_rank=2, lora_alpha=4.0, lora_dropout=0.0, batch_size=8,
            lr_lora=1e-2, lr_head=3e-2, warmup=0.0, device="cpu", progress=False, patience=0, augment=0.0)
TIMM_TINY = dict(backbone_library="timm", model_config=None, backbone="vit_small_patch14_dinov2",
                 backbone_kwargs={"img_size": 28, "depth": 2, "embed_dim": 32, "num_heads": 2})
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def data():
    return synthetic_pairs(36, seed=1, attack_every=3), synthetic_pairs(12, seed=2)


def _normalize(preprocess):
    return [t for t in preprocess.transforms if type(t).__name__ == "Normalize"][0]


def _weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------- preprocessing
def test_local_open_clip_checkpoint_gets_the_preprocessing_of_its_model_config(tmp_path, monkeypatch):
    import open_clip
    import open_clip.factory

    # the config registered below must not outlive this test: open_clip's registry is process-wide, and
    # `weights verify` names an architecture by looking through it
    monkeypatch.setattr(open_clip.factory, "_MODEL_CONFIGS", dict(open_clip.factory._MODEL_CONFIGS))

    cfg_json = json.loads((__import__("madpad.mad.backbone").mad.backbone.resolve_model_config("madpad-tiny-vit")).read_text())
    cfg_json["preprocess_cfg"] = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "resize_mode": "squash"}
    path = tmp_path / "madpad-tiny-siglip-like.json"
    path.write_text(json.dumps(cfg_json))
    register_model_config(str(path))
    model = open_clip.create_model("madpad-tiny-siglip-like")
    weights = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), weights)
    net = _Net(FoundationConfig(**{**TINY, "backbone": "madpad-tiny-siglip-like", "model_config": str(path),
                                   "pretrained": str(weights)}).validate())
    norm = _normalize(net.preprocess)
    assert tuple(norm.mean) == (0.5, 0.5, 0.5) and tuple(norm.std) == (0.5, 0.5, 0.5)  # not OpenAI CLIP stats
    resize = net.preprocess.transforms[0]
    assert tuple(resize.size) == (64, 64)  # squash: both sides, no centre crop of the face
    # and the weights are the file's
    conv = [k for k in net.visual.state_dict() if k.endswith("conv1.weight")][0]
    torch.testing.assert_close(net.visual.state_dict()[conv], model.visual.state_dict()[conv], rtol=0, atol=0)


def test_preprocessing_of_a_local_file_comes_from_the_tag_and_is_never_guessed(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x")
    siglip = preprocess_config(FoundationConfig(backbone="ViT-B-16-SigLIP", pretrained=str(f)))
    assert siglip["mean"] == (0.5, 0.5, 0.5) and siglip["resize_mode"] == "squash"
    assert preprocess_config(FoundationConfig(backbone="ViT-B-16", pretrained=str(f)))["mean"] == OPENAI_MEAN
    # ViT-L-14's tags disagree (laion2b_s32b_b82k uses 0.5): the user must say which
    with pytest.raises(UsageError, match="preprocess_tag.*laion2b_s32b_b82k"):
        preprocess_config(FoundationConfig(backbone="ViT-L-14", pretrained=str(f)))
    tagged = preprocess_config(FoundationConfig(backbone="ViT-L-14", pretrained=str(f),
                                                preprocess_tag="laion2b_s32b_b82k"))
    assert tagged["mean"] == (0.5, 0.5, 0.5)
    user = preprocess_config(FoundationConfig(backbone="ViT-L-14", pretrained=str(f), image_mean=[0.1, 0.2, 0.3],
                                              image_std=[0.4, 0.5, 0.6], image_resize_mode="squash").validate())
    assert user["mean"] == (0.1, 0.2, 0.3) and user["std"] == (0.4, 0.5, 0.6) and user["resize_mode"] == "squash"
    # a pretrained tag (downloaded by open_clip) keeps open_clip's own choice
    assert preprocess_config(FoundationConfig(backbone="ViT-L-14", pretrained="openai")) == {}
    with pytest.raises(UsageError, match="not a pretrained tag"):
        preprocess_config(FoundationConfig(backbone="ViT-B-16", preprocess_tag="webli"))


# --------------------------------------------------------------------------- class balance
def _effective_class_weights(monkeypatch, data, class_balance, epochs=4):
    """Total loss weight each class receives over training: the sum, over every batch actually
    drawn, of each sample's weight in the batch loss (|dL/dz| at z = 0 is w * 0.5 / B)."""
    train, _ = data
    per_class = np.zeros(2)
    real = FoundationDetector._batch_loss

    def spy(self, logits, y):
        z = torch.zeros_like(logits, requires_grad=True)
        real(self, z, y).backward()
        w = z.grad.abs().numpy() * 2 * len(y)
        for c in (0, 1):
            per_class[c] += w[y.numpy() == c].sum()
        return real(self, logits, y)

    monkeypatch.setattr(FoundationDetector, "_batch_loss", spy)
    FoundationDetector(**{**TINY, "class_balance": class_balance, "epochs": epochs}).fit(train)
    return per_class


def test_each_class_balancing_weights_the_classes_equally_once(monkeypatch, data):
    y = np.array([p.y for p in data[0]])
    assert (y == 0).sum() == 2 * (y == 1).sum()  # bona fide : attack = 2 : 1
    none = _effective_class_weights(monkeypatch, data, "none")
    assert none[1] / none[0] == pytest.approx(0.5)  # unbalanced: attacks get half the weight
    weighted = _effective_class_weights(monkeypatch, data, "weighted")
    assert weighted[1] / weighted[0] == pytest.approx(1.0)
    sampler = _effective_class_weights(monkeypatch, data, "sampler", epochs=6)
    assert 0.75 < sampler[1] / sampler[0] < 1.33  # drawn equally (random draws), unweighted loss


def test_both_balancings_at_once_are_refused():
    with pytest.raises(UsageError, match="twice.*'weighted' or 'sampler'"):
        FoundationDetector(**{**TINY, "class_balance": "both"})


# --------------------------------------------------------------------------- timm backbone
def test_timm_backbone_loads_a_local_safetensors_file_with_timm_data_config(tmp_path, data):
    import timm
    from safetensors.torch import save_file

    ref = timm.create_model("vit_small_patch14_dinov2", pretrained=False, num_classes=0, **TIMM_TINY["backbone_kwargs"])
    torch.nn.init.normal_(ref.cls_token, std=0.5)  # something the random init of another run would not give
    state = {k: v.contiguous() for k, v in ref.state_dict().items()}
    save_file(state, str(tmp_path / "dinov2_tiny.safetensors"))
    params = {**TINY, **TIMM_TINY, "pretrained": str(tmp_path / "dinov2_tiny.safetensors"), "epochs": 1}
    det = FoundationDetector(**params, seed=5)
    net = _Net(det.config)
    for k in ("cls_token", "blocks.0.attn.qkv.base_layer.weight", "blocks.1.mlp.fc2.base_layer.weight"):
        assert torch.equal(net.visual.state_dict()[k], state[k.replace(".base_layer", "")]), k
    norm = _normalize(net.preprocess)
    assert tuple(round(float(m), 3) for m in norm.mean) == (0.485, 0.456, 0.406)  # DINOv2: ImageNet stats
    assert net.image_size() == (28, 28)
    train, dev = data
    det.fit(train[:16])
    det.save(tmp_path / "ck")
    head = json.loads((tmp_path / "ck" / "detector.json").read_text())
    assert head["backbone_in_checkpoint"] is False  # reloaded from the file, not copied
    np.testing.assert_array_equal(load_detector(tmp_path / "ck").score(dev), det.score(dev))
    with pytest.raises(UsageError, match="does not fit timm model"):
        _Net(FoundationConfig(**{**params, "backbone_kwargs": {**TIMM_TINY["backbone_kwargs"], "depth": 3}}))


# --------------------------------------------------------------------------- LoRA targets
def test_auto_lora_targets_are_the_blocks_attention_and_mlp_projections_only():
    import re

    oc = lora_module_names(_Net(FoundationConfig(**TINY).validate()).visual)
    block_part = r"transformer\.resblocks\.\d\.(attn|attn\.base_layer\.out_proj|mlp\.c_fc|mlp\.c_proj)"
    assert oc and all(re.fullmatch(block_part, n) for n in oc), oc
    assert len(oc) == 8  # 2 blocks x (attention, its out_proj, 2 MLP layers)
    for name in ("vit_small_patch14_dinov2", "vit_base_patch16_siglip_224"):  # SigLIP: attn_pool head
        cfg = FoundationConfig(**{**TINY, **TIMM_TINY, "backbone": name,
                                  "backbone_kwargs": {"img_size": 28 if "14" in name else 32, "depth": 2,
                                                      "embed_dim": 32, "num_heads": 2}}).validate()
        names = lora_module_names(_Net(cfg).visual)
        assert names == [f"blocks.{b}.{m}" for b in (0, 1) for m in ("attn.proj", "attn.qkv", "mlp.fc1", "mlp.fc2")]


# --------------------------------------------------------------------------- face alignment
@pytest.fixture(scope="module")
def face_and_rolled():
    import cv2

    from madpad.data.sample import sample_root
    from madpad.io import read_image

    img = read_image(sample_root() / "neutral" / "001_03.jpg")
    img = cv2.resize(img, (img.shape[1] * 320 // img.shape[0], 320), interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    M = cv2.getRotationMatrix2D((w / 2 + 15, h / 2 - 10), 12.0, 1.15)  # roll, scale and shift
    return img, cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def test_suspect_and_live_are_aligned_on_the_eyes_not_box_cropped(face_and_rolled):
    pytest.importorskip("dlib")
    img, rolled = face_and_rolled
    det = FoundationDetector(**TINY, face_crop="dlib_hog", face_landmarker="dlib5")
    a, b = det._prepare(img), det._prepare(rolled)
    assert a.shape == b.shape == (224, 224, 3)
    inner = (slice(40, 184), slice(40, 184))
    aligned_diff = np.abs(a[inner].astype(float) - b[inner]).mean()
    # an axis-aligned crop of the rolled face keeps the roll: compare rotating back by hand
    import cv2

    centred = cv2.warpAffine(b, cv2.getRotationMatrix2D((112, 112), 12.0, 1.0), (224, 224))
    assert aligned_diff < 12  # same face geometry after alignment (interpolation and landmark noise only)
    assert np.abs(a[inner].astype(float) - centred[inner]).mean() > 2 * aligned_diff
    # the eyes sit on the template positions: the crop is symmetric about the vertical axis of the eyes
    lm = det._face_landmarks(a)
    assert abs(lm[0, 1] - lm[1, 1]) < 3 and abs((lm[0, 0] + lm[1, 0]) / 2 - 112) < 4


def test_alignment_puts_given_eyes_on_the_arcface_template():
    img = np.zeros((200, 300, 3), np.uint8)
    img[:, :, 0] = np.arange(300)[None, :] % 256
    img[:, :, 1] = np.arange(200)[:, None]
    lm5 = np.array([[100, 80], [160, 95], [130, 120], [110, 150], [150, 160]], float)
    out = align_for_backbone(img, lm5, size=112, margin=1.0)
    # at margin 1 the crop is the ArcFace template: the left eye (38.29, 51.70) shows the input's eye pixel
    y, x = 52, 38
    assert abs(int(out[y, x, 0]) - 100) <= 2 and abs(int(out[y, x, 1]) - 80) <= 2


# --------------------------------------------------------------------------- unusable images
@pytest.fixture()
def pairs_with_bad_images(tmp_path, data, monkeypatch):
    """Training pairs plus one pair whose suspect has no face and one whose live capture is an
    unreadable file; the face finder is replaced by one that fails on flat images."""
    train, _ = data
    flat = np.full((64, 64, 3), 128, np.uint8)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")

    def landmarks(self, img):
        if img.std() < 1:
            raise FaceNotFoundError("no face found")
        return np.array([[24, 28], [40, 28], [32, 36], [26, 46], [38, 46]], float)

    monkeypatch.setattr(FoundationDetector, "_face_landmarks", landmarks)
    bad = [Pair("noface", flat, train[0].live, "attack", "blend"), Pair("unreadable", train[1].suspect, str(broken),
                                                                         "bona_fide")]
    return train[:16], bad


def test_training_skips_unusable_images_with_a_count(pairs_with_bad_images):
    good, bad = pairs_with_bad_images
    det = FoundationDetector(**{**TINY, "face_crop": "dlib_hog", "epochs": 1}).fit(good + bad)
    assert det.skipped_ == {"no_face": 1, "unreadable": 1}
    assert det.class_counts_ == {"bona_fide": sum(p.y == 0 for p in good), "attack": sum(p.y == 1 for p in good)}


def test_scoring_gives_a_status_row_per_unusable_pair(pairs_with_bad_images, tmp_path):
    good, bad = pairs_with_bad_images
    det = FoundationDetector(**{**TINY, "face_crop": "dlib_hog", "epochs": 1}).fit(good)
    r = det.score_pairs(good[:2] + bad)
    assert r.status == ["ok", "ok", "no_face", "unreadable"]
    assert np.isfinite(r.scores[:2]).all() and np.isnan(r.scores[2:]).all()
    assert r.error[2].startswith("suspect: ") and "no face" in r.error[2]
    assert r.error[3].startswith("live: ") and "broken.png" in r.error[3]


# --------------------------------------------------------------------------- augmentation
def test_augmentation_is_seeded_and_changes_every_epoch():
    img = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    a = augment_image(img, augmentation_rng(0, 0, 5, "suspect"))
    assert a.shape == img.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, augment_image(img, augmentation_rng(0, 0, 5, "suspect")))
    assert not np.array_equal(a, augment_image(img, augmentation_rng(0, 1, 5, "suspect")))  # next epoch
    assert not np.array_equal(a, augment_image(img, augmentation_rng(0, 0, 5, "live")))
    np.testing.assert_array_equal(augment_image(img, augmentation_rng(0, 0, 5), AugmentConfig(strength=0)), img)


def test_training_sees_new_augmentations_each_epoch_and_the_same_ones_for_a_seed(monkeypatch, data):
    train, _ = data
    seen: list = []
    real = FoundationDetector._train_batch

    def spy(self, images, idx, *, epoch, role):
        x = real(self, images, idx, epoch=epoch, role=role)
        seen.append((epoch, role, tuple(idx), x.clone()))
        return x

    monkeypatch.setattr(FoundationDetector, "_train_batch", spy)
    FoundationDetector(**{**TINY, "augment": 1.0, "epochs": 2, "batch_size": 16}).fit(train[:16])
    first = list(seen)
    by_epoch = {(e, r): dict(zip(i, x)) for e, r, i, x in first}
    for role in ("suspect", "live"):
        e0, e1 = by_epoch[(0, role)], by_epoch[(1, role)]
        assert all(not torch.equal(e0[i], e1[i]) for i in e0)  # each image changes between epochs
    seen.clear()
    FoundationDetector(**{**TINY, "augment": 1.0, "epochs": 2, "batch_size": 16}).fit(train[:16])
    assert all(torch.equal(a[3], b[3]) for a, b in zip(first, seen))


def test_low_resolution_grey_and_blurred_live_captures_in_training(monkeypatch, data):
    """augment_low_res / augment_grey / augment_blur, as for the FR-embedding detectors: the live capture (never the
    suspect) of a training draw is shrunk to a shortest side of 100-240 px and/or turned grey,
    seeded per (seed, epoch, pair); off by default, and only with the augmentation on."""
    import cv2

    import madpad.mad.augment as aug

    train, _ = data
    big = [Pair(p.id, cv2.resize(np.asarray(p.suspect), (300, 300)), cv2.resize(np.asarray(p.live), (300, 300)),
                p.label, p.species, p.subjects) for p in train[:8]]
    calls: list = []
    blurs: list = []
    real = aug.live_augmentation

    def spy(image, rng, config=None, *, side=None, grey=False, blur=None):
        out = real(image, rng, config, side=side, grey=grey, blur=blur)
        calls.append((image.shape, side, grey, out))
        blurs.append(blur)
        return out

    monkeypatch.setattr(aug, "live_augmentation", spy)

    def fit(**options):
        calls.clear()
        blurs.clear()
        FoundationDetector(**{**TINY, "augment": 1.0, "epochs": 2, "batch_size": 8, **options}).fit(big)
        return list(calls)

    plain = fit()
    assert len(plain) == 16 and all(side is None and not grey and out.shape == shape
                                     for shape, side, grey, out in plain)
    both = fit(augment_low_res=1.0, augment_grey=1.0)
    assert len(both) == 16
    for shape, side, grey, out in both:  # the tiny backbone's prepared images are 128 px: smaller draws shrink them
        assert 100 <= side <= 240 and min(out.shape[:2]) == min(round(side), min(shape[:2]))
        assert grey and np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert sum(min(out.shape[:2]) < min(shape[:2]) for shape, _, _, out in both) >= 2
    assert len({side for _, side, _, _ in both}) == 16  # a draw per pair and epoch
    assert [c[1] for c in fit(augment_low_res=1.0, augment_grey=1.0)] == [c[1] for c in both]  # seeded
    half = fit(augment_low_res=0.5)
    assert 0 < sum(side is not None for _, side, _, _ in half) < 16 and not any(g for _, _, g, _ in half)
    assert blurs == [None] * 16
    # augment_blur: an out-of-focus live capture, sigma a fraction of its side drawn per pair and epoch;
    # the other draws stay as they were
    blurred = fit(augment_low_res=0.5, augment_blur=1.0)
    assert [c[1] for c in blurred] == [c[1] for c in half]
    assert len(set(blurs)) == 16 and all(aug.BLUR_SIDE_FRACTION[0] <= b <= aug.BLUR_SIDE_FRACTION[1] for b in blurs)
    with pytest.raises(UsageError, match="need augment > 0"):
        FoundationConfig(**{**TINY, "augment_low_res": 0.5}).validate()
    with pytest.raises(UsageError, match="augment_grey"):
        FoundationConfig(**{**TINY, "augment": 1.0, "augment_grey": 1.5}).validate()
    with pytest.raises(UsageError, match="augment_blur must be a probability"):
        FoundationConfig(**{**TINY, "augment": 1.0, "augment_blur": -1}).validate()
    with pytest.raises(UsageError, match="need augment > 0"):
        FoundationConfig(**{**TINY, "augment_blur": 0.5}).validate()


# --------------------------------------------------------------------------- resume, early stopping
def test_resume_after_a_crash_gives_bit_identical_weights(data, tmp_path, monkeypatch):
    train, _ = data
    cfg = {**TINY, "epochs": 3, "lora_dropout": 0.1, "head_dropout": 0.1, "augment": 1.0,
           "class_balance": "sampler"}
    full = FoundationDetector(**cfg, checkpoint_dir=str(tmp_path / "a")).fit(train)

    def crash(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(FoundationDetector, "_after_epoch", crash)
    with pytest.raises(KeyboardInterrupt):
        FoundationDetector(**cfg, checkpoint_dir=str(tmp_path / "b")).fit(train)
    monkeypatch.undo()
    resumed = FoundationDetector(**cfg, checkpoint_dir=str(tmp_path / "b")).fit(train)
    assert [h["epoch"] for h in resumed.history_] == [0, 1, 2]
    assert _weights_equal(resumed.net_.lora_state(), full.net_.lora_state())
    assert _weights_equal(resumed.net_.head_state(), full.net_.head_state())
    assert _weights_equal({k: v for k, v in resumed.net_.visual.state_dict().items() if "lora_" not in k},
                          {k: v for k, v in full.net_.visual.state_dict().items() if "lora_" not in k})


def test_early_stopping_stops_at_patience_and_restores_the_best_epoch(data, monkeypatch):
    train, dev = data
    script = [0.30, 0.20, 0.25, 0.22, 0.40, 0.10]  # best at epoch 1, then 3 epochs without improvement
    states: list = []
    monkeypatch.setattr(FoundationDetector, "_dev_d_eer", lambda self, net, d, y, device: script[len(self.history_)])
    monkeypatch.setattr(FoundationDetector, "_after_epoch",
                        lambda self, epoch: states.append((self.net_.lora_state(), self.net_.head_state())))
    det = FoundationDetector(**{**TINY, "epochs": 6, "patience": 3}).fit(train[:16], dev=dev)
    assert [h["dev_d_eer"] for h in det.history_] == script[:5]  # epoch 5 never ran
    assert det.best_epoch_ == 1
    assert _weights_equal(det.net_.lora_state(), states[1][0]) and _weights_equal(det.net_.head_state(), states[1][1])
    assert not _weights_equal(det.net_.head_state(), states[4][1])


# --------------------------------------------------------------------------- precision
@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16),
                                              ("fp32", torch.float32)])
def test_reduced_precision_keeps_the_dtypes_it_claims(precision, dtype, data, tmp_path):
    train, dev = data
    det = FoundationDetector(**{**TINY, "precision": precision, "epochs": 2}).fit(train[:16])

    def dtypes(d):
        frozen = {p.dtype for n, p in d.net_.visual.named_parameters() if "lora_" not in n}
        trained = {p.dtype for n, p in d.net_.visual.named_parameters() if "lora_" in n}
        trained |= {p.dtype for p in d.net_.head.parameters()}
        return frozen, trained

    assert dtypes(det) == ({dtype}, {torch.float32})  # after training (peft's merges included)
    s = det.score(dev)
    assert dtypes(det) == ({dtype}, {torch.float32}) and np.isfinite(s).all()
    det.save(tmp_path / "ck")
    assert json.loads((tmp_path / "ck" / "detector.json").read_text())["training_precision"] == str(dtype)[6:]
    back = load_detector(tmp_path / "ck")
    np.testing.assert_array_equal(back.score(dev), s)
    assert dtypes(back) == ({dtype}, {torch.float32})

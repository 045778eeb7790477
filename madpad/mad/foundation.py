"""DifFoundMAD-style detector: an open_clip vision backbone fine-tuned with LoRA + a small head.

Differential mode (D-MAD, default): both images go through the same backbone; the pair
feature is built from the L2-normalised embeddings of the suspect image ``s`` and the live
capture ``l``; ``pair_feature`` selects it:

* ``diff``      ``s - l`` (default, the differential paradigm)
* ``absdiff``   ``|s - l|``
* ``prod``      ``s * l``
* ``concat``    ``[s, l]``
* ``diff_prod`` ``[s - l, |s - l|, s * l]``

Single-image mode (S-MAD, ``single_image=True``): the feature is ``s`` alone; the live
capture is ignored. The head is a linear layer or a one-hidden-layer MLP giving one logit;
the score is ``sigmoid(logit)`` in [0, 1], **higher = more likely a morph** (attack when
``score >= threshold``).

Backbones (``backbone_library``):

* ``open_clip`` (default): ``backbone`` is the architecture name (``ViT-B-16``, ``ViT-L-14``,
  ``ViT-B-16-SigLIP``, or a name registered from ``model_config`` JSON), ``pretrained`` a tag
  (``openai``, ``laion2b_s34b_b88k``: downloaded by open_clip) or a local checkpoint file.
  With a local file open_clip itself would fall back to OpenAI CLIP mean/std and
  shortest-side resizing; :func:`preprocess_config` takes them instead from
  ``preprocess_tag`` (a pretrained tag of the architecture), the model config's
  ``preprocess_cfg``, or the architecture's tags when they all agree, and refuses to guess
  otherwise. ``image_mean``/``image_std``/``image_resize_mode``/``image_interpolation``
  override everything.
* ``timm``: ``backbone`` is a timm model name (``vit_small_patch14_dinov2``,
  ``vit_base_patch16_siglip_224``...), ``backbone_kwargs`` its creation keywords,
  ``pretrained`` a local ``.safetensors``/``.pth`` file of its weights (timm never
  downloads here); images go through timm's own data config of that model.

``pretrained=None`` gives random weights (tests, speed measurements).

Before the backbone, ``face_crop`` (a :mod:`madpad.face` detector name) aligns suspect and
live capture the same way: a similarity transform puts the eye centres on the ArcFace
template's eye positions in a square crop ``crop_margin`` times the template's size
(:func:`align_for_backbone`), so the two images differ by the face, not by roll or scale.
An image without a usable face (or an unreadable file) gives a per-pair ``status`` when
scoring (``score_pairs``) and is skipped, with a count, when training.

LoRA (peft) adapters are injected into the transformer blocks' attention and MLP
projections only (``lora_targets="auto"``, :func:`auto_lora_targets`): never the patch
embedding, nor a pooling head such as SigLIP's. Targeting only ``out_proj`` is refused:
``nn.MultiheadAttention`` can bypass it, and those weights would never train.

Training: AdamW with separate learning rates for LoRA and head, linear warm-up then cosine
decay (per step), one class balancing (``class_balance``: ``weighted`` BCE with
``pos_weight = n_bona_fide / n_attack``, ``sampler`` = ``WeightedRandomSampler`` drawing both
classes equally, or ``none``), seeded augmentation that differs every epoch (``augment``:
strength, :mod:`madpad.mad.augment`; ``augment_low_res`` / ``augment_grey`` / ``augment_blur``: the
probability that the live capture is first shrunk to a shortest side of 100-240 px, comes out
grey, or is out of focus, as for the FR-embedding detectors), ``precision`` (``fp32``; ``bf16``/``fp16``: the frozen
backbone weights are stored in that type and the forward runs under autocast, LoRA and head
stay float32), early stopping on the dev selection key (:mod:`madpad.mad.selection`: D-EER, ties
broken by BPCER@APCER=1 %, 5 %, partial AUC, tail margin) with the best epoch's weights restored,
resumable from ``<checkpoint_dir>/last.safetensors`` (written atomically each epoch; a resumed
run gives bit-identical weights). Checkpoints are safetensors + JSON: loading never unpickles.

This module holds the configuration and the detector classes; the backbone, its preprocessing,
LoRA targets, alignment and the trained network are in :mod:`madpad.mad.backbone`, class
balancing, the learning-rate schedule and the resume file in :mod:`madpad.mad.optimization`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from madpad.errors import UsageError
from madpad.io import downscale
from madpad.mad.base import (
    MorphDetector,
    Pair,
    as_pairs,
    check_is_fitted,
    image_key,
    labels_of,
    load_image,
    read_header,
    write_header,
)
from madpad.mad.backbone import PAIR_FEATURES, _Net, _torch, align_for_backbone, compute_dtype
from madpad.mad.cache import FeatureCache, cached_features
from madpad.mad.optimization import _load_resume, _save_resume, class_pos_weight, make_sampler, warmup_cosine
from madpad.mad.selection import as_key, compare_keys
from madpad.registry import check_keywords

log = logging.getLogger(__name__)

CLASS_BALANCE = ("weighted", "sampler", "none")
BACKBONE_LIBRARIES = ("open_clip", "timm")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# ArcFace 112x112 template: eye centres (x, y) of the 5-point template


@dataclass
class FoundationConfig:
    """Every option of :class:`FoundationDetector` (the checkpoint's JSON config)."""

    backbone: str = "ViT-B-16"
    pretrained: str | None = None
    model_config: str | None = None          # open_clip JSON config file registered before building
    backbone_library: str = "open_clip"      # open_clip | timm
    backbone_kwargs: dict | None = None      # timm: create_model keywords (img_size, depth, ...)
    preprocess_tag: str | None = None        # open_clip tag whose mean/std/resize mode a local file uses
    image_mean: list | None = None           # user-named preprocessing (overrides the above)
    image_std: list | None = None
    image_resize_mode: str | None = None     # open_clip: shortest | longest | squash
    image_interpolation: str | None = None   # bicubic | bilinear | random
    single_image: bool = False               # True = S-MAD (suspect only)
    pair_feature: str = "diff"
    head_hidden: int = 256                   # 0 = linear head
    head_dropout: float = 0.1
    lora_rank: int = 4
    lora_alpha: float = 8.0
    lora_dropout: float = 0.1
    lora_targets: Any = "auto"               # "auto" or a list of module-name suffixes
    epochs: int = 10
    batch_size: int = 16
    lr_lora: float = 1e-4
    lr_head: float = 1e-3
    weight_decay: float = 0.05
    warmup: float = 0.1                      # fraction of all steps (< 1) or a step count (>= 1)
    class_balance: str = "weighted"
    augment: float = 1.0                     # training augmentation strength (0 = off)
    augment_chains: str = "attacker"         # with augment: the suspect's post-processing chain profile
                                             # (madpad.mad.chains.PROFILES; "none" = photometric only)
    augment_low_res: float = 0.0             # with augment: probability that the live capture is first shrunk
                                             # to a shortest side of 100-240 px (madpad.mad.augment)
    augment_grey: float = 0.0                # with augment: probability that the live capture comes out grey
    augment_blur: float = 0.0                # with augment: probability that the live capture is out of focus
    patience: int = 5                        # epochs without a better dev selection key; 0 = off
    seed: int = 0
    device: str = "auto"                     # auto | cpu | cuda | cuda:N
    amp: bool = True                         # precision=auto: mixed precision on CUDA
    precision: str = "auto"                  # auto | fp32 | bf16 | fp16
    face_crop: str | None = None             # None or a madpad.face detector name (e.g. dlib_hog)
    face_landmarker: str | None = "dlib5"    # landmarker giving the eyes for the alignment
    crop_margin: float = 1.6                 # aligned crop side = margin x the ArcFace template side
    checkpoint_dir: str | None = None        # where last.safetensors (resume state) goes
    resume: bool = True
    progress: bool = True
    eval_batch_size: int = 32

    def validate(self) -> FoundationConfig:
        if self.pair_feature not in PAIR_FEATURES:
            raise UsageError(f"pair_feature must be one of {list(PAIR_FEATURES)}; got {self.pair_feature!r}")
        if self.class_balance == "both":
            raise UsageError("class_balance 'both' applied the class balance twice (balanced sampler and "
                             "pos_weight together); use 'weighted' or 'sampler'")
        if self.class_balance not in CLASS_BALANCE:
            raise UsageError(f"class_balance must be one of {list(CLASS_BALANCE)}; got {self.class_balance!r}")
        if self.backbone_library not in BACKBONE_LIBRARIES:
            raise UsageError(f"backbone_library must be one of {list(BACKBONE_LIBRARIES)}; "
                             f"got {self.backbone_library!r}")
        if self.precision not in PRECISIONS:
            raise UsageError(f"precision must be one of {list(PRECISIONS)}; got {self.precision!r}")
        if self.backbone_kwargs is not None and not isinstance(self.backbone_kwargs, dict):
            raise UsageError(f"backbone_kwargs must be a mapping; got {self.backbone_kwargs!r}")
        for name in ("image_mean", "image_std"):
            v = getattr(self, name)
            if v is not None:
                if isinstance(v, (int, float)):
                    v = [float(v)] * 3
                if len(v) != 3 or not all(isinstance(x, (int, float)) for x in v):
                    raise UsageError(f"{name} must be three numbers (R, G, B); got {getattr(self, name)!r}")
                setattr(self, name, [float(x) for x in v])
        if self.image_std is not None and min(self.image_std) <= 0:
            raise UsageError(f"image_std must be positive; got {self.image_std}")
        if float(self.augment) < 0:
            raise UsageError(f"augment (strength) must be >= 0; got {self.augment}")
        from madpad.mad.augment import check_live_draws
        from madpad.mad.chains import check_profile

        check_profile(self.augment_chains)
        self.augment_low_res, self.augment_grey, self.augment_blur = check_live_draws(
            self.augment_low_res, self.augment_grey, self.augment_blur)
        if (self.augment_low_res or self.augment_grey or self.augment_blur) and not float(self.augment) > 0:
            raise UsageError("augment_low_res, augment_grey and augment_blur are draws of the training augmentation; "
                             f"they need augment > 0 (got augment={self.augment})")
        if float(self.crop_margin) < 1.0:
            raise UsageError(f"crop_margin must be >= 1; got {self.crop_margin}")
        for name in ("epochs", "batch_size", "lora_rank"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"{name} must be >= 1; got {getattr(self, name)}")
        if not (0 <= self.lora_dropout < 1 and 0 <= self.head_dropout < 1):
            raise UsageError("lora_dropout and head_dropout must be in [0, 1)")
        targets = self.lora_targets
        if targets != "auto":
            if isinstance(targets, str):
                targets = [t.strip() for t in targets.split(",") if t.strip()]
            if not targets or not all(isinstance(t, str) for t in targets):
                raise UsageError(f"lora_targets must be 'auto' or a list of module names; got {self.lora_targets!r}")
            if set(targets) <= {"out_proj"}:
                raise UsageError("lora_targets=['out_proj'] alone never trains: nn.MultiheadAttention's fast path "
                                 "bypasses out_proj; target 'attn' (plus 'c_fc', 'c_proj') instead")
            self.lora_targets = list(targets)
        return self


# --------------------------------------------------------------------------- detector
class FoundationDetector(MorphDetector):
    """Differential (or single-image) morph detector on an open_clip or timm backbone with LoRA.

    ``score(pairs)`` returns sigmoid probabilities, float64 (n,), higher = more likely a
    morph (NaN where an image has no usable face; ``score_pairs`` says why); a pair is
    classified as an attack when ``score >= threshold``. See the module docstring for the
    options (all keyword-only; ``FoundationConfig`` lists them).
    """

    name = "foundation"
    checkpoint_kind = "foundation"
    runtime_options = {"device": "device", "batch_size": "eval_batch_size", "progress": "progress"}

    @classmethod
    def training_defaults(cls, out_dir: str | os.PathLike, seed: int) -> dict:
        """Resume state under ``out_dir/_train_state``; the run's seed."""
        return {"checkpoint_dir": str(Path(out_dir) / "_train_state"), "seed": int(seed)}

    def __init__(self, **params: Any):
        check_keywords(f"morph detector {self.name!r}", params, FoundationConfig.__dataclass_fields__)
        self.config = FoundationConfig(**params).validate()
        self.net_: _Net | None = None
        self.history_: list[dict] = []
        self.model_id_: str | None = None
        self.skipped_: dict = {}
        self._img_cache: dict[str, Any] = {}
        self._failures: dict[str, tuple[str, str]] = {}
        self._face_tools = None
        self.feature_cache = FeatureCache()

    # ------------------------------------------------------------------ device / images
    def _device(self):
        torch = _torch()
        d = self.config.device
        if d == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if d.startswith("cuda") and not torch.cuda.is_available():
            raise UsageError(f"device={d!r} requested but CUDA is not available; use device=cpu or auto")
        return torch.device(d)

    def _face_landmarks(self, img: np.ndarray) -> np.ndarray:
        """Landmarks (5 or 68 points) of the face used for the alignment; raises
        FaceNotFoundError (or ImageReadError) for per-image problems."""
        from madpad.errors import FaceNotFoundError
        from madpad.face.analyze import analyze_face, resolve_detector, resolve_landmarker

        if getattr(self, "_face_tools", None) is None:  # built once (the landmark model loads from disk)
            self._face_tools = (resolve_detector(self.config.face_crop),
                                resolve_landmarker(self.config.face_landmarker))
        a = analyze_face(img, detector=self._face_tools[0], landmarker=self._face_tools[1])
        if a.status != "ok":
            raise FaceNotFoundError(f"no usable face for the alignment ({a.status}: {a.error})")
        lm = a.landmarks5 if getattr(a, "landmarks5", None) is not None else a.landmarks
        if lm is None:
            raise FaceNotFoundError("the face analysis gave no landmarks for the alignment")
        return np.asarray(lm, dtype=np.float64)

    def _prepare(self, image) -> np.ndarray:
        """Decoded RGB uint8 image, face-aligned when ``face_crop`` is set (before augmentation
        and the backbone's own transform)."""
        img = load_image(image)
        size = max(self.net_.image_size()) if self.net_ is not None else 224
        if not self.config.face_crop:
            # no alignment: at most twice the input size (memory of the training memo; the
            # backbone's transform resizes to its input size anyway)
            return downscale(img, 2 * size)[0]
        return align_for_backbone(img, self._face_landmarks(img), size=size, margin=self.config.crop_margin)

    def _to_tensor(self, img: np.ndarray):
        from PIL import Image

        return self.net_.preprocess(Image.fromarray(img))

    def _memo_key(self, image) -> str:
        return ("p:" + str(image)) if isinstance(image, (str, os.PathLike)) else image_key(image)

    def _train_tensor(self, image, *, epoch: int, item: int, role: str):
        """Training input: the prepared image (memoised for one fit), augmented with a draw
        that depends on (seed, epoch, pair, role) only, then the backbone's transform."""
        key = self._memo_key(image)
        strength = float(self.config.augment)
        if strength <= 0:
            t = self._img_cache.get(("t", key))
            if t is None:
                t = self._img_cache[("t", key)] = self._to_tensor(self._img_cache[key])
            return t
        from madpad.mad.augment import (
            AugmentConfig,
            augmentation_rng,
            live_augmentation,
            live_draws,
            suspect_augmentation,
        )

        c = self.config
        rng = augmentation_rng(c.seed, epoch, item, role)
        cfg = AugmentConfig(strength=strength)
        if role == "suspect":  # bona fide and morph suspects alike: an attacker/issuance chain, then the rest
            return self._to_tensor(suspect_augmentation(self._img_cache[key], rng, profile=c.augment_chains,
                                                        config=cfg))
        # the live capture (aligned crop or whole image): optionally from a camera that sees the face small
        # (shrunk before the other changes; the backbone's transform enlarges it again) or without colour
        d = live_draws(c.seed, epoch, item, low_res=c.augment_low_res, grey=c.augment_grey, blur=c.augment_blur)
        return self._to_tensor(live_augmentation(self._img_cache[key], rng, cfg, side=d.side, grey=d.grey, blur=d.blur))

    def _train_batch(self, images, idx, *, epoch: int, role: str):
        torch = _torch()
        return torch.stack([self._train_tensor(images[i], epoch=epoch, item=i, role=role) for i in idx])

    def _autocast(self, device):
        torch = _torch()
        import contextlib

        dtype = self.net_.dtype if self.net_ is not None else torch.float32
        if dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=dtype)

    def _load_training_images(self, pairs: list[Pair], *, where: str) -> tuple[list[Pair], dict]:
        """Decode (and align) every distinct training image once; pairs with an image that
        cannot be used are dropped and counted by reason (logged, never fatal)."""
        from madpad.errors import MadpadError
        from madpad.mad.features import _status_of

        bad: dict[str, str] = {}
        for p in pairs:
            for im in ((p.suspect,) if self.config.single_image else (p.suspect, p.live)):
                key = self._memo_key(im)
                if key in self._img_cache or key in bad:
                    continue
                try:
                    self._img_cache[key] = self._prepare(im)
                except (MadpadError, OSError, ValueError) as exc:
                    bad[key] = _status_of(exc) if isinstance(exc, MadpadError) else "unreadable"
                    log.warning("%s: skipping %s: %s", where, im if not isinstance(im, np.ndarray) else "image", exc)
        keep, skipped = [], {}
        for p in pairs:
            ims = (p.suspect,) if self.config.single_image else (p.suspect, p.live)
            reasons = [bad[k] for k in map(self._memo_key, ims) if k in bad]
            if reasons:
                skipped[reasons[0]] = skipped.get(reasons[0], 0) + 1
            else:
                keep.append(p)
        if skipped:
            log.warning("%s: %d of %d pairs skipped (%s)", where, len(pairs) - len(keep), len(pairs),
                        ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items())))
        return keep, skipped

    # ------------------------------------------------------------------ training
    def _batch_loss(self, logits, y):
        """The training loss of one batch: BCE, with ``pos_weight`` for ``class_balance=weighted``."""
        torch = _torch()
        pw = torch.tensor([self.pos_weight_], device=logits.device, dtype=logits.dtype)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=pw)

    def _dev_d_eer(self, net, dev, y_dev, device):
        """Dev selection key of the current weights (:func:`madpad.mad.selection.selection_key`:
        D-EER, then BPCER@APCER=1 % and 5 %, partial AUC, tail margin; pairs without a usable
        image dropped). A hook for tests, which may return a bare D-EER (other criteria tied)."""
        from madpad.mad.selection import selection_key

        s = self._score_with(net, dev, device, cache=None)
        return selection_key(s, y_dev, [p.species for p in dev])

    def _after_epoch(self, epoch: int) -> None:
        """Called after each finished epoch (its resume state written); a hook for tests."""

    def fit(self, pairs: Sequence[Pair], *, dev: Sequence[Pair] | None = None) -> FoundationDetector:
        """Train LoRA + head on labelled pairs; early-stop on the D-EER of ``dev`` (if given),
        keeping the best epoch's weights. Pairs with an unusable image are skipped (counted in
        ``skipped_``)."""
        torch = _torch()
        from tqdm.auto import tqdm

        cfg = self.config
        pairs = as_pairs(pairs)
        labels_of(pairs, where="training pairs")
        dev = as_pairs(dev) if dev else None
        if dev is not None:
            labels_of(dev, where="dev pairs")
        device = self._device()
        self.net_ = _Net(cfg)
        self._img_cache.clear()
        self._failures.clear()
        pairs, self.skipped_ = self._load_training_images(pairs, where="training pairs")
        y = labels_of(pairs, where="training pairs (after skipping unusable images)")
        y_dev = None
        if dev is not None:
            y_dev = np.array([p.y for p in dev], dtype=np.int64)
        net = self.net_.to(device, compute_dtype(cfg, device))
        self.precision_ = str(net.dtype).replace("torch.", "")
        lora_p, head_p = net.trainable_parameters()
        opt = torch.optim.AdamW([{"params": lora_p, "lr": cfg.lr_lora, "name": "lora"},
                                 {"params": head_p, "lr": cfg.lr_head, "name": "head"}],
                                weight_decay=cfg.weight_decay)
        n = len(pairs)
        n_pos, n_neg = int(y.sum()), int((1 - y).sum())
        self.class_counts_ = {"bona_fide": n_neg, "attack": n_pos}
        self.pos_weight_ = class_pos_weight(y) if cfg.class_balance == "weighted" else 1.0
        steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
        total = cfg.epochs * steps_per_epoch
        warm = int(cfg.warmup if cfg.warmup >= 1 else round(cfg.warmup * total))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_cosine(step, warmup=warm, total=total))
        gen = torch.Generator().manual_seed(int(cfg.seed))
        sampler = make_sampler(y, cfg.class_balance, generator=gen)
        scaler = None
        if device.type == "cuda" and net.dtype == torch.float16:
            scaler = torch.amp.GradScaler("cuda")

        start_epoch, best = 0, {"d_eer": math.inf, "loss": math.inf, "epoch": -1}
        best_state = None
        self.history_ = []
        ckdir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
        fingerprint = self._fingerprint(pairs, dev)
        if ckdir is not None and cfg.resume and (ckdir / "last.safetensors").is_file():
            meta = _load_resume(ckdir / "last.safetensors", net, opt, sched, gen, fingerprint, scaler=scaler)
            start_epoch = meta["epoch"] + 1
            best = meta["best"]
            self.history_ = meta["history"]
            best_state = meta.get("best_state")
            log.info("resumed from %s at epoch %d", ckdir / "last.safetensors", start_epoch)
        bad_epochs = 0
        if self.history_ and dev is not None:
            bad_epochs = len(self.history_) - 1 - best["epoch"]
        suspects = [p.suspect for p in pairs]
        lives = [p.live for p in pairs]
        for epoch in range(start_epoch, cfg.epochs):
            if cfg.patience and dev is not None and bad_epochs >= cfg.patience:
                break
            net.train(True)
            order = list(sampler) if sampler is not None else torch.randperm(n, generator=gen).tolist()
            losses = []
            t0 = time.time()
            bar = tqdm(range(0, n, cfg.batch_size), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not cfg.progress,
                       leave=False)
            for start in bar:
                idx = order[start:start + cfg.batch_size]
                xs = self._train_batch(suspects, idx, epoch=epoch, role="suspect").to(device)
                yt = torch.tensor(y[idx], dtype=torch.float32, device=device)
                with self._autocast(device):
                    if cfg.single_image:
                        es = net.embed(xs)
                        el = None
                    else:
                        xl = self._train_batch(lives, idx, epoch=epoch, role="live").to(device)
                        emb = net.embed(torch.cat([xs, xl]))
                        es, el = emb[:len(idx)], emb[len(idx):]
                    logits = net.logits_from_embeddings(es, el).float()
                loss = self._batch_loss(logits, yt)
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss.backward()
                    opt.step()
                sched.step()
                losses.append(float(loss.detach()))
                bar.set_postfix(loss=f"{np.mean(losses):.4f}")
            rec = {"epoch": epoch, "train_loss": float(np.mean(losses)), "seconds": round(time.time() - t0, 2),
                   "lr_lora": opt.param_groups[0]["lr"], "lr_head": opt.param_groups[1]["lr"]}
            if dev is not None:
                # the tie-free dev key (madpad.mad.selection); all criteria tied -> lower training loss
                key = as_key(self._dev_d_eer(net, dev, y_dev, device))
                rec["dev_d_eer"], rec["dev_key"] = key.d_eer, key.as_dict()
                cmp, _ = compare_keys(key, as_key(best["key"] if best.get("key") is not None else best["d_eer"]))
                improved = cmp < 0 or (cmp == 0 and rec["train_loss"] < best["loss"])
            else:
                improved = True  # no dev set: keep the last epoch
            if improved:
                best = {"d_eer": rec.get("dev_d_eer", math.nan), "key": rec.get("dev_key"), "loss": rec["train_loss"],
                        "epoch": epoch}
                best_state = (net.lora_state(), net.head_state())
                bad_epochs = 0
            else:
                bad_epochs += 1
            self.history_.append(rec)
            log.info("epoch %d: %s", epoch + 1, rec)
            if ckdir is not None:
                _save_resume(ckdir / "last.safetensors", net, opt, sched, gen, epoch=epoch, best=best,
                             history=self.history_, best_state=best_state, fingerprint=fingerprint, scaler=scaler)
            self._after_epoch(epoch)
        if best_state is not None:
            net.load_trainable(*best_state)
        net.train(False)
        self.best_epoch_ = int(best["epoch"])
        self._img_cache.clear()
        self._finish()
        return self

    def _fingerprint(self, pairs, dev) -> str:
        cfg = asdict(self.config)
        for k in ("checkpoint_dir", "resume", "progress", "device", "eval_batch_size"):
            cfg.pop(k, None)
        h = hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode())
        for p in list(pairs) + list(dev or []):
            h.update(f"{p.id}|{p.label}|{p.suspect}|{p.live}".encode())
        return h.hexdigest()

    def _finish(self) -> None:
        h = hashlib.sha256(json.dumps(asdict(self.config), sort_keys=True, default=str).encode())
        for k, v in sorted({**self.net_.lora_state(), **{"head." + a: b for a, b in self.net_.head_state().items()}}.items()):
            h.update(k.encode())
            h.update(v.float().numpy().tobytes())
        self.model_id_ = "foundation:" + h.hexdigest()[:24]
        self.feature_cache.clear_memory()

    # ------------------------------------------------------------------ scoring
    def embed_images(self, images: Sequence[Any], *, cache: FeatureCache | None = None) -> np.ndarray:
        """L2-normalised embeddings (N, D) of images under the trained backbone (cached per
        image; a row of NaNs for an image without a usable face)."""
        check_is_fitted(self, "net_")
        return self._embed_with(self.net_, images, self._device(), cache=cache if cache is not None
                                else self.feature_cache, model_id=self.model_id_)

    def _embed_with(self, net, images, device, *, cache, model_id=None):
        torch = _torch()
        from madpad.errors import MadpadError
        from madpad.mad.features import _status_of

        def compute(ims):
            out = np.full((len(ims), net.embed_dim), np.nan, dtype=np.float32)
            good, tensors = [], []
            for j, im in enumerate(ims):
                try:
                    tensors.append(self._to_tensor(self._prepare(im)))
                    good.append(j)
                except (MadpadError, OSError, ValueError) as exc:
                    st = _status_of(exc) if isinstance(exc, MadpadError) else "unreadable"
                    name = str(im) if not isinstance(im, np.ndarray) else "image"
                    self._failures[self._fail_key(im)] = (st, f"{name}: {exc}")
            net.train(False)
            bs = self.config.eval_batch_size
            with torch.no_grad():
                for i in range(0, len(good), bs):
                    x = torch.stack(tensors[i:i + bs]).to(device)
                    with self._autocast(device):
                        out[good[i:i + bs]] = net.embed(x).float().cpu().numpy()
            return out

        return cached_features(list(images), compute, model_id=model_id or "training", cache=cache,
                               dim=net.embed_dim)

    def _fail_key(self, image) -> str:
        return self._memo_key(image)

    def _score_with(self, net, pairs, device, *, cache, model_id=None) -> np.ndarray:
        torch = _torch()
        es = self._embed_with(net, [p.suspect for p in pairs], device, cache=cache, model_id=model_id)
        el = None if self.config.single_image else self._embed_with(net, [p.live for p in pairs], device,
                                                                     cache=cache, model_id=model_id)
        net.train(False)
        with torch.no_grad():
            s = torch.from_numpy(es).to(device)
            l = None if el is None else torch.from_numpy(el).to(device)
            logits = net.logits_from_embeddings(s, l).float()
            out = torch.sigmoid(logits).double().cpu().numpy()
        net.train(False)
        return out.astype(np.float64)

    def score(self, pairs: Sequence[Pair], *, cache: FeatureCache | None = None) -> np.ndarray:
        """Morph scores in [0, 1], float64 (n,); higher = more likely a morph (attack if >= t);
        NaN for a pair with an unusable image."""
        return self.score_pairs(pairs, cache=cache).scores

    def score_pairs(self, pairs: Sequence[Pair], *, cache: FeatureCache | None = None):
        """Scores with per-pair ``status`` (``ok``, ``no_face``, ``unreadable``...) and ``error``."""
        from madpad.mad.baselines import ScoreResult

        check_is_fitted(self, "net_")
        pairs = as_pairs(pairs)
        if not pairs:
            return ScoreResult(np.zeros(0, dtype=np.float64), [], [])
        device = self._device()
        self.net_.to(device, compute_dtype(self.config, device))
        s = self._score_with(self.net_, pairs, device, cache=cache if cache is not None else self.feature_cache,
                             model_id=self.model_id_)
        status, error = [], []
        for p, v in zip(pairs, s):
            st, er = "ok", ""
            if not np.isfinite(v):
                for role, im in (("suspect", p.suspect), ("live", None if self.config.single_image else p.live)):
                    if im is None:
                        continue
                    f = self._failures.get(self._fail_key(im))
                    if f is not None:
                        st, er = f[0], f"{role}: {f[1]}"
                        break
                else:
                    st, er = "no_face", "no usable face (cached result)"
            status.append(st)
            error.append(er)
        return ScoreResult(s, status, error)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``detector.json`` + ``weights.safetensors`` (LoRA + head; plus the backbone
        weights when it was randomly initialised, so scores reproduce exactly)."""
        check_is_fitted(self, "net_")
        from safetensors.torch import save_file

        from madpad.io import atomic_path

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tensors = {"lora." + k: v for k, v in self.net_.lora_state().items()}
        tensors.update({"head." + k: v for k, v in self.net_.head_state().items()})
        if self.net_.base_state is not None:
            tensors.update({"backbone." + k: v.cpu().contiguous() for k, v in self.net_.base_state.items()})
        with atomic_path(d / "weights.safetensors") as tmp:
            save_file(tensors, str(tmp))
        cfg = asdict(self.config)
        write_header(d, detector=self.checkpoint_kind, config=cfg, extra={
            "weights": "weights.safetensors", "backbone_in_checkpoint": self.net_.base_state is not None,
            "model_id": self.model_id_, "history": self.history_, "best_epoch": getattr(self, "best_epoch_", None),
            "class_counts": getattr(self, "class_counts_", None), "pos_weight": getattr(self, "pos_weight_", None),
            "skipped_pairs": self.skipped_, "training_precision": getattr(self, "precision_", None),
            "score": "sigmoid probability; higher = more likely a morph; attack when score >= threshold"})
        return d

    @classmethod
    def load(cls, directory: str | os.PathLike, header: dict | None = None, **overrides: Any) -> FoundationDetector:
        from safetensors.torch import load_file

        d = Path(directory)
        head = header or read_header(d)
        cfg = {**head["config"], **overrides}
        det = cls(**cfg)
        tensors = load_file(str(d / head.get("weights", "weights.safetensors")))
        backbone = {k[len("backbone."):]: v for k, v in tensors.items() if k.startswith("backbone.")}
        det.net_ = _Net(det.config, backbone_state=backbone or None)
        det.net_.load_trainable({k[5:]: v for k, v in tensors.items() if k.startswith("lora.")},
                                {k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
        det.net_.train(False)
        det.history_ = head.get("history", [])
        det.skipped_ = head.get("skipped_pairs") or {}
        det._finish()
        return det


class SingleImageFoundationDetector(FoundationDetector):
    """S-MAD on the same foundation backbone: scores the suspect image alone (live ignored)."""

    name = "foundation_smad"
    checkpoint_kind = "foundation_smad"

    def __init__(self, **params: Any):
        params.setdefault("single_image", True)
        if not params["single_image"]:
            raise UsageError("foundation_smad is single-image; use the 'foundation' detector for D-MAD")
        super().__init__(**params)

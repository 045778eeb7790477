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

The backbone is any open_clip model: ``backbone`` is the architecture name (``ViT-B-16``,
``ViT-L-14``, timm-backed names, or a name registered from ``model_config`` JSON),
``pretrained`` a tag (``openai``, ``laion2b_s34b_b88k``: downloaded by open_clip) or a local
checkpoint file; ``None`` gives random weights (tests, speed measurements). Images go
through the model's own evaluation transform from ``open_clip.create_model_and_transforms``.

LoRA (peft) adapters are injected into the vision tower; ``lora_targets="auto"`` picks
open_clip's attention and MLP layers (``attn``, ``c_fc``, ``c_proj`` for open_clip ViTs,
whose attention is ``nn.MultiheadAttention``; ``qkv``, ``proj``, ``fc1``, ``fc2`` for timm
ViTs). Targeting only ``out_proj`` is refused: ``nn.MultiheadAttention`` can bypass it, and
those weights would never train.

Training: AdamW with separate learning rates for LoRA and head, linear warm-up then cosine
decay (per step), class-balanced optimisation (``class_balance``: ``weighted`` BCE with
``pos_weight = n_bona_fide / n_attack``, ``sampler`` = ``WeightedRandomSampler`` drawing both
classes equally, ``both`` or ``none``), AMP on CUDA only, early stopping on the dev D-EER,
resumable from ``<checkpoint_dir>/last.safetensors`` (written atomically each epoch).
Checkpoints are safetensors + JSON: loading never unpickles.
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
from madpad.mad.cache import FeatureCache, cached_features
from madpad.registry import check_keywords

log = logging.getLogger(__name__)

PAIR_FEATURES = ("diff", "absdiff", "prod", "concat", "diff_prod")
CLASS_BALANCE = ("weighted", "sampler", "both", "none")


@dataclass
class FoundationConfig:
    """Every option of :class:`FoundationDetector` (the checkpoint's JSON config)."""

    backbone: str = "ViT-B-16"
    pretrained: str | None = None
    model_config: str | None = None          # open_clip JSON config file registered before building
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
    patience: int = 5                        # epochs without dev D-EER improvement; 0 = off
    seed: int = 0
    device: str = "auto"                     # auto | cpu | cuda | cuda:N
    amp: bool = True                         # mixed precision, CUDA only
    face_crop: str | None = None             # None or a madpad.face detector name (e.g. dlib_hog)
    crop_margin: float = 1.6                 # crop side = margin x the face box side
    checkpoint_dir: str | None = None        # where last.safetensors (resume state) goes
    resume: bool = True
    progress: bool = True
    eval_batch_size: int = 32

    def validate(self) -> FoundationConfig:
        if self.pair_feature not in PAIR_FEATURES:
            raise UsageError(f"pair_feature must be one of {list(PAIR_FEATURES)}; got {self.pair_feature!r}")
        if self.class_balance not in CLASS_BALANCE:
            raise UsageError(f"class_balance must be one of {list(CLASS_BALANCE)}; got {self.class_balance!r}")
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


# --------------------------------------------------------------------------- backbone
def build_backbone(cfg: FoundationConfig):
    """(vision tower, eval transform) from open_clip; the text tower is dropped."""
    open_clip = _open_clip()
    if cfg.model_config:
        open_clip.add_model_config(str(resolve_model_config(cfg.model_config)))
    if cfg.backbone not in open_clip.list_models():
        import difflib

        close = difflib.get_close_matches(cfg.backbone, open_clip.list_models(), n=3)
        raise UsageError(f"open_clip has no model {cfg.backbone!r}" + (f"; did you mean {close}?" if close else "")
                         + " (register your own with model_config=PATH.json)")
    import logging as _logging

    oc_log = _logging.getLogger()
    prev = oc_log.level
    if not cfg.pretrained:
        oc_log.setLevel(max(prev, _logging.ERROR))  # silence "No pretrained weights loaded" for random init
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(cfg.backbone, pretrained=cfg.pretrained or None)
    finally:
        oc_log.setLevel(prev)
    visual = model.visual
    del model
    return visual, preprocess


def shipped_model_configs() -> dict[str, Path]:
    """open_clip model configs shipped with madpad (name -> JSON file)."""
    folder = Path(__file__).resolve().parents[1] / "configs" / "open_clip"
    return {p.stem: p for p in sorted(folder.glob("*.json"))}


def resolve_model_config(value: str) -> Path:
    """A JSON file path, or the name of a config shipped in madpad/configs/open_clip/."""
    p = Path(os.path.expanduser(str(value)))
    if p.is_file():
        return p
    shipped = shipped_model_configs()
    if str(value) in shipped:
        return shipped[str(value)]
    raise UsageError(f"model_config {value!r}: no such file and not a shipped config ({sorted(shipped)})")


def _open_clip():
    from madpad.io import optional_import

    return optional_import("open_clip", extra="detect", purpose="foundation-model morph detection")


def _torch():
    from madpad.io import optional_import

    return optional_import("torch", extra="torch", purpose="foundation-model morph detection")


def auto_lora_targets(visual) -> list[str]:
    """Attention + MLP module names of an open_clip (or timm) vision tower."""
    torch = _torch()
    names = [n for n, _ in visual.named_modules()]
    if any(isinstance(m, torch.nn.MultiheadAttention) for m in visual.modules()):
        return ["attn", "c_fc", "c_proj"]
    if any(n.endswith(".qkv") for n in names):
        return ["qkv", "proj", "fc1", "fc2"]
    raise UsageError("cannot choose LoRA targets automatically for this backbone; set lora_targets to a list of "
                     "module-name suffixes (see model.visual.named_modules())")


def inject_lora(visual, cfg: FoundationConfig) -> list[str]:
    """Inject LoRA adapters in place; freeze every non-LoRA weight. Returns LoRA parameter names."""
    from madpad.io import optional_import

    peft = optional_import("peft", extra="detect", purpose="LoRA fine-tuning")
    targets = auto_lora_targets(visual) if cfg.lora_targets == "auto" else list(cfg.lora_targets)
    lcfg = peft.LoraConfig(r=int(cfg.lora_rank), lora_alpha=float(cfg.lora_alpha),
                           lora_dropout=float(cfg.lora_dropout), target_modules=targets)
    try:
        peft.inject_adapter_in_model(lcfg, visual)
    except ValueError as exc:
        raise UsageError(f"LoRA targets {targets} match no module of {cfg.backbone}: {exc}") from None
    names = []
    for n, p in visual.named_parameters():
        is_lora = "lora_" in n
        p.requires_grad_(is_lora)
        if is_lora:
            names.append(n)
    if not names:
        raise UsageError(f"LoRA targets {targets} produced no adapter weights in {cfg.backbone}")
    return names


def _make_head(in_dim: int, cfg: FoundationConfig):
    torch = _torch()
    nn = torch.nn
    if cfg.head_hidden and cfg.head_hidden > 0:
        return nn.Sequential(nn.Linear(in_dim, cfg.head_hidden), nn.GELU(), nn.Dropout(cfg.head_dropout),
                             nn.Linear(cfg.head_hidden, 1))
    return nn.Sequential(nn.Dropout(cfg.head_dropout), nn.Linear(in_dim, 1))


def pair_feature(s, l, mode: str):
    """Pair feature of L2-normalised embeddings (torch tensors, (B, D)); ``l`` None = S-MAD."""
    torch = _torch()
    if l is None:
        return s
    if mode == "diff":
        return s - l
    if mode == "absdiff":
        return (s - l).abs()
    if mode == "prod":
        return s * l
    if mode == "concat":
        return torch.cat([s, l], dim=1)
    if mode == "diff_prod":
        return torch.cat([s - l, (s - l).abs(), s * l], dim=1)
    raise UsageError(f"pair_feature must be one of {list(PAIR_FEATURES)}; got {mode!r}")


def feature_dim(embed_dim: int, cfg: FoundationConfig) -> int:
    if cfg.single_image:
        return embed_dim
    return {"diff": 1, "absdiff": 1, "prod": 1, "concat": 2, "diff_prod": 3}[cfg.pair_feature] * embed_dim


class _Net:
    """Backbone + head, built lazily (torch imported only when used)."""

    def __init__(self, cfg: FoundationConfig, *, backbone_state: dict | None = None):
        torch = _torch()
        torch.manual_seed(int(cfg.seed))
        self.visual, self.preprocess = build_backbone(cfg)
        if backbone_state is not None:
            self.visual.load_state_dict(backbone_state, strict=True)
        self.base_state_random = not cfg.pretrained
        self.base_state = ({k: v.detach().clone() for k, v in self.visual.state_dict().items()}
                           if self.base_state_random else None)
        self.lora_names = inject_lora(self.visual, cfg)
        dim = int(getattr(self.visual, "output_dim", 0) or self._probe_dim())
        self.embed_dim = dim
        self.head = _make_head(feature_dim(dim, cfg), cfg)
        self.cfg = cfg

    def _probe_dim(self) -> int:
        torch = _torch()
        size = self.image_size()
        with torch.no_grad():
            return int(self.visual(torch.zeros(1, 3, *size)).shape[-1])

    def image_size(self) -> tuple[int, int]:
        s = getattr(self.visual, "image_size", 224)
        return (s, s) if isinstance(s, int) else tuple(s)

    def to(self, device):
        self.visual.to(device)
        self.head.to(device)
        return self

    def train(self, mode: bool = True):
        self.visual.train(mode)
        self.head.train(mode)

    def embed(self, x):
        torch = _torch()
        e = self.visual(x)
        if isinstance(e, (tuple, list)):
            e = e[0]
        return torch.nn.functional.normalize(e.float(), dim=-1)

    def logits_from_embeddings(self, s, l):
        return self.head(pair_feature(s, None if self.cfg.single_image else l, self.cfg.pair_feature)).squeeze(-1)

    def lora_state(self) -> dict:
        return {n: p.detach().cpu().clone() for n, p in self.visual.named_parameters() if "lora_" in n}

    def head_state(self) -> dict:
        return {k: v.detach().cpu().clone() for k, v in self.head.state_dict().items()}

    def load_trainable(self, lora: dict, head: dict) -> None:
        expected = set(self.lora_names)
        got = set(lora)
        if expected != got:
            raise UsageError(f"checkpoint LoRA weights do not match the model: {len(expected - got)} missing, "
                             f"{len(got - expected)} unexpected (e.g. {sorted(expected ^ got)[:3]})")
        params = dict(self.visual.named_parameters())
        torch = _torch()
        with torch.no_grad():
            for n, t in lora.items():
                if params[n].shape != t.shape:
                    raise UsageError(f"LoRA weight {n}: shape {tuple(t.shape)} in checkpoint, "
                                     f"{tuple(params[n].shape)} in the model")
                params[n].copy_(t)
        self.head.load_state_dict(head, strict=True)

    def trainable_parameters(self):
        lora = [p for n, p in self.visual.named_parameters() if "lora_" in n]
        return lora, list(self.head.parameters())


# --------------------------------------------------------------------------- detector
class FoundationDetector(MorphDetector):
    """Differential (or single-image) morph detector on an open_clip backbone with LoRA.

    ``score(pairs)`` returns sigmoid probabilities, float64 (n,), higher = more likely a
    morph; a pair is classified as an attack when ``score >= threshold``. See the module
    docstring for the options (all keyword-only; ``FoundationConfig`` lists them).
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
        self._img_cache: dict[str, Any] = {}
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

    def _crop(self, img: np.ndarray) -> np.ndarray:
        if not self.config.face_crop:
            return img
        from madpad.face import get_detector

        if not hasattr(self, "_face_det"):
            self._face_det = get_detector(self.config.face_crop)
        dets = self._face_det.detect(img)
        if not dets:
            from madpad.errors import FaceNotFoundError

            raise FaceNotFoundError("no face found for the face crop")
        x0, y0, x1, y1 = [float(v) for v in dets[0].box]
        side = max(x1 - x0, y1 - y0) * float(self.config.crop_margin)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        import cv2

        M = np.array([[1, 0, side / 2 - cx], [0, 1, side / 2 - cy]], dtype=np.float64)
        s = int(round(side))
        return cv2.warpAffine(img, M, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)

    def _tensor(self, image, *, keep: bool):
        """Preprocessed CHW tensor of an image (memoised by content key when ``keep``)."""
        from PIL import Image

        key = None
        if keep:  # memo for one fit: file paths by name (cleared after fit), arrays by content
            key = ("p:" + str(image)) if isinstance(image, (str, os.PathLike)) else image_key(image)
        if key is not None and key in self._img_cache:
            return self._img_cache[key]
        img = self._crop(load_image(image))
        t = self.net_.preprocess(Image.fromarray(img))
        if key is not None:
            self._img_cache[key] = t
        return t

    def _batch(self, images, *, keep: bool):
        torch = _torch()
        return torch.stack([self._tensor(im, keep=keep) for im in images])

    def _autocast(self, device):
        torch = _torch()
        import contextlib

        if device.type == "cuda" and self.config.amp:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ training
    def fit(self, pairs: Sequence[Pair], *, dev: Sequence[Pair] | None = None) -> FoundationDetector:
        """Train LoRA + head on labelled pairs; early-stop on the D-EER of ``dev`` (if given)."""
        torch = _torch()
        from tqdm.auto import tqdm

        from madpad.mad.evaluation import detection_eer

        cfg = self.config
        pairs = as_pairs(pairs)
        y = labels_of(pairs, where="training pairs")
        dev = as_pairs(dev) if dev else None
        y_dev = labels_of(dev, where="dev pairs") if dev else None
        device = self._device()
        self.net_ = _Net(cfg)
        net = self.net_.to(device)
        lora_p, head_p = net.trainable_parameters()
        opt = torch.optim.AdamW([{"params": lora_p, "lr": cfg.lr_lora, "name": "lora"},
                                 {"params": head_p, "lr": cfg.lr_head, "name": "head"}],
                                weight_decay=cfg.weight_decay)
        n = len(pairs)
        n_pos, n_neg = int(y.sum()), int((1 - y).sum())
        self.class_counts_ = {"bona_fide": n_neg, "attack": n_pos}
        self.pos_weight_ = class_pos_weight(y) if cfg.class_balance in ("weighted", "both") else 1.0
        steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
        total = cfg.epochs * steps_per_epoch
        warm = int(cfg.warmup if cfg.warmup >= 1 else round(cfg.warmup * total))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_cosine(step, warmup=warm, total=total))
        gen = torch.Generator().manual_seed(int(cfg.seed))
        sampler = make_sampler(y, cfg.class_balance, generator=gen)
        pos_weight = torch.tensor([self.pos_weight_], device=device)
        scaler = None
        if device.type == "cuda" and cfg.amp and not torch.cuda.is_bf16_supported():
            scaler = torch.amp.GradScaler("cuda")

        start_epoch, best = 0, {"d_eer": math.inf, "loss": math.inf, "epoch": -1}
        best_state = None
        self.history_ = []
        ckdir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
        fingerprint = self._fingerprint(pairs, dev)
        if ckdir is not None and cfg.resume and (ckdir / "last.safetensors").is_file():
            meta = _load_resume(ckdir / "last.safetensors", net, opt, sched, gen, fingerprint)
            start_epoch = meta["epoch"] + 1
            best = meta["best"]
            self.history_ = meta["history"]
            best_state = meta.get("best_state")
            log.info("resumed from %s at epoch %d", ckdir / "last.safetensors", start_epoch)
        bad_epochs = 0
        if self.history_ and dev is not None:
            bad_epochs = len(self.history_) - 1 - best["epoch"]
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
                xs = self._batch([pairs[i].suspect for i in idx], keep=True).to(device)
                yt = torch.tensor(y[idx], dtype=torch.float32, device=device)
                with self._autocast(device):
                    if cfg.single_image:
                        es = net.embed(xs)
                        el = None
                    else:
                        xl = self._batch([pairs[i].live for i in idx], keep=True).to(device)
                        emb = net.embed(torch.cat([xs, xl]))
                        es, el = emb[:len(idx)], emb[len(idx):]
                    logits = net.logits_from_embeddings(es, el).float()
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, yt, pos_weight=pos_weight)
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
                s_dev = self._score_with(net, dev, device, cache=None)
                rec["dev_d_eer"] = detection_eer(s_dev, y_dev)
                improved = rec["dev_d_eer"] < best["d_eer"] - 1e-12 or (
                    rec["dev_d_eer"] <= best["d_eer"] + 1e-12 and rec["train_loss"] < best["loss"])
            else:
                improved = True  # no dev set: keep the last epoch
            if improved:
                best = {"d_eer": rec.get("dev_d_eer", math.nan), "loss": rec["train_loss"], "epoch": epoch}
                best_state = (net.lora_state(), net.head_state())
                bad_epochs = 0
            else:
                bad_epochs += 1
            self.history_.append(rec)
            log.info("epoch %d: %s", epoch + 1, rec)
            if ckdir is not None:
                _save_resume(ckdir / "last.safetensors", net, opt, sched, gen, epoch=epoch, best=best,
                             history=self.history_, best_state=best_state, fingerprint=fingerprint)
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
        """L2-normalised embeddings (N, D) of images under the trained backbone (cached per image)."""
        check_is_fitted(self, "net_")
        return self._embed_with(self.net_, images, self._device(), cache=cache if cache is not None
                                else self.feature_cache, model_id=self.model_id_)

    def _embed_with(self, net, images, device, *, cache, model_id=None):
        torch = _torch()

        def compute(ims):
            out = []
            net.train(False)
            with torch.no_grad():
                for i in range(0, len(ims), self.config.eval_batch_size):
                    x = self._batch(ims[i:i + self.config.eval_batch_size], keep=False).to(device)
                    with self._autocast(device):
                        out.append(net.embed(x).float().cpu().numpy())
            return np.concatenate(out) if out else np.zeros((0, net.embed_dim), np.float32)

        return cached_features(list(images), compute, model_id=model_id or "training", cache=cache,
                               dim=net.embed_dim)

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
        """Morph scores in [0, 1], float64 (n,); higher = more likely a morph (attack if >= t)."""
        check_is_fitted(self, "net_")
        pairs = as_pairs(pairs)
        if not pairs:
            return np.zeros(0, dtype=np.float64)
        device = self._device()
        self.net_.to(device)
        return self._score_with(self.net_, pairs, device, cache=cache if cache is not None else self.feature_cache,
                                model_id=self.model_id_)

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


# --------------------------------------------------------------------------- helpers
def class_pos_weight(y) -> float:
    """``pos_weight`` of class-weighted BCE: n_bona_fide / n_attack (attack = positive class)."""
    y = np.asarray(y).astype(int)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"class weights need both classes; got {n_neg} bona fide and {n_pos} attack")
    return n_neg / n_pos


def sample_weights(y) -> np.ndarray:
    """Per-sample weights 1 / count(class): each class gets the same total weight."""
    y = np.asarray(y).astype(int)
    counts = np.bincount(y, minlength=2).astype(np.float64)
    if (counts == 0).any():
        raise ValueError(f"balanced sampling needs both classes; got counts {counts.tolist()}")
    return 1.0 / counts[y]


def make_sampler(y, class_balance: str, *, generator):
    torch = _torch()
    if class_balance in ("sampler", "both"):
        w = torch.as_tensor(sample_weights(y), dtype=torch.double)
        return torch.utils.data.WeightedRandomSampler(w, num_samples=len(y), replacement=True, generator=generator)
    return None


def warmup_cosine(step: int, *, warmup: int, total: int) -> float:
    """LR multiplier: linear warm-up to 1 over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _save_resume(path: Path, net, opt, sched, gen, *, epoch, best, history, best_state, fingerprint) -> None:
    """Everything needed to continue training, in one safetensors file (JSON in its metadata)."""
    torch = _torch()
    from safetensors.torch import save_file

    from madpad.io import atomic_path

    tensors = {"lora." + k: v for k, v in net.lora_state().items()}
    tensors.update({"head." + k: v for k, v in net.head_state().items()})
    if best_state is not None:
        tensors.update({"best_lora." + k: v for k, v in best_state[0].items()})
        tensors.update({"best_head." + k: v for k, v in best_state[1].items()})
    sd = opt.state_dict()
    scalar_state = {}
    for idx, st in sd["state"].items():
        for name, val in st.items():
            if torch.is_tensor(val):
                tensors[f"opt.{idx}.{name}"] = val.detach().cpu().contiguous()
            else:
                scalar_state[f"{idx}.{name}"] = val
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    tensors["rng.sampler"] = gen.get_state()
    meta = {"epoch": epoch, "best": best, "history": history, "param_groups": sd["param_groups"],
            "scalar_state": scalar_state, "scheduler": sched.state_dict(), "fingerprint": fingerprint,
            "has_best": best_state is not None}
    meta["scheduler"].pop("lr_lambdas", None)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"madpad": json.dumps(meta, default=_json_default)})


def _json_default(o):
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    if isinstance(o, (np.generic,)):
        return o.item()
    return str(o)


def _load_resume(path: Path, net, opt, sched, gen, fingerprint: str) -> dict:
    torch = _torch()
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["madpad"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if meta.get("fingerprint") != fingerprint:
        raise UsageError(f"{path} was written by a run with another configuration or other training pairs; "
                         f"delete it or set resume=false to start over")
    net.load_trainable({k[5:]: v for k, v in tensors.items() if k.startswith("lora.")},
                       {k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, idx, name = k.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    for k, v in meta.get("scalar_state", {}).items():
        idx, name = k.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    sched_state = dict(meta["scheduler"])
    sched_state["lr_lambdas"] = [None] * len(opt.param_groups)
    sched.load_state_dict(sched_state)
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    gen.set_state(tensors["rng.sampler"])
    best = meta["best"]
    for k in ("d_eer", "loss"):
        if isinstance(best.get(k), str):
            best[k] = float(best[k])
    out = {"epoch": int(meta["epoch"]), "best": best, "history": meta["history"]}
    if meta.get("has_best"):
        out["best_state"] = ({k[len("best_lora."):]: v for k, v in tensors.items() if k.startswith("best_lora.")},
                             {k[len("best_head."):]: v for k, v in tensors.items() if k.startswith("best_head.")})
    return out

"""The backbone of the DifFoundMAD-style detectors: building an open_clip or timm vision model
(named architecture, shipped or user model config, local weights file), its image preprocessing
(mean/std/resize taken from the tag, the model config or the user, never guessed), the LoRA
targets (the transformer blocks' attention and MLP projections) and the face alignment both images
get before the backbone, and the network the detector trains (backbone + LoRA + pair feature +
head, :class:`_Net`). Used by :mod:`madpad.mad.foundation`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from madpad.errors import UsageError

#: how the pair feature is built from the suspect (s) and live (l) embeddings
PAIR_FEATURES = ("diff", "absdiff", "prod", "concat", "diff_prod")

if TYPE_CHECKING:
    from madpad.mad.foundation import FoundationConfig

_ARC_EYES = ((38.2946, 51.6963), (73.5318, 51.5014))

# --------------------------------------------------------------------------- backbone
def _is_local_file(value: str | None) -> bool:
    return bool(value) and Path(os.path.expanduser(str(value))).is_file()


def preprocess_config(cfg: FoundationConfig) -> dict:
    """The image preprocessing an open_clip backbone gets: ``{mean, std, interpolation,
    resize_mode}`` (keys absent = open_clip decides, which is right for a pretrained *tag*).

    Order: user-named ``image_*`` options > ``preprocess_tag`` > (for a local ``pretrained``
    file) the model config's ``preprocess_cfg``, else the architecture's pretrained tags when
    they all agree. A local file whose preprocessing cannot be told is refused rather than
    given OpenAI CLIP statistics."""
    open_clip = _open_clip()
    from open_clip.pretrained import get_pretrained_cfg

    keys = ("mean", "std", "interpolation", "resize_mode")
    out: dict = {}
    source = None
    if cfg.preprocess_tag:
        tag_cfg = get_pretrained_cfg(cfg.backbone, cfg.preprocess_tag)
        if not tag_cfg:
            tags = open_clip.list_pretrained_tags_by_model(cfg.backbone)
            raise UsageError(f"preprocess_tag {cfg.preprocess_tag!r} is not a pretrained tag of {cfg.backbone} "
                             f"(tags: {tags})")
        source = tag_cfg
    elif _is_local_file(cfg.pretrained):
        if cfg.model_config:
            register_model_config(cfg.model_config)
        model_cfg = open_clip.get_model_config(cfg.backbone) or {}
        if _MODEL_PREPROCESS.get(cfg.backbone) or model_cfg.get("preprocess_cfg"):
            source = _MODEL_PREPROCESS.get(cfg.backbone) or model_cfg["preprocess_cfg"]
        else:
            tags = open_clip.list_pretrained_tags_by_model(cfg.backbone)
            seen = {json.dumps({k: get_pretrained_cfg(cfg.backbone, t).get(k) for k in keys}, sort_keys=True): t
                    for t in tags}
            if len(seen) == 1:
                source = json.loads(next(iter(seen)))
            elif cfg.image_mean is None or cfg.image_std is None:
                hint = f"its tags use different ones: name the one your file comes from with " \
                       f"preprocess_tag (one of {tags})" if tags else "it has no pretrained tag"
                raise UsageError(f"pretrained={cfg.pretrained}: cannot tell the image mean/std of {cfg.backbone} "
                                 f"from a local file ({hint}), or set image_mean and image_std "
                                 f"(and image_resize_mode)")
    for k in keys:
        if source is not None and source.get(k) is not None:
            out[k] = tuple(source[k]) if k in ("mean", "std") else source[k]
    for k, opt in (("mean", "image_mean"), ("std", "image_std"), ("interpolation", "image_interpolation"),
                   ("resize_mode", "image_resize_mode")):
        v = getattr(cfg, opt)
        if v is not None:
            out[k] = tuple(v) if k in ("mean", "std") else v
    return out


def build_backbone(cfg: FoundationConfig):
    """(vision tower, eval transform); open_clip drops the text tower, timm has none."""
    if cfg.backbone_library == "timm":
        return build_timm_backbone(cfg)
    open_clip = _open_clip()
    if cfg.model_config:
        register_model_config(cfg.model_config)
    if cfg.backbone not in open_clip.list_models():
        import difflib

        close = difflib.get_close_matches(cfg.backbone, open_clip.list_models(), n=3)
        raise UsageError(f"open_clip has no model {cfg.backbone!r}" + (f"; did you mean {close}?" if close else "")
                         + " (register your own with model_config=PATH.json, or use backbone_library=timm)")
    pp = preprocess_config(cfg)
    kwargs = {f"image_{k}": v for k, v in pp.items()}
    import logging as _logging

    oc_log = _logging.getLogger()
    prev = oc_log.level
    if not cfg.pretrained:
        oc_log.setLevel(max(prev, _logging.ERROR))  # silence "No pretrained weights loaded" for random init
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            cfg.backbone, pretrained=os.path.expanduser(cfg.pretrained) if cfg.pretrained else None, **kwargs)
    finally:
        oc_log.setLevel(prev)
    visual = model.visual
    del model
    return visual, preprocess


def build_timm_backbone(cfg: FoundationConfig):
    """A timm model without classifier (``num_classes=0``) and timm's own eval transform.

    ``pretrained``: a local weights file (safetensors, or a ``.pth``/``.bin`` read with
    ``weights_only=True``); the classifier keys are ignored. Mean/std/interpolation come from
    timm's data config of the model unless ``image_*`` options name them."""
    from madpad.io import optional_import

    timm = optional_import("timm", extra="detect", purpose="timm backbones for foundation-model morph detection")
    torch = _torch()
    kwargs = dict(cfg.backbone_kwargs or {})
    try:
        model = timm.create_model(cfg.backbone, pretrained=False, num_classes=0, **kwargs)
    except RuntimeError as exc:  # unknown model
        raise UsageError(f"timm: {exc}") from None
    except TypeError as exc:
        raise UsageError(f"timm model {cfg.backbone!r}: bad backbone_kwargs {kwargs}: {exc}") from None
    if cfg.pretrained:
        path = Path(os.path.expanduser(cfg.pretrained))
        if not path.is_file():
            raise UsageError(f"pretrained={cfg.pretrained}: no such file (timm backbones load a local weights file)")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
            state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
        state = {k: v for k, v in state.items() if not k.startswith(("head.", "fc.", "classifier."))
                 or k.startswith("head.norm")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise UsageError(f"pretrained={cfg.pretrained} does not fit timm model {cfg.backbone} "
                             f"{kwargs or ''}: {len(missing)} missing, {len(unexpected)} unexpected weights "
                             f"(e.g. {(list(missing) + list(unexpected))[:3]})")
    data_cfg = timm.data.resolve_model_data_config(model)
    img_size = getattr(getattr(model, "patch_embed", None), "img_size", None)
    if img_size is not None:
        data_cfg["input_size"] = (3, *tuple(img_size))
    for k, opt in (("mean", "image_mean"), ("std", "image_std"), ("interpolation", "image_interpolation")):
        if getattr(cfg, opt) is not None:
            data_cfg[k] = tuple(getattr(cfg, opt)) if k != "interpolation" else getattr(cfg, opt)
    preprocess = timm.data.create_transform(**data_cfg, is_training=False)
    model.image_size = tuple(data_cfg["input_size"][1:])
    return model, preprocess


_MODEL_PREPROCESS: dict[str, dict] = {}


def register_model_config(value: str) -> str:
    """Register an open_clip model config (a JSON file or a shipped name) under its file stem.

    An optional ``preprocess_cfg`` key (``mean``, ``std``, ``interpolation``, ``resize_mode``)
    is kept for :func:`preprocess_config` (open_clip's model classes do not take it)."""
    import tempfile

    open_clip = _open_clip()
    path = resolve_model_config(value)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"model_config {path}: not a readable JSON file ({exc})") from None
    pre = data.pop("preprocess_cfg", None) if isinstance(data, dict) else None
    if pre is None:
        open_clip.add_model_config(str(path))
    else:
        _MODEL_PREPROCESS[path.stem] = dict(pre)
        with tempfile.TemporaryDirectory() as tmp:
            stripped = Path(tmp) / path.name
            stripped.write_text(json.dumps(data), encoding="utf-8")
            open_clip.add_model_config(str(stripped))
    return path.stem


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


_BLOCK = re.compile(r"(^|\.)(resblocks|blocks|layers|layer)\.\d+\.")
_ATTN_MLP = re.compile(r"(^|\.)(attn|attention|self_attn|mlp|ffn)(\.|$)")


def auto_lora_targets(visual) -> list[str]:
    """Full names of the transformer blocks' attention and MLP projections of a vision tower.

    Only modules inside a numbered block (``transformer.resblocks.N``, ``blocks.N``,
    ``trunk.blocks.N``...) under its attention or MLP: an ``nn.MultiheadAttention`` (its
    fused q/k/v and out projection are adapted together; its ``out_proj`` is not listed
    separately) or an ``nn.Linear``. The patch embedding, pooling heads (SigLIP's
    ``attn_pool``, CoCa's ``attn_pool``) and output projections are never adapted."""
    torch = _torch()
    nn = torch.nn
    mha = [n for n, m in visual.named_modules() if isinstance(m, nn.MultiheadAttention)]
    names = []
    for n, m in visual.named_modules():
        if not _BLOCK.search(n) or not _ATTN_MLP.search(n[_BLOCK.search(n).end() - 1:]):
            continue
        if isinstance(m, nn.MultiheadAttention) or (
                isinstance(m, nn.Linear) and not any(n.startswith(a + ".") for a in mha)):
            names.append(n)
    if not names:
        raise UsageError("cannot choose LoRA targets automatically for this backbone; set lora_targets to a list of "
                         "module-name suffixes (see model.visual.named_modules())")
    return names


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
    _keep_mha_base_weights(visual)
    return names


def lora_module_names(visual) -> list[str]:
    """Names of the modules that carry LoRA adapters (for inspection and tests)."""
    return sorted({n.rsplit(".lora_", 1)[0].removesuffix(".base_layer") for n, _ in visual.named_parameters()
                   if ".lora_" in n})


def _keep_mha_base_weights(visual) -> None:
    """peft adapts ``nn.MultiheadAttention`` by merging the LoRA delta into the frozen weights
    for each forward and subtracting it afterwards, which leaves float round-off in the frozen
    weights (a resumed run would drift from an uninterrupted one) and turns bf16/fp16 weights
    into float32. Hooks put the original frozen tensors back after every forward."""
    torch = _torch()
    for m in visual.modules():
        if type(m).__name__ != "MultiheadAttention" or not hasattr(m, "lora_A"):
            continue

        def pre(mod, args, kwargs=None):
            base = mod.get_base_layer()
            mod._madpad_frozen = (base.in_proj_weight.data, base.out_proj.get_base_layer().weight.data)

        def post(mod, args, output):
            saved = getattr(mod, "_madpad_frozen", None)
            if saved is None:
                return output
            base = mod.get_base_layer()
            out_lin = base.out_proj.get_base_layer()
            base.register_parameter("in_proj_weight", torch.nn.Parameter(saved[0], requires_grad=False))
            out_lin.register_parameter("weight", torch.nn.Parameter(saved[1], requires_grad=False))
            mod._madpad_frozen = None
            return output

        m.register_forward_pre_hook(pre)
        m.register_forward_hook(post)


def align_for_backbone(image: np.ndarray, landmarks, *, size: int, margin: float = 1.6) -> np.ndarray:
    """Square ``size`` x ``size`` face crop with the eye centres on the ArcFace template's eye
    positions, the template scaled so that the crop is ``margin`` times its side (same
    geometry for suspect and live: roll, scale and position differences are removed)."""
    from madpad.face import align_portrait

    side = 112.0 * float(margin)
    (lx, ly), (rx, ry) = _ARC_EYES
    eye_dist = (rx - lx) / side
    eye_y = 0.5 + ((ly + ry) / 2 - 56.0) / side
    center_x = 0.5 + ((lx + rx) / 2 - 56.0) / side
    out, _ = align_portrait(image, landmarks, size=(int(size), int(size)), eye_y=eye_y, eye_dist=eye_dist,
                            center_x=center_x, border="replicate")
    return out


# --------------------------------------------------------------------------- the network
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


def compute_dtype(cfg: FoundationConfig, device) -> Any:
    """The torch dtype the frozen backbone weights are stored in and autocast runs at
    (``float32`` = no autocast). ``auto``: bf16 on CUDA where supported, else fp16, when
    ``amp``; float32 on CPU."""
    torch = _torch()
    p = cfg.precision
    if p == "auto":
        if device.type == "cuda" and cfg.amp:
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[p]


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
        dim = int(getattr(self.visual, "output_dim", 0) or getattr(self.visual, "num_features", 0)
                  or self._probe_dim())
        self.embed_dim = dim
        self.head = _make_head(feature_dim(dim, cfg), cfg)
        self.cfg = cfg
        self.dtype = torch.float32

    def _probe_dim(self) -> int:
        torch = _torch()
        size = self.image_size()
        with torch.no_grad():
            return int(self.visual(torch.zeros(1, 3, *size)).shape[-1])

    def image_size(self) -> tuple[int, int]:
        s = getattr(self.visual, "image_size", 224)
        return (s, s) if isinstance(s, int) else tuple(s)

    def to(self, device, dtype=None):
        """Move to ``device``; ``dtype``: the type of the frozen backbone weights (LoRA and head
        stay float32: they are the trained master weights)."""
        self.visual.to(device)
        self.head.to(device)
        if dtype is not None and dtype != self.dtype:
            for n, p in self.visual.named_parameters():
                if "lora_" not in n:
                    p.data = p.data.to(dtype)
            for n, b in self.visual.named_buffers():
                if b.is_floating_point():
                    b.data = b.data.to(dtype)
            self.dtype = dtype
        return self

    def train(self, mode: bool = True):
        self.visual.train(mode)
        self.head.train(mode)

    def embed(self, x):
        torch = _torch()
        e = self.visual(x.to(self.dtype) if self.dtype != torch.float32 else x)
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

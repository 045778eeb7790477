"""Loading an IP-Adapter FaceID checkpoint into our components (own loader, safe formats only).

The FaceID checkpoints (h94/IP-Adapter-FaceID: ``ip-adapter-faceid_sd15.bin``,
``ip-adapter-faceid_sdxl.bin``) hold two state dicts:

* ``image_proj``: the identity projection ``proj.0`` (Linear 512 -> 1024), GELU, ``proj.2``
  (Linear 1024 -> 4 x cross-attention dim), ``norm`` (LayerNorm over the cross-attention dim).
  Built here as diffusers' ``IPAdapterFaceIDImageProjection`` (``proj.0`` -> ``ff.net.0.proj``,
  ``proj.2`` -> ``ff.net.2``).
* ``ip_adapter``: for the UNet's attention layers numbered in ``unet.attn_processors`` order
  (0, 1, 2, ...; self- and cross-attention alternate, so cross-attention layers are the odd
  numbers): ``{i}.to_k_ip.weight`` / ``{i}.to_v_ip.weight`` of each cross-attention layer, and a
  rank-128 LoRA of every attention layer's ``to_q``/``to_k``/``to_v``/``to_out.0``
  (``{i}.to_q_lora.down.weight``, ``{i}.to_q_lora.up.weight``, ...).

The LoRA is applied **once, by fusing it into the base weights**: ``W <- W + lora_scale * up @ down``
(computed in float32, cast back to the layer's dtype). The original FaceID attention processors
compute ``to_q(x) + lora_scale * up(down(x))`` at every call, which is the same linear map; fusing
makes the UNet an ordinary UNet afterwards, costs nothing per step and needs no peft. Fusing
twice is refused (``unet._madpad_faceid_lora_fused``).

Files are read with ``safetensors`` (``.safetensors``: keys prefixed ``image_proj.`` and
``ip_adapter.``) or ``torch.load(weights_only=True)`` (``.bin``/``.pt``/``.pth``): no pickled code runs.

**Strict key accounting.** :func:`faceid_key_report` compares every key of a checkpoint with
the keys a given UNet needs (:func:`attention_layout` + :func:`expected_faceid_shapes`): each key
is consumed, or reported by name as unexpected, missing or of the wrong shape.
:func:`load_faceid` refuses any such key (``strict=True``, the default) with a message naming
them; ``strict=False`` loads what fits and logs every name it skipped. The same report backs
``python -m madpad.weights verify`` (which builds the UNet on the meta device from its config,
so no weights are allocated).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from madpad.errors import UsageError
from madpad.io import optional_import

log = logging.getLogger("madpad.morph.dcmorph")

LORA_TARGETS = (("to_q_lora", "to_q"), ("to_k_lora", "to_k"), ("to_v_lora", "to_v"), ("to_out_lora", "to_out.0"))


def load_faceid_state_dict(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a FaceID checkpoint as ``{"image_proj": {...}, "ip_adapter": {...}}`` (CPU tensors)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"IP-Adapter FaceID checkpoint not found: {p}")
    if p.suffix == ".safetensors":
        st = optional_import("safetensors.torch", extra="torch", purpose="reading .safetensors checkpoints")
        flat = st.load_file(str(p), device="cpu")
        sd: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
        for key, value in flat.items():
            head, _, rest = key.partition(".")
            if head in sd and rest:
                sd[head][rest] = value
    else:
        torch = optional_import("torch", extra="torch", purpose="reading FaceID checkpoints")
        try:
            sd = torch.load(str(p), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - report any unpickling failure with the file name
            raise UsageError(f"{p}: cannot read the checkpoint with torch.load(weights_only=True): {exc}") from None
    sections_ok = isinstance(sd, dict) and all(isinstance(sd.get(k), dict) for k in ("image_proj", "ip_adapter"))
    if not sections_ok:
        keys = sorted(sd)[:8] if isinstance(sd, dict) else type(sd).__name__
        raise UsageError(f"{p}: not an IP-Adapter checkpoint: expected the sections 'image_proj' and "
                         f"'ip_adapter'; found {keys}")
    if "norm.weight" not in sd["image_proj"] or "proj.0.weight" not in sd["image_proj"]:
        raise UsageError(f"{p}: not an IP-Adapter FaceID checkpoint (its image projection has no 'proj.0' and "
                         f"'norm' weights; keys: {sorted(sd['image_proj'])[:8]}); FaceID-Plus and CLIP-image "
                         f"IP-Adapters are not supported by dcmorph")
    return sd


def build_faceid_projection(image_proj_sd: dict[str, Any], *, source: str = "checkpoint"):
    """diffusers' ``IPAdapterFaceIDImageProjection`` filled from the checkpoint's ``image_proj``."""
    emb = optional_import("diffusers.models.embeddings", extra="diffusion", purpose="the FaceID projection")
    w0, w2, norm = image_proj_sd["proj.0.weight"], image_proj_sd["proj.2.weight"], image_proj_sd["norm.weight"]
    id_dim, hidden = w0.shape[1], w0.shape[0]
    cross_dim = norm.shape[0]
    if hidden % id_dim or w2.shape[0] % cross_dim:
        raise UsageError(f"{source}: FaceID projection shapes do not fit together: proj.0 {tuple(w0.shape)}, "
                         f"proj.2 {tuple(w2.shape)}, norm {tuple(norm.shape)}")
    proj = emb.IPAdapterFaceIDImageProjection(image_embed_dim=id_dim, cross_attention_dim=cross_dim,
                                              mult=hidden // id_dim, num_tokens=w2.shape[0] // cross_dim)
    mapped = {k.replace("proj.0", "ff.net.0.proj").replace("proj.2", "ff.net.2"): v for k, v in image_proj_sd.items()}
    missing, unexpected = proj.load_state_dict(mapped, strict=False)
    if missing or unexpected:
        raise UsageError(f"{source}: FaceID projection weights do not match: missing {missing}, "
                         f"unexpected {unexpected}")
    return proj


def projection_state_dict(projection) -> dict[str, Any]:
    """Inverse of the key mapping above (for writing test checkpoints in the original layout)."""
    return {k.replace("ff.net.0.proj", "proj.0").replace("ff.net.2", "proj.2"): v.detach().clone()
            for k, v in projection.state_dict().items()}


def load_identity_weights(unet, ip_sd: dict[str, Any], *, source: str = "checkpoint") -> int:
    """Copy ``{i}.to_k_ip.weight``/``{i}.to_v_ip.weight`` into our processors. Returns the layer count."""
    torch = optional_import("torch", extra="torch")
    procs = unet.attn_processors
    loaded = 0
    problems = []
    for key_id, (name, proc) in enumerate(procs.items()):
        if not getattr(proc, "has_identity_weights", False):
            continue
        for attr in ("to_k_ip", "to_v_ip"):
            key = f"{key_id}.{attr}.weight"
            if key not in ip_sd:
                problems.append(f"missing {key} (layer {name})")
                continue
            target = getattr(proc, attr).weight
            if tuple(ip_sd[key].shape) != tuple(target.shape):
                problems.append(f"{key}: checkpoint {tuple(ip_sd[key].shape)} vs model {tuple(target.shape)}")
                continue
            with torch.no_grad():
                target.copy_(ip_sd[key].to(dtype=target.dtype, device=target.device))
        loaded += 1
    if problems:
        raise UsageError(f"{source}: the FaceID checkpoint does not fit this UNet ({len(problems)} problems, e.g. "
                         f"{problems[:3]}); an SD1.5 FaceID checkpoint needs an SD1.5-class base model and an "
                         f"SDXL one an SDXL-class base")
    return loaded


def fuse_faceid_lora(unet, ip_sd: dict[str, Any], *, lora_scale: float = 1.0, source: str = "checkpoint") -> int:
    """Fuse the checkpoint's attention LoRA into the UNet once. Returns the number of layers changed."""
    torch = optional_import("torch", extra="torch")
    if getattr(unet, "_madpad_faceid_lora_fused", False):
        raise UsageError("the FaceID LoRA is already fused into this UNet; load a fresh UNet to change it")
    names = list(unet.attn_processors.keys())
    fused = 0
    for key_id, name in enumerate(names):
        if f"{key_id}.to_q_lora.down.weight" not in ip_sd:
            continue
        attn = unet.get_submodule(name.removesuffix(".processor"))
        for lora_name, target_path in LORA_TARGETS:
            down, up = ip_sd.get(f"{key_id}.{lora_name}.down.weight"), ip_sd.get(f"{key_id}.{lora_name}.up.weight")
            if down is None or up is None:
                raise UsageError(f"{source}: LoRA of layer {key_id} ({name}) lacks {lora_name} down/up weights")
            linear = attn.get_submodule(target_path)
            delta = up.to(torch.float32) @ down.to(torch.float32)
            if tuple(delta.shape) != tuple(linear.weight.shape):
                raise UsageError(f"{source}: LoRA {key_id}.{lora_name} gives {tuple(delta.shape)} but {name} "
                                 f"{target_path} is {tuple(linear.weight.shape)}")
            with torch.no_grad():
                w = linear.weight.data.to(torch.float32) + float(lora_scale) * delta.to(linear.weight.device)
                linear.weight.data.copy_(w.to(linear.weight.dtype))
        fused += 1
    unet._madpad_faceid_lora_fused = fused > 0
    return fused


def export_faceid_state_dict(unet, image_proj, *, lora: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The FaceID checkpoint layout of our components (``{"image_proj": ..., "ip_adapter": ...}``).

    ``lora``: optional extra ``ip_adapter`` entries (``{i}.to_q_lora.down.weight``, ...). Used to
    write test checkpoints; ``load_faceid_state_dict`` + ``load_identity_weights`` read it back.
    """
    ip: dict[str, Any] = {}
    for key_id, (_, proc) in enumerate(unet.attn_processors.items()):
        if getattr(proc, "has_identity_weights", False):
            ip[f"{key_id}.to_k_ip.weight"] = proc.to_k_ip.weight.detach().clone()
            ip[f"{key_id}.to_v_ip.weight"] = proc.to_v_ip.weight.detach().clone()
    ip.update(lora or {})
    return {"image_proj": projection_state_dict(image_proj), "ip_adapter": ip}


# --------------------------------------------------------------------------- key layout
IMAGE_PROJ_KEYS = ("proj.0.weight", "proj.0.bias", "proj.2.weight", "proj.2.bias", "norm.weight", "norm.bias")
_IP_KEY = re.compile(r"^(\d+)\.(to_k_ip|to_v_ip)\.weight$")
_LORA_KEY = re.compile(r"^(\d+)\.(to_q_lora|to_k_lora|to_v_lora|to_out_lora)\.(down|up)\.weight$")
#: The released FaceID adapters (h94/IP-Adapter-FaceID) use this LoRA rank.
RELEASED_LORA_RANK = 128


@dataclass(frozen=True)
class AttentionLayer:
    """One attention layer of a UNet, in ``unet.attn_processors`` order (the checkpoint's numbering).

    ``q``, ``k``, ``v``, ``out``: (out_features, in_features) of ``to_q``, ``to_k``, ``to_v``,
    ``to_out.0``; ``cross``: a cross-attention layer (``attn2``), which carries ``to_k_ip``/``to_v_ip``.
    """

    index: int
    name: str
    cross: bool
    q: tuple
    k: tuple
    v: tuple
    out: tuple


def attention_layout(unet) -> list[AttentionLayer]:
    """The attention layers of ``unet`` with their projection shapes (works on the meta device)."""
    layers = []
    for i, name in enumerate(unet.attn_processors.keys()):
        attn = unet.get_submodule(name.removesuffix(".processor"))
        shape = [tuple(int(d) for d in m.weight.shape) for m in (attn.to_q, attn.to_k, attn.to_v, attn.to_out[0])]
        layers.append(AttentionLayer(i, name, not name.endswith("attn1.processor"), *shape))
    return layers


def expected_faceid_shapes(layout: list[AttentionLayer], *, cross_dim: int, rank: int | None) -> dict[str, tuple]:
    """``ip_adapter`` key -> shape that a FaceID checkpoint for this layout holds.

    Cross-attention layers: ``{i}.to_k_ip.weight`` / ``{i}.to_v_ip.weight`` of shape
    (hidden, cross_dim). Every layer: the LoRA ``{i}.to_X_lora.down.weight`` (rank, in) and
    ``.up.weight`` (out, rank) of ``to_q``, ``to_k``, ``to_v`` and ``to_out.0`` (``rank`` None: no LoRA keys).
    """
    out: dict[str, tuple] = {}
    for layer in layout:
        if layer.cross:
            out[f"{layer.index}.to_k_ip.weight"] = (layer.k[0], int(cross_dim))
            out[f"{layer.index}.to_v_ip.weight"] = (layer.v[0], int(cross_dim))
        if rank is None:
            continue
        for lora, shp in (("to_q_lora", layer.q), ("to_k_lora", layer.k), ("to_v_lora", layer.v),
                          ("to_out_lora", layer.out)):
            out[f"{layer.index}.{lora}.down.weight"] = (int(rank), shp[1])
            out[f"{layer.index}.{lora}.up.weight"] = (shp[0], int(rank))
    return out


@dataclass
class FaceIDLayout:
    """What a FaceID checkpoint holds, read from its keys and shapes alone (no model needed)."""

    id_dim: int
    hidden: int
    tokens: int
    cross_dim: int
    lora_rank: int | None
    identity_layers: list = field(default_factory=list)   # layer indices with to_k_ip/to_v_ip
    lora_layers: list = field(default_factory=list)       # layer indices with (part of) a LoRA
    n_tensors: int = 0
    n_params: int = 0
    dtypes: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)          # internal inconsistencies, each naming keys

    @property
    def family(self) -> str:
        """'SD1.5' / 'SDXL' from the token width (768 / 2048), else 'unknown'."""
        return {768: "SD1.5", 2048: "SDXL"}.get(int(self.cross_dim), "unknown")


def describe_faceid(sd: dict[str, dict[str, Any]], *, source: str = "checkpoint") -> FaceIDLayout:
    """Read a FaceID checkpoint's layout (token count, widths, LoRA rank, layers) and list every
    internal inconsistency by key name (``layout.problems``); raises only when the projection
    keys needed to read the widths are absent."""
    proj = sd.get("image_proj", {})
    ip = sd.get("ip_adapter", {})
    problems = []
    missing = [k for k in IMAGE_PROJ_KEYS if k not in proj]
    unexpected = sorted(k for k in proj if k not in IMAGE_PROJ_KEYS)
    if missing:
        problems.append(f"image_proj: missing {_names(missing)}")
    if unexpected:
        problems.append(f"image_proj: unexpected {_names(unexpected)}")
    if any(k not in proj for k in ("proj.0.weight", "proj.2.weight", "norm.weight")):
        raise UsageError(f"{source}: not an IP-Adapter FaceID checkpoint: image_proj lacks "
                         f"{_names([k for k in ('proj.0.weight', 'proj.2.weight', 'norm.weight') if k not in proj])}")
    w0, w2, norm = proj["proj.0.weight"], proj["proj.2.weight"], proj["norm.weight"]
    hidden, id_dim = int(w0.shape[0]), int(w0.shape[1])
    cross = int(norm.shape[0])
    tokens = int(w2.shape[0]) // cross if cross else 0
    if len(w2.shape) != 2 or int(w2.shape[1]) != hidden or tokens * cross != int(w2.shape[0]):
        problems.append(f"image_proj: proj.2.weight {tuple(w2.shape)} does not fit proj.0.weight {tuple(w0.shape)} "
                        f"and norm.weight {tuple(norm.shape)} (expected ({tokens}*{cross}, {hidden}))")
    for key, want in (("proj.0.bias", (hidden,)), ("proj.2.bias", (tokens * cross,)), ("norm.bias", (cross,))):
        if key in proj and tuple(proj[key].shape) != want:
            problems.append(f"image_proj: {key} is {tuple(proj[key].shape)}, expected {want}")
    identity_layers, lora_layers, ranks = set(), set(), Counter()
    lora_parts: dict[tuple, dict[str, Any]] = {}
    odd = []
    for key, value in ip.items():
        m = _IP_KEY.match(key)
        if m:
            identity_layers.add(int(m.group(1)))
            if tuple(value.shape)[1:] != (cross,):
                problems.append(f"ip_adapter: {key} is {tuple(value.shape)}; its input must be the {cross}-D tokens")
            continue
        m = _LORA_KEY.match(key)
        if m:
            lora_layers.add(int(m.group(1)))
            lora_parts.setdefault((int(m.group(1)), m.group(2)), {})[m.group(3)] = value
            continue
        odd.append(key)
    if odd:
        problems.append(f"ip_adapter: unexpected {_names(sorted(odd))} (not a to_k_ip/to_v_ip or LoRA key)")
    for i in sorted(identity_layers):
        for attr in ("to_k_ip", "to_v_ip"):
            if f"{i}.{attr}.weight" not in ip:
                problems.append(f"ip_adapter: missing {i}.{attr}.weight (layer {i} has the other identity projection)")
    for (i, lora), parts in sorted(lora_parts.items()):
        if set(parts) != {"down", "up"}:
            lack = "up" if "down" in parts else "down"
            problems.append(f"ip_adapter: missing {i}.{lora}.{lack}.weight")
            continue
        r_down, r_up = int(parts["down"].shape[0]), int(parts["up"].shape[1])
        if r_down != r_up:
            problems.append(f"ip_adapter: {i}.{lora} LoRA rank mismatch: down.weight has rank {r_down} "
                            f"{tuple(parts['down'].shape)}, up.weight rank {r_up} {tuple(parts['up'].shape)}")
        ranks[r_down] += 1
    for i in sorted(lora_layers):
        for lora, _ in LORA_TARGETS:
            if (i, lora) not in lora_parts:
                problems.append(f"ip_adapter: missing {i}.{lora}.down.weight and .up.weight (layer {i} has a "
                                f"partial LoRA)")
    rank = ranks.most_common(1)[0][0] if ranks else None
    if len(ranks) > 1:
        odd_layers = sorted({i for (i, lora), parts in lora_parts.items()
                             if "down" in parts and int(parts["down"].shape[0]) != rank})
        problems.append(f"ip_adapter: LoRA ranks differ between layers ({dict(ranks)}); layers with rank != {rank}: "
                        f"{odd_layers[:8]}")
    tensors = list(proj.values()) + list(ip.values())
    return FaceIDLayout(id_dim=id_dim, hidden=hidden, tokens=tokens, cross_dim=cross, lora_rank=rank,
                        identity_layers=sorted(identity_layers), lora_layers=sorted(lora_layers),
                        n_tensors=len(tensors), n_params=int(sum(_numel(t) for t in tensors)),
                        dtypes=dict(Counter(str(t.dtype).replace("torch.", "") for t in tensors)),
                        problems=problems)


@dataclass
class FaceIDKeyReport:
    """Every ``ip_adapter`` key of a checkpoint, accounted for against one UNet."""

    consumed: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    mismatched: list = field(default_factory=list)   # "key: checkpoint (a, b) vs model (c, d)"
    layout: FaceIDLayout | None = None

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched
                    or (self.layout is not None and self.layout.problems))

    def problems(self) -> list[str]:
        out = list(self.layout.problems) if self.layout is not None else []
        if self.missing:
            out.append(f"missing {len(self.missing)} key(s): {_names(self.missing)}")
        if self.unexpected:
            out.append(f"unexpected {len(self.unexpected)} key(s): {_names(self.unexpected)}")
        if self.mismatched:
            out.append(f"{len(self.mismatched)} key(s) of the wrong shape: {_names(self.mismatched)}")
        return out


def faceid_key_report(sd: dict[str, dict[str, Any]], layout: list[AttentionLayer], *, cross_dim: int,
                      source: str = "checkpoint") -> FaceIDKeyReport:
    """Account for every key of ``sd`` against a UNet's attention ``layout`` (see :func:`attention_layout`).

    The LoRA rank is the checkpoint's own (the most common one); a checkpoint without any LoRA
    key is reported as missing the LoRA of every layer.
    """
    desc = describe_faceid(sd, source=source)
    rank = desc.lora_rank if desc.lora_rank is not None else RELEASED_LORA_RANK
    want = expected_faceid_shapes(layout, cross_dim=cross_dim, rank=rank)
    ip = sd.get("ip_adapter", {})
    rep = FaceIDKeyReport(layout=desc)
    for key in sorted(ip, key=_key_order):
        if key not in want:
            rep.unexpected.append(key)
        elif tuple(ip[key].shape) != tuple(want[key]):
            rep.mismatched.append(f"{key}: checkpoint {tuple(ip[key].shape)} vs model {tuple(want[key])}")
        else:
            rep.consumed.append(key)
    rep.missing = [k for k in sorted(want, key=_key_order) if k not in ip]
    return rep


def load_faceid(unet, sd: dict[str, dict[str, Any]], *, lora_scale: float = 1.0, strict: bool = True,
                source: str = "checkpoint") -> dict[str, Any]:
    """Load the identity weights and fuse the LoRA of a FaceID checkpoint into ``unet`` (which
    carries our processors), accounting for every key.

    ``strict=True``: any missing, unexpected or wrongly shaped key, or an internal inconsistency
    (a LoRA rank mismatch, a partial LoRA), raises :class:`UsageError` naming the keys, before
    anything is changed. ``strict=False``: what fits is loaded, and every skipped key is logged
    by name and returned. Returns ``{"identity_layers", "lora_layers_fused", "consumed", "missing",
    "unexpected", "mismatched", "lora_rank"}``.
    """
    torch = optional_import("torch", extra="torch")
    cross = int(unet.config.cross_attention_dim)
    rep = faceid_key_report(sd, attention_layout(unet), cross_dim=cross, source=source)
    problems = rep.problems()
    if problems and strict:
        raise UsageError(f"{source}: the FaceID checkpoint does not match this UNet: " + "; ".join(problems)
                         + " (an SD1.5 FaceID checkpoint needs an SD1.5-class base model and an SDXL one an "
                         "SDXL-class base; pass faceid_strict=False / --faceid-strict off to load what fits)")
    for p in problems:
        log.warning("%s: FaceID checkpoint: %s (skipped: faceid_strict is off)", source, p)
    ok = set(rep.consumed)
    ip = sd["ip_adapter"]
    procs = unet.attn_processors
    identity_layers = 0
    for key_id, (name, proc) in enumerate(procs.items()):
        if not getattr(proc, "has_identity_weights", False):
            continue
        keys = [f"{key_id}.to_k_ip.weight", f"{key_id}.to_v_ip.weight"]
        if not all(k in ok for k in keys):
            continue
        with torch.no_grad():
            for key, target in zip(keys, (proc.to_k_ip.weight, proc.to_v_ip.weight)):
                target.copy_(ip[key].to(dtype=target.dtype, device=target.device))
        identity_layers += 1
    complete = {}
    for key_id in range(len(procs)):
        keys = [f"{key_id}.{lora}.{part}.weight" for lora, _ in LORA_TARGETS for part in ("down", "up")]
        if all(k in ok for k in keys):
            complete.update({k: ip[k] for k in keys})
    fused = fuse_faceid_lora(unet, complete, lora_scale=lora_scale, source=source) if complete else 0
    return {"identity_layers": identity_layers, "lora_layers_fused": fused, "consumed": len(rep.consumed),
            "missing": rep.missing, "unexpected": rep.unexpected, "mismatched": rep.mismatched,
            "lora_rank": rep.layout.lora_rank if rep.layout is not None else None}


#: Canonical UNet hyperparameters shipped in ``madpad/configs/dcmorph/unet/`` (no weights).
CANONICAL_UNETS = ("sd15", "sdxl")


def canonical_unet_config(arch: str) -> dict[str, Any]:
    """The UNet config of the real SD1.5 (``sd15``) or SDXL (``sdxl``) base model."""
    import json

    import madpad

    if arch not in CANONICAL_UNETS:
        raise UsageError(f"no canonical UNet config for {arch!r}; shipped: {list(CANONICAL_UNETS)}")
    path = Path(madpad.__file__).parent / "configs" / "dcmorph" / "unet" / f"{arch}.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    cfg.pop("description", None)
    return cfg


def build_unet_on_meta(config: dict[str, Any]):
    """A ``UNet2DConditionModel`` from ``config`` on the meta device: real module structure and
    parameter shapes, no memory for the weights (a full SDXL UNet builds in well under a second)."""
    torch = optional_import("torch", extra="torch")
    diffusers = optional_import("diffusers", extra="diffusion", purpose="building a UNet from its config")
    cfg = {k: v for k, v in dict(config).items() if not k.startswith("_") and k != "description"}
    with torch.device("meta"):
        return diffusers.UNet2DConditionModel.from_config(cfg)


def _numel(t) -> int:
    n = 1
    for d in t.shape:
        n *= int(d)
    return n


def _key_order(key: str):
    head, _, rest = key.partition(".")
    return (int(head), rest) if head.isdigit() else (10**9, key)


def _names(keys, limit: int = 6) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


__all__ = ["export_faceid_state_dict", "load_faceid_state_dict", "build_faceid_projection", "projection_state_dict",
           "load_identity_weights", "fuse_faceid_lora", "LORA_TARGETS", "load_faceid", "faceid_key_report",
           "FaceIDKeyReport", "describe_faceid", "FaceIDLayout", "attention_layout", "AttentionLayer",
           "expected_faceid_shapes", "IMAGE_PROJ_KEYS", "RELEASED_LORA_RANK", "CANONICAL_UNETS",
           "canonical_unet_config", "build_unet_on_meta"]

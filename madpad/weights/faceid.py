"""Check an IP-Adapter FaceID checkpoint (``.bin`` / ``.safetensors``) against a base model.

The real layout (h94/IP-Adapter-FaceID): ``image_proj`` (``proj.0`` Linear 512 -> 1024, ``proj.2``
Linear 1024 -> tokens x cross-dim, ``norm`` LayerNorm) and ``ip_adapter`` (``{i}.to_k_ip.weight``
/ ``{i}.to_v_ip.weight`` of every cross-attention layer, a rank-128 LoRA ``{i}.to_X_lora.down/up``
of every attention layer, layers numbered in ``unet.attn_processors`` order). The check reads the
token count, widths and LoRA rank from the keys and shapes, then accounts for every key against
the base model's UNet built on the meta device from its ``unet/config.json`` (no weights): the
same :func:`madpad.morph.dcmorph.faceid.faceid_key_report` that ``dcmorph`` loads with. Without a
base model the canonical SD1.5 or SDXL UNet is used (chosen by the token width, 768 or 2048).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from madpad.errors import UsageError

from .common import LICENCES, WeightCheck, dtype_summary, meta_tensors, millions, read_safetensors_header
from .diffusers_folder import BaseModel

_CANONICAL_BY_CROSS = {768: "sd15", 2048: "sdxl"}
_LAYOUT_CACHE: dict[str, Any] = {}


def is_faceid_state_dict(obj) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("image_proj"), dict) and isinstance(obj.get("ip_adapter"), dict)


def faceid_from_safetensors(path: Path) -> dict[str, dict[str, Any]] | None:
    """The FaceID sections as meta tensors from a ``.safetensors`` header (None: not FaceID-shaped)."""
    infos = read_safetensors_header(path)
    if not any(k.startswith("image_proj.") for k in infos) or not any(k.startswith("ip_adapter.") for k in infos):
        return None
    tensors = meta_tensors(infos)
    sd: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}, "__other__": {}}
    for key, value in tensors.items():
        head, _, rest = key.partition(".")
        sd[head if head in ("image_proj", "ip_adapter") and rest else "__other__"][rest or key] = value
    return sd


def _layout(config: dict, cache_key: str):
    from madpad.morph.dcmorph.faceid import attention_layout, build_unet_on_meta

    if cache_key not in _LAYOUT_CACHE:
        _LAYOUT_CACHE[cache_key] = attention_layout(build_unet_on_meta(config))
    return _LAYOUT_CACHE[cache_key]


def check_faceid(row: WeightCheck, sd: dict[str, dict[str, Any]], base: BaseModel | None) -> WeightCheck:
    """Fill ``row`` for a FaceID checkpoint: layout summary, key account against ``base`` (or the
    canonical UNet of its family)."""
    from madpad.morph.dcmorph.faceid import (
        RELEASED_LORA_RANK,
        canonical_unet_config,
        describe_faceid,
        faceid_key_report,
    )

    row.licence = LICENCES["faceid"]
    others = sorted(sd.get("__other__", {}))
    if others:
        row.problems.append(f"unexpected top-level key(s) outside image_proj/ip_adapter: {', '.join(others[:6])}")
    try:
        desc = describe_faceid(sd, source=row.path)
    except UsageError as exc:
        row.kind = "IP-Adapter checkpoint (not FaceID)"
        row.problems.append(str(exc))
        return row
    row.kind = f"IP-Adapter FaceID ({desc.family} layout)"
    rank = "no LoRA" if desc.lora_rank is None else f"LoRA rank {desc.lora_rank}"
    row.summary = (f"{desc.tokens} tokens x {desc.cross_dim}, identity {desc.id_dim}-D, {rank}, "
                   f"{len(desc.identity_layers)} identity layers, {millions(desc.n_params)}")
    tensors = list(sd["image_proj"].values()) + list(sd["ip_adapter"].values())
    row.dtypes = dtype_summary(tensors)
    if desc.id_dim != 512:
        row.problems.append(f"the identity projection takes {desc.id_dim}-D embeddings; FaceID uses 512-D ArcFace "
                            f"embeddings")
    if desc.lora_rank is not None and desc.lora_rank != RELEASED_LORA_RANK:
        row.notes.append(f"LoRA rank {desc.lora_rank}; the released FaceID adapters use rank {RELEASED_LORA_RANK}")
    if base is not None:
        if desc.cross_dim != base.cross_dim:
            fam = desc.family if desc.family != "unknown" else f"{desc.cross_dim}-D"
            base_fam = {"sd15": "SD1.5", "sdxl": "SDXL"}.get(base.arch, base.arch)
            row.problems.insert(0, f"an {fam} FaceID adapter ({desc.cross_dim}-D tokens) does not fit the {base_fam} "
                                   f"base {base.path} (cross-attention width {base.cross_dim}); use the matching "
                                   f"adapter (ip-adapter-faceid_sd15 for SD1.5, ip-adapter-faceid_sdxl for SDXL)")
            return row
        layout = _layout(base.unet_config, f"base:{base.path}")
        against = f"the base model {base.path}"
    else:
        arch = _CANONICAL_BY_CROSS.get(desc.cross_dim)
        if arch is None:
            row.problems.extend(desc.problems)
            row.notes.append(f"{desc.cross_dim}-D tokens match neither SD1.5 (768) nor SDXL (2048); pass "
                             f"--base-model FOLDER to check the layer layout")
            return row
        layout = _layout(canonical_unet_config(arch), f"canonical:{arch}")
        against = f"the canonical {desc.family} UNet"
        row.notes.append(f"checked against {against}; pass --base-model FOLDER to check it against your base model")
    rep = faceid_key_report(sd, layout, cross_dim=desc.cross_dim, source=row.path)
    for p in rep.problems():
        row.problems.append(f"{p} (against {against})" if not p.startswith(("image_proj", "ip_adapter:")) else p)
    if rep.ok:
        row.summary += f", all {len(rep.consumed) + len(sd['image_proj'])} keys fit {against}"
    return row


__all__ = ["check_faceid", "faceid_from_safetensors", "is_faceid_state_dict"]

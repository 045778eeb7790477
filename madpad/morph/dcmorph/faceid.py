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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from madpad.errors import UsageError
from madpad.io import optional_import

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


__all__ = ["export_faceid_state_dict", "load_faceid_state_dict", "build_faceid_projection", "projection_state_dict",
           "load_identity_weights",
           "fuse_faceid_lora", "LORA_TARGETS"]

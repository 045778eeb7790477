"""Check torch weight files: YOLO ``.pt``, open_clip / timm checkpoints, FaceID ``.bin``, single-file
Stable Diffusion ``.safetensors``.

Order for a ``.bin``/``.pt``/``.pth``/``.ckpt``: the pickle's globals are listed first without
unpickling (:func:`madpad.face.yolo_weights.checkpoint_globals`); a file naming ultralytics model
classes is a YOLO checkpoint and gets the YOLO allow-list check; anything else is read with
``torch.load(weights_only=True)`` and classified by its keys. open_clip checkpoints are matched to
an architecture by their shapes (vision width, depth, patch and image size, text width and depth,
embedding size) against open_clip's model configs; timm checkpoints need ``--arch timm:NAME``.
Either way the named architecture is built on the meta device and every key is compared: missing,
unexpected and wrongly shaped keys are listed by name.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from madpad.errors import UsageError
from madpad.io import optional_import

from .common import (
    LICENCES,
    WeightCheck,
    dtype_summary,
    flatten_tensors,
    load_weights_only,
    meta_tensors,
    millions,
    param_count,
    read_safetensors_header,
)
from .diffusers_folder import BaseModel, compare_keys
from .faceid import check_faceid, faceid_from_safetensors, is_faceid_state_dict

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "state_dict_ema", "module")


def parse_arch(spec: str | None) -> tuple[str, str] | None:
    """``open_clip:ViT-B-16`` / ``timm:vit_small_patch16_224`` -> (library, name)."""
    if not spec:
        return None
    lib, _, name = str(spec).partition(":")
    if lib not in ("open_clip", "timm") or not name:
        raise UsageError(f"--arch {spec!r}: expected open_clip:NAME or timm:NAME")
    return lib, name


def unwrap_state_dict(obj) -> dict[str, Any]:
    """The tensor dict inside common checkpoint wrappers (``state_dict``, ``model``, ...), with a
    leading ``module.`` (DataParallel) removed."""
    torch = optional_import("torch", extra="torch")
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and any(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    sd = flatten_tensors(obj) if isinstance(obj, dict) else {}
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


# --------------------------------------------------------------------------- open_clip
def open_clip_signature(sd: dict[str, Any]) -> dict[str, int] | None:
    """Architecture numbers of an open_clip (OpenAI-layout ViT) state dict; None when not one."""
    if "visual.conv1.weight" not in sd or "token_embedding.weight" not in sd:
        return None
    def depth(prefix: str) -> int:
        return len({m.group(1) for k in sd for m in [re.match(prefix + r"\.resblocks\.(\d+)\.", k)] if m})

    conv = tuple(sd["visual.conv1.weight"].shape)
    sig = {"width": conv[0], "patch_size": conv[-1], "layers": depth(r"visual\.transformer"),
           "text_width": tuple(sd["token_embedding.weight"].shape)[1],
           "vocab_size": tuple(sd["token_embedding.weight"].shape)[0], "text_layers": depth(r"transformer")}
    if "visual.positional_embedding" in sd:
        grid = int(round(math.sqrt(tuple(sd["visual.positional_embedding"].shape)[0] - 1)))
        sig["image_size"] = grid * sig["patch_size"]
    if "visual.proj" in sd:
        sig["embed_dim"] = tuple(sd["visual.proj"].shape)[1]
    if "positional_embedding" in sd:
        sig["context_length"] = tuple(sd["positional_embedding"].shape)[0]
    return sig


def _register_shipped_open_clip_configs(open_clip) -> None:
    import madpad

    folder = Path(madpad.__file__).parent / "configs" / "open_clip"
    if folder.is_dir():
        open_clip.add_model_config(str(folder))


def open_clip_candidates(sig: dict[str, int]) -> list[str]:
    """open_clip model names whose config has exactly these numbers."""
    open_clip = optional_import("open_clip", extra="detect", purpose="naming open_clip architectures")
    _register_shipped_open_clip_configs(open_clip)
    out = []
    for name in open_clip.list_models():
        cfg = open_clip.get_model_config(name) or {}
        v, t = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
        if v.get("timm_model_name") or t.get("hf_model_name"):
            continue
        want = {"width": v.get("width"), "patch_size": v.get("patch_size"), "layers": v.get("layers"),
                "image_size": v.get("image_size"), "embed_dim": cfg.get("embed_dim"),
                "text_width": t.get("width"), "text_layers": t.get("layers"),
                "vocab_size": t.get("vocab_size", 49408), "context_length": t.get("context_length", 77)}
        if all(k not in sig or want[k] == sig[k] for k in want):
            out.append(name)
    return out


def _meta_model(lib: str, name: str):
    torch = optional_import("torch", extra="torch")
    if lib == "open_clip":
        open_clip = optional_import("open_clip", extra="detect", purpose="checking open_clip checkpoints")
        _register_shipped_open_clip_configs(open_clip)
        if name not in open_clip.list_models():
            raise UsageError(f"open_clip has no architecture {name!r}")
        with torch.device("meta"):
            return open_clip.create_model(name, pretrained=None, device="meta")
    timm = optional_import("timm", extra="detect", purpose="checking timm checkpoints")
    if name not in timm.list_models():
        raise UsageError(f"timm has no architecture {name!r}")
    with torch.device("meta"):
        return timm.create_model(name, pretrained=False)


def check_named_architecture(row: WeightCheck, sd: dict[str, Any], lib: str, name: str) -> None:
    try:
        model = _meta_model(lib, name)
    except UsageError as exc:
        row.problems.append(str(exc))
        return
    problems = compare_keys(sd, model.state_dict())
    row.problems += [f"as {lib}:{name}: {p}" for p in problems]
    if not problems:
        row.summary += f", all {len(sd)} keys fit {lib}:{name}"


def check_open_clip(row: WeightCheck, sd: dict[str, Any], arch: tuple[str, str] | None) -> None:
    sig = open_clip_signature(sd) or {}
    row.licence = LICENCES["open_clip"]
    row.kind = "open_clip CLIP checkpoint"
    row.summary = (f"ViT width {sig.get('width')}, {sig.get('layers')} layers, patch {sig.get('patch_size')}, "
                   f"{sig.get('image_size')} px, embed {sig.get('embed_dim')}; {millions(param_count(sd.values()))}")
    if arch is not None:
        lib, name = arch
        row.kind = f"{lib} checkpoint for {name}"
        check_named_architecture(row, sd, lib, name)
        return
    names = open_clip_candidates(sig)
    if not names:
        row.problems.append("no open_clip architecture has these shapes; name it with --arch open_clip:NAME "
                            "(or register its config)")
        return
    same = f" (same shapes: {', '.join(names[1:4])})" if len(names) > 1 else ""
    row.kind = f"open_clip CLIP checkpoint: {names[0]}{same}"
    check_named_architecture(row, sd, "open_clip", names[0])


def looks_like_timm(sd: dict[str, Any]) -> bool:
    keys = set(sd)
    return bool(keys & {"patch_embed.proj.weight", "cls_token", "stem.conv.weight", "conv_stem.weight"}) or any(
        k.startswith(("blocks.0.", "stages.0.")) for k in keys)


# --------------------------------------------------------------------------- dispatch
def check_torch_file(row: WeightCheck, path: Path, *, base: BaseModel | None, arch: tuple[str, str] | None) -> None:
    """``.bin`` / ``.pt`` / ``.pth`` / ``.ckpt``: YOLO, FaceID, open_clip, timm."""
    from madpad.face import yolo_weights as yw

    try:
        names = yw.checkpoint_globals(path)
    except UsageError:
        names = None  # legacy (non-zip) file: torch.load(weights_only=True) below still reads it safely
    if names and any(n.startswith("ultralytics.") for n in names):
        row.kind = "YOLO weights (ultralytics)"
        row.licence = LICENCES["yolo"]
        try:
            yw.scan_yolo_weights(path)
        except UsageError as exc:
            row.problems.append(str(exc).split(": ", 1)[-1])
            return
        classes = yw.model_classes(names)
        row.kind = f"YOLO weights (ultralytics {', '.join(classes) or 'model'})"
        row.summary = f"{len(names)} model classes referenced, all on the allow-list"
        if not yw.restricted_loader_available():
            row.notes.append("this ultralytics lacks its restricted loader; madpad still refuses unlisted globals")
        return
    try:
        obj = load_weights_only(path)
    except UsageError as exc:
        row.kind = "torch file"
        row.problems.append(str(exc).split(": ", 1)[-1])
        return
    if is_faceid_state_dict(obj):
        extra = {k: v for k, v in obj.items() if k not in ("image_proj", "ip_adapter")}
        sd = {"image_proj": obj["image_proj"], "ip_adapter": obj["ip_adapter"], "__other__": extra}
        check_faceid(row, sd, base)
        return
    sd = unwrap_state_dict(obj)
    classify_state_dict(row, sd, arch)


def classify_state_dict(row: WeightCheck, sd: dict[str, Any], arch: tuple[str, str] | None) -> None:
    if not sd:
        row.kind = "torch file without tensors"
        row.problems.append("no tensors found (not a weights file)")
        return
    row.dtypes = dtype_summary(sd.values())
    if open_clip_signature(sd) is not None or (arch is not None and arch[0] == "open_clip"):
        check_open_clip(row, sd, arch)
        return
    if arch is not None:
        lib, name = arch
        row.kind = f"{lib} checkpoint for {name}"
        row.licence = LICENCES[lib]
        row.summary = millions(param_count(sd.values()))
        check_named_architecture(row, sd, lib, name)
        return
    if looks_like_timm(sd):
        row.kind = "timm-style checkpoint"
        row.licence = LICENCES["timm"]
        row.summary = millions(param_count(sd.values()))
        row.problems.append("cannot tell which timm architecture this is: name it with --arch timm:NAME to check "
                            "its keys")
        return
    row.kind = f"torch state dict ({len(sd)} tensors)"
    row.summary = millions(param_count(sd.values()))
    row.problems.append(f"unrecognised weights (keys like {', '.join(sorted(sd)[:3])}): not a FaceID, YOLO, "
                        f"open_clip or timm checkpoint")


def check_safetensors_file(row: WeightCheck, path: Path, *, base: BaseModel | None,
                           arch: tuple[str, str] | None) -> None:
    try:
        sd = faceid_from_safetensors(path)
    except UsageError as exc:
        row.kind = "safetensors file"
        row.problems.append(str(exc).split(": ", 1)[-1])
        return
    if sd is not None:
        check_faceid(row, sd, base)
        return
    infos = read_safetensors_header(path)
    row.dtypes = dtype_summary(infos.values())
    unet = [k for k in infos if k.startswith("model.diffusion_model.")]
    if unet:
        xl = any(k.startswith("conditioner.embedders.1") for k in infos)
        cross = next((infos[k].shape[1] for k in unet if k.endswith("attn2.to_k.weight")), None)
        row.kind = f"Stable Diffusion single-file checkpoint ({'SDXL' if xl else 'SD1.5'} class)"
        row.licence = LICENCES["sdxl" if xl else "sd15"]
        row.summary = f"UNet cross-attention {cross}, {millions(param_count(infos.values()))}"
        row.notes.append("dcmorph loads it with diffusers' from_single_file, which may fetch config files from the "
                         "Hub the first time; offline, convert it to a diffusers folder")
        return
    classify_state_dict(row, meta_tensors(infos), arch)


__all__ = ["check_torch_file", "check_safetensors_file", "classify_state_dict", "open_clip_candidates",
           "open_clip_signature", "parse_arch", "unwrap_state_dict"]

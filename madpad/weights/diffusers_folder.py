"""Check a Stable Diffusion 1.5 / SDXL diffusers folder (the base model of dcmorph) without loading it.

Per component: the folder and ``config.json`` are there and readable, every weight file is
readable (``.safetensors`` header, or ``torch.load(weights_only=True)`` for ``.bin``), and its
keys and shapes are exactly those of the module its config describes (built on the meta device:
no memory for the weights). Across components: the UNet's cross-attention width equals the text
encoders' hidden sizes (768 for SD1.5; 768 + 1280 = 2048 for SDXL), the VAE's latent channels
equal the UNet's input channels, and (SDXL) the pooled-text + time-id width fits the UNet's
added embedding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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
    millions,
    new_row,
    param_count,
    read_safetensors_header,
)

REQUIRED = {
    "sd15": ("unet", "vae", "text_encoder", "tokenizer", "scheduler"),
    "sdxl": ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"),
}
EXPECTED_CROSS = {"sd15": 768, "sdxl": 2048}
_DEPRECATED_ATTN = ((".query.", ".to_q."), (".key.", ".to_k."), (".value.", ".to_v."), (".proj_attn.", ".to_out.0."))


@dataclass
class BaseModel:
    """What the FaceID check needs to know about a base model folder."""

    path: str
    arch: str
    cross_dim: int
    unet_config: dict = field(default_factory=dict)


def is_pipeline_folder(path: Path) -> bool:
    return path.is_dir() and (path / "model_index.json").is_file()


def _read_json(path: Path, row: WeightCheck) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        row.problems.append(f"missing {path.name} in {path.parent.name}/")
        return None
    except (OSError, ValueError) as exc:
        row.problems.append(f"{path}: unreadable JSON ({exc})")
        return None
    if not isinstance(data, dict):
        row.problems.append(f"{path}: expected a JSON object")
        return None
    return data


def weight_files(component: Path) -> list[Path]:
    """The weight files of a diffusers/transformers component folder (all variants, shards resolved)."""
    files: list[Path] = []
    for index in sorted(component.glob("*.safetensors.index.json")) + sorted(component.glob("*.bin.index.json")):
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        except (OSError, ValueError):
            continue
        files += [component / f for f in sorted(set(weight_map.values()))]
    if files:
        return files
    for pattern in ("*.safetensors", "*.bin"):
        files += sorted(p for p in component.glob(pattern) if p.is_file())
    return files


def read_tensor_shapes(path: Path) -> dict[str, Any]:
    """name -> object with ``.shape`` and ``.dtype`` (header only for safetensors)."""
    if path.suffix == ".safetensors":
        return read_safetensors_header(path)
    obj = load_weights_only(path)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    return flatten_tensors(obj)


def _meta_module(kind: str, config: dict, class_name: str | None):
    torch = optional_import("torch", extra="torch")
    cfg = {k: v for k, v in config.items() if not k.startswith("_")}
    with torch.device("meta"):
        if kind == "unet":
            diffusers = optional_import("diffusers", extra="diffusion")
            return diffusers.UNet2DConditionModel.from_config(cfg)
        if kind == "vae":
            diffusers = optional_import("diffusers", extra="diffusion")
            return diffusers.AutoencoderKL.from_config(cfg)
        transformers = optional_import("transformers", extra="diffusion")
        cls = getattr(transformers, class_name or "CLIPTextModel", None)
        if cls is None:
            raise UsageError(f"unknown text encoder class {class_name!r}")
        return cls(transformers.CLIPTextConfig(**cfg))


def compare_keys(file_shapes: dict[str, Any], model_state: dict[str, Any]) -> list[str]:
    """Problems naming missing, unexpected and wrongly shaped keys (deprecated attention names mapped)."""
    from madpad.morph.dcmorph.faceid import _names

    norm = {}
    for k, v in file_shapes.items():
        for old, new in _DEPRECATED_ATTN:
            k = k.replace(old, new)
        if k.endswith("position_ids"):
            continue
        norm[k] = v
    want = {k: v for k, v in model_state.items() if not k.endswith("position_ids")}
    missing = sorted(k for k in want if k not in norm)
    unexpected = sorted(k for k in norm if k not in want)
    wrong = [f"{k}: file {tuple(norm[k].shape)} vs config {tuple(want[k].shape)}"
             for k in sorted(norm) if k in want and tuple(norm[k].shape) != tuple(want[k].shape)]
    out = []
    if missing:
        out.append(f"missing {len(missing)} key(s) the config needs: {_names(missing)}")
    if unexpected:
        out.append(f"{len(unexpected)} unexpected key(s): {_names(unexpected)}")
    if wrong:
        out.append(f"{len(wrong)} key(s) of the wrong shape: {_names(wrong, 3)}")
    return out


def check_pipeline_folder(folder: Path, *, hash_files: bool = True) -> tuple[list[WeightCheck], BaseModel | None]:
    """Rows for the folder and each component weight file, plus the base-model description
    (None when the folder is not a usable SD1.5/SDXL pipeline)."""
    head = new_row(folder, hash_files=False)
    rows = [head]
    index = _read_json(folder / "model_index.json", head)
    if index is None:
        head.kind = "diffusers folder (unreadable model_index.json)"
        return rows, None
    name = str(index.get("_class_name", ""))
    arch = "sdxl" if "XL" in name else ("sd15" if name.startswith("StableDiffusion") else None)
    head.kind = f"diffusers pipeline folder ({name or 'no _class_name'})"
    if arch is None:
        head.problems.append(f"model class {name!r} is neither a Stable Diffusion 1.5-class nor an SDXL-class "
                             f"pipeline (dcmorph supports those two)")
        return rows, None
    head.kind = f"{'SDXL' if arch == 'sdxl' else 'SD1.5'}-class base model folder ({name})"
    head.licence = LICENCES[arch]
    for comp in REQUIRED[arch]:
        if comp not in index or index.get(comp) in (None, [None, None]):
            head.problems.append(f"model_index.json lists no {comp}")
        elif not (folder / comp).is_dir():
            head.problems.append(f"component folder {comp}/ is missing")
    configs: dict[str, dict] = {}
    for comp in ("unet", "vae", "text_encoder", "text_encoder_2"):
        if comp not in REQUIRED[arch] or not (folder / comp).is_dir():
            continue
        cfg = _read_json(folder / comp / "config.json", head)
        if cfg is None:
            continue
        configs[comp] = cfg
        class_name = (index.get(comp) or [None, None])[1] if isinstance(index.get(comp), list) else None
        files = weight_files(folder / comp)
        if not files:
            head.problems.append(f"{comp}/ has no weight file (*.safetensors or *.bin)")
            continue
        try:
            model_state = _meta_module(comp if comp in ("unet", "vae") else "text", cfg, class_name).state_dict()
        except Exception as exc:  # noqa: BLE001 - a config the library cannot build is a finding, not a crash
            head.problems.append(f"{comp}/config.json does not build a model ({' '.join(str(exc).split())[:160]})")
            model_state = None
        by_variant: dict[str, dict] = {}
        for f in files:
            row = new_row(f, hash_files=hash_files)
            rows.append(row)
            row.licence = LICENCES[arch]
            try:
                shapes = read_tensor_shapes(f)
            except UsageError as exc:
                row.kind = f"{comp} weights"
                row.problems.append(str(exc))
                continue
            variant = f.name.split(".")[-2] if f.name.count(".") >= 2 and "-of-" not in f.name else ""
            by_variant.setdefault(variant, {}).update(shapes)
            row.dtypes = dtype_summary(shapes.values())
            row.summary = millions(param_count(shapes.values()))
            row.kind = _component_kind(comp, arch, cfg)
        for variant, shapes in by_variant.items():
            if model_state is None:
                continue
            problems = compare_keys(shapes, model_state)
            if problems:
                target = next((r for r in rows if r.path.startswith(str(folder / comp))), head)
                target.problems += [f"{comp}{(' (' + variant + ')') if variant else ''}: {p}" for p in problems]
        if comp == "unet":
            cross = cfg.get("cross_attention_dim")
            for shapes in by_variant.values():
                found = next((tuple(v.shape) for k, v in shapes.items() if k.endswith("attn2.to_k.weight")), None)
                if found is not None and cross is not None and found[1] != int(cross):
                    head.problems.append(f"unet weights have cross-attention width {found[1]} but unet/config.json "
                                         f"says {cross}")
    base = _cross_checks(folder, arch, configs, head)
    if base is not None:
        head.summary = f"UNet cross-attention {base.cross_dim}, {len(REQUIRED[arch])} components"
        if base.cross_dim != EXPECTED_CROSS[arch]:
            head.notes.append(f"cross-attention width {base.cross_dim} differs from the usual {EXPECTED_CROSS[arch]} "
                              f"of {arch}: FaceID adapters made for {arch} will not fit")
    return rows, base


def _component_kind(comp: str, arch: str, cfg: dict) -> str:
    label = "SDXL" if arch == "sdxl" else "SD1.5"
    if comp == "unet":
        return f"{label} UNet (cross-attention {cfg.get('cross_attention_dim')})"
    if comp == "vae":
        return f"{label} VAE ({cfg.get('latent_channels')} latent channels, scaling {cfg.get('scaling_factor')})"
    return f"{label} {comp} (hidden {cfg.get('hidden_size')})"


def _cross_checks(folder: Path, arch: str, configs: dict[str, dict], head: WeightCheck) -> BaseModel | None:
    unet = configs.get("unet")
    if unet is None:
        return None
    cross = unet.get("cross_attention_dim")
    if not isinstance(cross, int):
        head.problems.append(f"unet/config.json: cross_attention_dim {cross!r} is not one integer")
        return None
    te = [configs.get(c, {}).get("hidden_size") for c in ("text_encoder", "text_encoder_2") if c in configs]
    if te and all(isinstance(h, int) for h in te) and sum(te) != cross:
        head.problems.append(f"text encoder hidden sizes {te} (sum {sum(te)}) do not match the UNet's cross-attention "
                             f"width {cross}")
    vae = configs.get("vae")
    if vae is not None and vae.get("latent_channels") not in (None, unet.get("in_channels", 4)):
        head.problems.append(f"the VAE has {vae.get('latent_channels')} latent channels but the UNet takes "
                             f"{unet.get('in_channels')}")
    if arch == "sdxl" and "text_encoder_2" in configs:
        proj = configs["text_encoder_2"].get("projection_dim")
        t_dim, total = unet.get("addition_time_embed_dim"), unet.get("projection_class_embeddings_input_dim")
        if all(isinstance(v, int) for v in (proj, t_dim, total)) and proj + 6 * t_dim != total:
            head.problems.append(f"SDXL added embedding: pooled text {proj} + 6 time ids x {t_dim} != the UNet's "
                                 f"{total}")
    return BaseModel(path=str(folder), arch=arch, cross_dim=int(cross), unet_config=dict(unet))


__all__ = ["BaseModel", "check_pipeline_folder", "compare_keys", "is_pipeline_folder", "read_tensor_shapes",
           "weight_files", "REQUIRED"]

"""Command-line options of the ``dcmorph`` method for ``python -m madpad.generate`` (used by the
classmethods ``DCMorph.add_cli_arguments`` / ``DCMorph.from_cli``, :mod:`.method`)."""

from __future__ import annotations

from typing import Any

from madpad.cli import size_arg

from .generator import (
    ALIGN_CHOICES,
    DEFAULT_NEGATIVE_PROMPT,
    DEFAULT_PROMPT,
    DTYPES,
    IDENTITY_MIXING,
    INVERSION_CONDITIONING,
    INVERSION_ID_SCALES,
    PRESETS,
    REALIGN_CHOICES,
    REALIGN_TO,
    SCHEDULE_CHOICES,
    SLERP_CHOICES,
    STREAMS,
)

_size_pair = size_arg(1)


def add_arguments(group) -> None:
    """Options of the dcmorph method (reference defaults)."""
    g = group
    g.add_argument("--base-model", default=None,
                   help="Stable Diffusion 1.5-class or SDXL-class base: hub id, diffusers folder or a single "
                        ".safetensors checkpoint (the reference uses SDXL RealVisXL V3.0)")
    g.add_argument("--ip-adapter", default=None,
                   help="IP-Adapter FaceID checkpoint (ip-adapter-faceid_sd15.bin / ip-adapter-faceid_sdxl.bin or "
                        ".safetensors; non-commercial research licence)")
    g.add_argument("--face-encoder", default=None, metavar="NAME[:key=value,...]",
                   help="identity encoder giving 512-D ArcFace embeddings, e.g. "
                        "arcface_onnx:model_path=w600k_r50.onnx (dlib's 128-D embeddings do not fit FaceID)")
    g.add_argument("--arch", default="auto", choices=["auto", "sd15", "sdxl"], help="base model class (default auto)")
    g.add_argument("--variant", default=None, help="weights variant of the base model (e.g. fp16)")
    g.add_argument("--steps", type=int, default=30, help="DDIM sampling steps (default 30)")
    g.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance scale (default 2.0; <=1 off)")
    g.add_argument("--inversion-steps", type=int, default=None,
                   help="DDIM inversion depth in steps of the --steps grid (default: --steps); sampling then runs "
                        "the matching last steps")
    g.add_argument("--prompt", default=DEFAULT_PROMPT, help=f"prompt (default {DEFAULT_PROMPT!r})")
    g.add_argument("--negative-prompt", default=DEFAULT_NEGATIVE_PROMPT,
                   help=f"negative prompt (default {DEFAULT_NEGATIVE_PROMPT!r})")
    g.add_argument("--inversion-conditioning", default="null", choices=list(INVERSION_CONDITIONING),
                   help="inversion conditioning: null = negative prompt + null identity (reference), own = prompt + "
                        "the source's own identity (default null)")
    g.add_argument("--stream", default="dual", choices=list(STREAMS),
                   help="dual (both streams), identity (identity stream only, fresh seeded noise) or latent "
                        "(latent stream only, no identity tokens) (default dual)")
    g.add_argument("--identity-mixing", default="decoupled", choices=list(IDENTITY_MIXING),
                   help="decoupled cross-attention interpolation, or one averaged identity embedding (ablation) "
                        "(default decoupled)")
    g.add_argument("--id-scale", type=float, default=1.0, help="IP-Adapter identity attention scale (default 1.0)")
    g.add_argument("--lora-scale", type=float, default=1.0, help="scale of the fused FaceID LoRA (default 1.0)")
    g.add_argument("--size", type=int, default=None, help="output size in pixels (default: the base model's)")
    g.add_argument("--dtype", default="auto", choices=list(DTYPES),
                   help="UNet/text-encoder dtype (auto: float16 on CUDA, float32 on CPU; the VAE always runs in "
                        "float32)")
    g.add_argument("--device", default="auto", help="torch device (default: cuda when available, else cpu)")
    g.add_argument("--attention-slicing", type=int, nargs="?", const=1024, default=None, metavar="ROWS",
                   help="compute attention in chunks of ROWS query rows (default off; flag alone: 1024)")
    g.add_argument("--cpu-offload", action="store_true",
                   help="keep models on the CPU and move each to the GPU only while it runs (small GPUs)")
    g.add_argument("--source-align", default="auto", choices=list(ALIGN_CHOICES),
                   help="source preparation before VAE encoding: on = face-aligned square crop, off = centre square "
                        "crop, stretch = whole image resized to the model size (the reference) (auto: the preset's; "
                        "madpad: on for real models, off for --tiny-random)")
    g.add_argument("--realign", default="auto", choices=list(REALIGN_CHOICES),
                   help="re-detect and align the morph like a probe (auto: off for --tiny-random, else on (madpad) "
                        "or required (reference); on: keep an unaligned morph when no face is found; required: fail "
                        "the item)")
    g.add_argument("--realign-size", type=_size_pair, default=(600, 800), metavar="WxH",
                   help="size of the re-aligned morph (default 600x800)")
    g.add_argument("--detector", default="dlib_hog", help="face detector for alignment (default dlib_hog)")
    g.add_argument("--landmarker", default="dlib68",
                   help="landmarker for alignment (default dlib68; none: the detector's own five points, e.g. with "
                        "--detector mtcnn)")
    g.add_argument("--tiny-random", nargs="?", const="tiny_sd15", default=None, metavar="CONFIG",
                   help="use tiny RANDOM-INIT models from a shipped config (tiny_sd15 or tiny_sdxl; default "
                        "tiny_sd15): for tests, CI and GPU smoke tests only -- the images are meaningless")
    g.add_argument("--preset", default="madpad", choices=list(PRESETS),
                   help="madpad (default) or reference: the authors' released pipeline step for step (schedule, "
                        "inversion identity scale, row-wise slerp, stretched sources, 112x112 ArcFace output); "
                        "options below left at auto take the preset's value")
    g.add_argument("--schedule", default="auto", choices=list(SCHEDULE_CHOICES),
                   help="paired: invert --inversion-steps, sample the matching steps (madpad); reference: invert "
                        "steps-1 (t=1..925 for 30), sample all steps from t=958")
    g.add_argument("--inversion-id-scale", default="auto", choices=list(INVERSION_ID_SCALES),
                   help="identity scale of the inversion passes: id_scale (= --id-scale, madpad) or weight_a "
                        "(= 1 - alpha, the reference)")
    g.add_argument("--slerp", default="auto", choices=list(SLERP_CHOICES),
                   help="latent slerp: flat (one angle for the whole latent, madpad) or rows (one angle per row "
                        "of the last dimension, the reference)")
    g.add_argument("--realign-to", default="auto", choices=list(REALIGN_TO),
                   help="re-alignment target: portrait (--realign-size, madpad) or arcface112 (the 112x112 "
                        "ArcFace crop, the reference)")
    g.add_argument("--faceid-strict", default="on", choices=["on", "off"],
                   help="on (default): every key of the FaceID checkpoint must fit the base UNet, else an error "
                        "naming the keys; off: load what fits and log each skipped key")


_ARG_TO_SETTING = {
    "base_model": "base_model", "ip_adapter": "ip_adapter", "face_encoder": "face_encoder", "arch": "arch",
    "variant": "variant", "steps": "steps", "guidance": "guidance", "inversion_steps": "inversion_steps",
    "prompt": "prompt", "negative_prompt": "negative_prompt", "inversion_conditioning": "inversion_conditioning",
    "stream": "stream", "identity_mixing": "identity_mixing", "id_scale": "id_scale", "lora_scale": "lora_scale",
    "size": "size", "dtype": "dtype", "device": "device", "attention_slicing": "attention_slicing",
    "cpu_offload": "cpu_offload", "source_align": "source_align", "realign": "realign",
    "realign_size": "realign_size", "detector": "detector", "landmarker": "landmarker", "tiny_random": "tiny_random",
    "preset": "preset", "schedule": "schedule", "inversion_id_scale": "inversion_id_scale", "slerp": "slerp",
    "realign_to": "realign_to", "faceid_strict": "faceid_strict",
}


def settings_from_args(args) -> dict[str, Any]:
    out = {setting: getattr(args, name) for name, setting in _ARG_TO_SETTING.items() if hasattr(args, name)}
    if isinstance(out.get("faceid_strict"), str):
        out["faceid_strict"] = out["faceid_strict"] == "on"
    return out


__all__ = ["add_arguments", "settings_from_args"]

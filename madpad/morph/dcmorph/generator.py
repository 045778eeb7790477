"""The ``dcmorph`` morph generator: settings, source preparation, the two streams, re-alignment.

``DCMorphGenerator.morph(image_a, image_b, *, alpha, seed)`` (alpha = weight of B, madpad's
convention) runs:

1. **sources**: each image is face-aligned to a square crop at the model resolution
   (``source_align``; on for real models, off for ``--tiny-random``), centre-cropped (``off``) or
   stretched whole to the model size (``stretch``, the released pipeline);
2. **identity stream** (``stream`` dual/identity): identity embeddings of both originals from
   the identity encoder -> FaceID projection -> identity tokens; every cross-attention layer
   mixes ``(1 - alpha) * attn(A) + alpha * attn(B)`` (``identity_mixing="decoupled"``) or
   attends to the tokens of the re-normalised averaged embedding (``"average"``, ablation);
3. **latent stream** (``stream`` dual/latent): VAE latents of both sources -> DDIM inversion
   without guidance (``inversion_conditioning``: ``null`` = negative prompt + null identity, as in
   the reference; ``own`` = prompt + the source's own identity) at identity scale ``--id-scale``
   or the weight of A (``inversion_id_scale``) over the schedule's inversion depth
   (``schedule``) -> ``slerp(zA, zB, alpha)`` of the flattened latent or row by row (``slerp``);
   ``stream="identity"`` starts from seeded Gaussian noise instead (ablation);
4. DDIM sampling with classifier-free guidance (conditional: prompt + dual identity;
   unconditional: negative prompt + null identity), VAE decoding (float32);
5. **re-alignment** (``realign``): the morph is re-detected and aligned like any probe
   (``madpad.face.analyze_face`` + ``align_portrait``), or onto the 112x112 ArcFace crop
   (``realign_to="arcface112"``).

``preset``: ``madpad`` (default) or ``reference`` (the authors' released pipeline step for step:
``schedule=reference``, ``inversion_id_scale=weight_a``, ``slerp=rows``, ``source_align=stretch``,
``realign_to=arcface112``, ``realign=required``). Each of those settings left at ``auto`` takes
the preset's value; an explicit value wins. See docs/dcmorph.md.

Inverted latents and identity embeddings are cached per source image (LRU) so a source used in
several pairs is inverted once.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from madpad.errors import FaceNotFoundError, UsageError
from madpad.io import array_sha256, as_rgb_uint8, optional_import
from madpad.morph.base import MorphGenerator

log = logging.getLogger("madpad.morph.dcmorph")

DEFAULT_PROMPT = "headshot, high quality, best quality"
DEFAULT_NEGATIVE_PROMPT = "monochrome, lowres, bad anatomy, worst quality, low quality, blurry"
STREAMS = ("dual", "identity", "latent")
IDENTITY_MIXING = ("decoupled", "average")
INVERSION_CONDITIONING = ("null", "own")
ALIGN_CHOICES = ("auto", "on", "off", "stretch")
REALIGN_CHOICES = ("auto", "on", "off", "required")
DTYPES = ("auto", "float16", "bfloat16", "float32")
PRESETS = ("madpad", "reference")
SCHEDULE_CHOICES = ("auto", "paired", "reference")
INVERSION_ID_SCALES = ("auto", "id_scale", "weight_a")
SLERP_CHOICES = ("auto", "flat", "rows")
REALIGN_TO = ("auto", "portrait", "arcface112")

#: What each preset puts in the settings left at "auto" (``real``/``tiny``: real models / --tiny-random).
PRESET_VALUES = {
    "madpad": {"schedule": "paired", "inversion_id_scale": "id_scale", "slerp": "flat",
               "source_align": {"real": "on", "tiny": "off"}, "realign": {"real": "on", "tiny": "off"},
               "realign_to": "portrait"},
    "reference": {"schedule": "reference", "inversion_id_scale": "weight_a", "slerp": "rows",
                  "source_align": {"real": "stretch", "tiny": "stretch"},
                  "realign": {"real": "required", "tiny": "off"},
                  "realign_to": "arcface112"},
}


@dataclass(frozen=True)
class DCMorphSettings:
    """Every option of the dcmorph generator (reference defaults). See docs/dcmorph.md."""

    base_model: str | None = None          # hub id, diffusers folder or .safetensors file (SD1.5/SDXL class)
    ip_adapter: str | None = None          # IP-Adapter FaceID checkpoint (.bin / .safetensors)
    face_encoder: str | None = None        # NAME[:key=value,...]; required for real models (512-D ArcFace)
    tiny_random: str | None = None         # shipped tiny config name (tiny_sd15 / tiny_sdxl): meaningless images
    arch: str = "auto"                     # sd15 | sdxl | auto
    steps: int = 30
    guidance: float = 2.0
    inversion_steps: int | None = None     # inversion depth; None = steps
    prompt: str = DEFAULT_PROMPT
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    inversion_conditioning: str = "null"   # null | own
    stream: str = "dual"                   # dual | identity | latent
    identity_mixing: str = "decoupled"     # decoupled | average
    id_scale: float = 1.0                  # IP-Adapter scale of the identity attention
    lora_scale: float = 1.0                # scale of the FaceID LoRA fused into the UNet
    size: int | None = None                # output size; None = the base model's default
    dtype: str = "auto"                    # auto: float16 on CUDA (VAE float32), float32 on CPU
    device: str = "auto"                   # auto: cuda when available
    attention_slicing: int | None = None   # query rows per attention chunk; None = off
    cpu_offload: bool = False
    source_align: str = "auto"             # auto: on for real models, off for tiny_random
    realign: str = "auto"                  # auto: on for real models, off for tiny_random
    realign_size: tuple = (600, 800)       # (W, H) of the re-aligned output (align_portrait default)
    detector: str = "dlib_hog"             # face detector for source alignment and re-alignment
    landmarker: str = "dlib68"
    cache_size: int = 32                   # inverted latents / embeddings kept per generator
    variant: str | None = None             # e.g. fp16 weights variant of the base model
    preset: str = "madpad"                 # madpad | reference (the authors' released pipeline)
    schedule: str = "auto"                 # paired | reference (invert steps-1, sample all steps)
    inversion_id_scale: str = "auto"       # id_scale (= --id-scale) | weight_a (= 1 - alpha, the reference)
    slerp: str = "auto"                    # flat (one angle) | rows (one angle per latent row, the reference)
    realign_to: str = "auto"               # portrait (align_portrait, realign_size) | arcface112
    faceid_strict: bool = True             # every FaceID checkpoint key consumed, or an error naming it

    def resolved(self) -> dict[str, str]:
        """The concrete value of every preset-controlled setting (``auto`` replaced by the preset's)."""
        if self.preset not in PRESETS:
            raise UsageError(f"dcmorph preset must be one of {list(PRESETS)}; got {self.preset!r}")
        table = PRESET_VALUES[self.preset]
        kind = "tiny" if self.tiny_random else "real"
        out = {}
        for name in ("schedule", "inversion_id_scale", "slerp", "source_align", "realign", "realign_to"):
            value = getattr(self, name)
            if value == "auto":
                value = table[name][kind] if isinstance(table[name], dict) else table[name]
            out[name] = value
        return out

    def validate(self) -> "DCMorphSettings":
        def choice(name, value, options):
            if value not in options:
                raise UsageError(f"dcmorph {name} must be one of {list(options)}; got {value!r}")

        choice("stream", self.stream, STREAMS)
        choice("identity_mixing", self.identity_mixing, IDENTITY_MIXING)
        choice("inversion_conditioning", self.inversion_conditioning, INVERSION_CONDITIONING)
        choice("source_align", self.source_align, ALIGN_CHOICES)
        choice("realign", self.realign, REALIGN_CHOICES)
        choice("dtype", self.dtype, DTYPES)
        choice("arch", self.arch, ("auto", "sd15", "sdxl"))
        choice("preset", self.preset, PRESETS)
        choice("schedule", self.schedule, SCHEDULE_CHOICES)
        choice("inversion_id_scale", self.inversion_id_scale, INVERSION_ID_SCALES)
        choice("slerp", self.slerp, SLERP_CHOICES)
        choice("realign_to", self.realign_to, REALIGN_TO)
        if int(self.steps) < 1:
            raise UsageError(f"dcmorph steps must be >= 1; got {self.steps}")
        if self.inversion_steps is not None and not 1 <= int(self.inversion_steps) <= int(self.steps):
            raise UsageError(f"dcmorph inversion_steps must be in 1..steps ({self.steps}); got {self.inversion_steps}")
        if self.resolved()["schedule"] == "reference" and self.inversion_steps is not None:
            raise UsageError(f"dcmorph inversion_steps={self.inversion_steps} contradicts the reference schedule, "
                             f"which inverts steps - 1 = {int(self.steps) - 1} steps and samples all {self.steps}; "
                             f"leave it unset or use --schedule paired")
        if float(self.guidance) < 0:
            raise UsageError(f"dcmorph guidance must be >= 0; got {self.guidance}")
        if self.size is not None and (int(self.size) < 8 or int(self.size) % 8):
            raise UsageError(f"dcmorph size must be a positive multiple of 8; got {self.size}")
        if self.attention_slicing is not None and int(self.attention_slicing) < 1:
            raise UsageError(f"dcmorph attention_slicing must be >= 1 query rows; got {self.attention_slicing}")
        if self.tiny_random is None:
            if not self.base_model:
                raise UsageError("dcmorph needs --base-model (hub id, diffusers folder or .safetensors file), "
                                 "or --tiny-random for the tiny random-init test models")
            if self.stream != "latent" and not self.ip_adapter:
                raise UsageError("dcmorph needs --ip-adapter FILE (IP-Adapter FaceID checkpoint, e.g. "
                                 "ip-adapter-faceid_sdxl.bin) unless --stream latent")
            if self.stream != "latent" and not self.face_encoder:
                raise UsageError("dcmorph needs --face-encoder (e.g. arcface_onnx:model_path=FILE.onnx, 512-D) "
                                 "unless --stream latent")
        if int(self.cache_size) < 0:
            raise UsageError(f"dcmorph cache_size must be >= 0; got {self.cache_size}")
        return self


def make_settings(**params: Any) -> DCMorphSettings:
    names = [f.name for f in dataclasses.fields(DCMorphSettings)]
    unknown = [k for k in params if k not in names]
    if unknown:
        hints = {k: difflib.get_close_matches(k, names, n=1) for k in unknown}
        msg = ", ".join(f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in hints.items())
        raise UsageError(f"unknown dcmorph option(s) {msg}; known: {names}")
    if "realign_size" in params and params["realign_size"] is not None:
        params["realign_size"] = tuple(int(v) for v in params["realign_size"])
    return DCMorphSettings(**params).validate()


class _LRU:
    def __init__(self, size: int):
        self.size = int(size)
        self.data: OrderedDict = OrderedDict()

    def get(self, key):
        if key in self.data:
            self.data.move_to_end(key)
            return self.data[key]
        return None

    def put(self, key, value):
        if self.size <= 0:
            return
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.size:
            self.data.popitem(last=False)


@dataclass
class _Prepared:
    image: np.ndarray
    key: str
    aligned: bool
    resize: str = "crop"


@dataclass
class DCMorphGenerator(MorphGenerator):
    """Builds the pipeline once; ``morph`` makes one morph. ``last_info`` describes the last call."""

    settings: DCMorphSettings
    pipeline: Any = None
    last_info: dict = field(default_factory=dict)

    def __post_init__(self):
        s = self.settings
        torch = optional_import("torch", extra="torch", purpose="dcmorph")
        self._torch = torch
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if s.device == "auto" else s.device)
        if s.dtype == "auto":
            self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        else:
            self.dtype = getattr(torch, s.dtype)
        from .identity import check_identity_dim, resolve_identity_encoder
        from .pipeline import DCMorphPipeline

        needs_identity = s.stream != "latent"
        encoder = None
        if needs_identity:
            spec = s.face_encoder or ("dummy:dim=512" if s.tiny_random else None)
            encoder = resolve_identity_encoder(spec)
        if self.pipeline is None:
            if s.tiny_random:
                self.pipeline = DCMorphPipeline.from_tiny_config(s.tiny_random, face_encoder=encoder)
            else:
                self.pipeline = DCMorphPipeline.from_pretrained(
                    s.base_model, ip_adapter=s.ip_adapter if needs_identity else None, face_encoder=encoder,
                    arch=s.arch, torch_dtype=self.dtype, lora_scale=s.lora_scale, variant=s.variant,
                    faceid_strict=s.faceid_strict)
        pipe = self.pipeline
        self.encoder = encoder if encoder is not None else pipe.face_encoder
        if needs_identity:
            if pipe.image_proj is None:
                raise UsageError("the identity stream needs an IP-Adapter FaceID projection (--ip-adapter)")
            check_identity_dim(self.encoder, pipe.identity_dim)
        if s.cpu_offload:
            pipe.enable_model_cpu_offload(self.device)
        pipe.to(device=self.device, dtype=self.dtype)
        if s.attention_slicing:
            pipe.enable_attention_slicing(int(s.attention_slicing))
        self.size = int(s.size or pipe.default_size)
        if self.size % pipe.vae_scale_factor:
            raise UsageError(f"dcmorph size {self.size} must be a multiple of the VAE factor {pipe.vae_scale_factor}")
        from .pipeline import schedule_depths

        r = s.resolved()
        self.resolved = r
        self.source_align = r["source_align"] == "on"
        self.source_resize = "stretch" if r["source_align"] == "stretch" else "crop"
        self.realign = r["realign"]
        self.realign_to = r["realign_to"]
        self.schedule = r["schedule"]
        self.slerp_mode = r["slerp"]
        self.inversion_id_scale = r["inversion_id_scale"]
        self.depth, self.sampling_depth = schedule_depths(self.schedule, s.steps, s.inversion_steps)
        self._latents = _LRU(s.cache_size)
        self._embeddings = _LRU(s.cache_size)
        self._text: dict[str, Any] = {}
        self._null_tokens = None

    # ------------------------------------------------------------------ metadata
    def params(self) -> dict:
        s = self.settings
        d = dataclasses.asdict(s)
        d["realign_size"] = list(s.realign_size)
        dtypes = self.pipeline.component_dtypes()
        d.update(self.resolved)
        d.update({
            "size": self.size, "inversion_steps": self.depth, "sampling_steps": self.sampling_depth,
            "dtype": str(self.dtype).replace("torch.", ""),
            "unet_dtype": dtypes.get("unet"), "vae_dtype": dtypes.get("vae"), "device": self.device.type,
            "arch": self.pipeline.arch, "alpha_convention": "weight of b",
        })
        if s.tiny_random:
            d["note"] = "tiny random-init models: the images are meaningless (code-path check only)"
        d.pop("cache_size", None)
        if s.stream == "latent":
            d["face_encoder"] = None
        elif s.face_encoder is None and s.tiny_random:
            d["face_encoder"] = "dummy:dim=512"
        return d

    # ------------------------------------------------------------------ helpers
    def _text_cond(self, text: str):
        if text not in self._text:
            self._text[text] = self.pipeline.encode_prompt(text)
        return self._text[text]

    def _null(self):
        if self._null_tokens is None:
            self._null_tokens = self.pipeline.project_identity(np.zeros(self.pipeline.identity_dim, np.float32))
        return self._null_tokens

    def _prepare(self, image: np.ndarray, role: str) -> _Prepared:
        if not self.source_align:
            return _Prepared(image, array_sha256(image), False, self.source_resize)
        face = optional_import("madpad.face", extra="face", purpose="aligning dcmorph sources")
        analysis = face.analyze_face(image, detector=self.settings.detector, landmarker=self._landmarker())
        if analysis.status != "ok":
            raise FaceNotFoundError(f"source {role}: {analysis.status}: {analysis.error} (source alignment; "
                                    f"use --source-align off to feed the whole image)")
        lm = analysis.landmarks if analysis.landmarks is not None else analysis.landmarks5
        aligned, _ = face.align_portrait(image, lm, size=(self.size, self.size), eye_y=0.42, eye_dist=0.28)
        return _Prepared(aligned, array_sha256(aligned), True)

    def _landmarker(self):
        """The landmarker for both alignments; ``none``/``null`` keeps the detector's own five points."""
        lm = self.settings.landmarker
        return None if lm is None or str(lm).strip().lower() in ("", "none", "null") else lm

    def _embedding(self, image: np.ndarray, key: str, role: str) -> np.ndarray:
        from .identity import embed_one

        e = self._embeddings.get(key)
        if e is None:
            e = embed_one(self.encoder, image, expected_dim=self.pipeline.identity_dim, role=role)
            self._embeddings.put(key, e)
        return e

    def _single(self, tokens, scale: float | None = None):
        from .attention import IdentityCondition

        scale = float(self.settings.id_scale) if scale is None else float(scale)
        return IdentityCondition(tokens=(tokens,), weights=(1.0,), scale=scale)

    def inversion_scale(self, alpha: float) -> float:
        """Identity scale of the inversion passes: ``--id-scale`` (madpad), or the weight of A,
        ``1 - alpha`` (the released pipeline sets the adapter scale to its alpha, the weight of A)."""
        if self.inversion_id_scale == "weight_a":
            return 1.0 - float(alpha)
        return float(self.settings.id_scale)

    def _inverted(self, src: _Prepared, own_tokens, emb_key: str | None, alpha: float = 0.5):
        s = self.settings
        inv_scale = self.inversion_scale(alpha)
        key = (src.key, src.resize, s.inversion_conditioning, emb_key if s.inversion_conditioning == "own" else None,
               s.stream != "latent", self.depth, s.steps, self.size, inv_scale)
        z = self._latents.get(key)
        if z is not None:
            return z, True
        if s.inversion_conditioning == "null":
            text = self._text_cond(s.negative_prompt)
            identity = self._single(self._null(), inv_scale) if s.stream != "latent" else None
        else:
            text = self._text_cond(s.prompt)
            identity = self._single(own_tokens, inv_scale) if s.stream != "latent" else None
        lat = self.pipeline.encode_image(src.image, self.size, resize=src.resize)
        z = self.pipeline.invert(lat, steps=s.steps, depth=self.depth, text=text, identity=identity, size=self.size)
        self._latents.put(key, z)
        return z, False

    # ------------------------------------------------------------------ the morph
    def morph(self, image_a, image_b, *, alpha: float = 0.5, seed: int = 0) -> np.ndarray:
        """Morph of A and B (alpha = weight of B) as RGB uint8. Deterministic for a given seed."""
        from .attention import IdentityCondition, morph_condition
        from .slerp import mix_latents

        torch = self._torch
        s = self.settings
        alpha = float(alpha)
        if not 0.0 <= alpha <= 1.0:
            raise UsageError(f"alpha must be in [0, 1]; got {alpha}")
        t0 = time.perf_counter()
        self.last_info = {}
        a = as_rgb_uint8(image_a, name="image_a")
        b = as_rgb_uint8(image_b, name="image_b")
        info: dict[str, Any] = {"stream": s.stream}
        src_a, src_b = self._prepare(a, "a"), self._prepare(b, "b")
        info["source_align"] = "on" if self.source_align else ("stretch" if self.source_resize == "stretch" else "off")

        tok_a = tok_b = None
        cond_id = uncond_id = None
        ka = kb = None
        if s.stream != "latent":
            ka, kb = array_sha256(a), array_sha256(b)
            ea, eb = self._embedding(a, ka, "a"), self._embedding(b, kb, "b")
            info["identity_cosine_ab"] = float(np.dot(ea, eb))
            null = self._null()
            if s.identity_mixing == "decoupled":
                tok_a, tok_b = self.pipeline.project_identity(ea), self.pipeline.project_identity(eb)
                cond_id = morph_condition(tok_a, tok_b, alpha, scale=s.id_scale)
                uncond_id = morph_condition(null, null, alpha, scale=s.id_scale)
            else:
                mix = (1.0 - alpha) * ea + alpha * eb
                n = float(np.linalg.norm(mix))
                if n < 1e-6:
                    raise FaceNotFoundError("the averaged identity embedding is zero (opposite embeddings)")
                tok = self.pipeline.project_identity((mix / n).astype(np.float32))
                cond_id = IdentityCondition((tok,), (1.0,), float(s.id_scale))
                uncond_id = IdentityCondition((null,), (1.0,), float(s.id_scale))
                tok_a = self.pipeline.project_identity(ea) if s.inversion_conditioning == "own" else None
                tok_b = self.pipeline.project_identity(eb) if s.inversion_conditioning == "own" else None

        lat_h = self.size // self.pipeline.vae_scale_factor
        if s.stream == "identity":
            gen = torch.Generator(device="cpu").manual_seed(int(seed))
            channels = self.pipeline.unet.config.in_channels
            z = torch.randn((1, channels, lat_h, lat_h), generator=gen, dtype=torch.float32).to(self.pipeline.device)
            z = z * float(self.pipeline.scheduler.init_noise_sigma)
            depth = int(s.steps)
            info["inverted_from_cache"] = None
        else:
            za, hit_a = self._inverted(src_a, tok_a, ka, alpha)
            zb, hit_b = self._inverted(src_b, tok_b, kb, alpha)
            z = mix_latents(za, zb, alpha, mode=self.slerp_mode)
            depth = self.sampling_depth
            info["inverted_from_cache"] = [hit_a, hit_b]
            info["inversion_id_scale"] = self.inversion_scale(alpha) if s.stream != "latent" else None
        out = self.pipeline.sample(z, steps=s.steps, depth=depth, cond=self._text_cond(s.prompt),
                                   cond_identity=cond_id, guidance=s.guidance,
                                   uncond=self._text_cond(s.negative_prompt),
                                   uncond_identity=uncond_id, size=self.size)
        if not bool(torch.isfinite(out).all()):
            raise FaceNotFoundError("the sampled latents contain NaN/inf (try --dtype float32 or bfloat16)")
        img = self.pipeline.decode_latents(out)
        img = self._realign(img, info)
        info["seconds"] = round(time.perf_counter() - t0, 3)
        self.last_info = info
        return img

    def _realign(self, img: np.ndarray, info: dict) -> np.ndarray:
        if self.realign == "off":
            info["realign"] = "off"
            return img
        face = optional_import("madpad.face", extra="face", purpose="re-aligning dcmorph outputs")
        analysis = face.analyze_face(img, detector=self.settings.detector, landmarker=self._landmarker())
        if analysis.status != "ok":
            if self.realign == "required":
                raise FaceNotFoundError(f"no face found in the generated morph ({analysis.status}: {analysis.error})")
            log.warning("dcmorph: no face found in the generated morph (%s); kept unaligned", analysis.status)
            info["realign"] = f"not aligned: {analysis.status}"
            return img
        if self.realign_to == "arcface112":
            lm5 = analysis.landmarks5 if analysis.landmarks5 is not None else analysis.landmarks
            aligned = face.align_arcface(img, lm5, size=112)
            info["realign"] = "aligned (arcface112)"
            return aligned
        lm = analysis.landmarks if analysis.landmarks is not None else analysis.landmarks5
        aligned, _ = face.align_portrait(img, lm, size=tuple(self.settings.realign_size))
        info["realign"] = "aligned"
        return aligned


def make_dcmorph(**params: Any) -> DCMorphGenerator:
    """A DCMorph generator from keyword options (:class:`DCMorphSettings`); the registered morph method
    ``dcmorph`` is :class:`madpad.morph.dcmorph.method.DCMorph`, built the same way."""
    pipeline = params.pop("pipeline", None)
    return DCMorphGenerator(make_settings(**params), pipeline=pipeline)


__all__ = ["DCMorphSettings", "DCMorphGenerator", "make_dcmorph", "make_settings", "DEFAULT_PROMPT",
           "DEFAULT_NEGATIVE_PROMPT", "STREAMS", "IDENTITY_MIXING", "INVERSION_CONDITIONING", "PRESETS",
           "PRESET_VALUES", "SCHEDULE_CHOICES", "INVERSION_ID_SCALES", "SLERP_CHOICES", "REALIGN_TO"]

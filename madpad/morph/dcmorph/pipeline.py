"""DCMorph-style pipeline: separately loadable components, DDIM inversion, dual-identity sampling.

:class:`DCMorphPipeline` holds diffusers components (UNet, VAE, one or two CLIP text encoders
with their tokenizers, ``DDIMScheduler`` and ``DDIMInverseScheduler``), the FaceID identity
projection and an optional identity encoder. Build it with

* :meth:`DCMorphPipeline.from_pretrained` -- a Stable Diffusion 1.5-class or SDXL-class base
  (hub id or local folder via ``StableDiffusionPipeline``/``StableDiffusionXLPipeline.from_pretrained``,
  or a single ``.safetensors`` file via ``from_single_file``) plus an IP-Adapter FaceID checkpoint;
* :meth:`DCMorphPipeline.from_components` -- explicit objects (tests build tiny random-init ones);
* :meth:`DCMorphPipeline.from_tiny_config` -- the shipped tiny configs (meaningless images).

The denoising loops are ours (not a diffusers ``__call__``) because the identity stream needs a
per-call :class:`~madpad.morph.dcmorph.attention.IdentityCondition` and the latent stream needs
inversion. Latents stay float32 between steps; the UNet runs in the pipeline dtype (fp16 on CUDA
by default) and the VAE always in float32 (the SDXL VAE produces NaNs in fp16).

Schedules: ``invert(..., steps=S, depth=k)`` runs the first ``k`` transitions of the S-step
inverse DDIM grid (``DDIMInverseScheduler``: from the clean level up to timestep ``t_k``);
``sample(..., steps=S, depth=k)`` runs the last ``k`` steps of the S-step DDIM grid, starting at
that same timestep, so inversion and sampling pair up step by step (k = S by default). The
authors' released pipeline instead inverts ``S - 1`` steps (t = 1 ... 925 for S = 30) and then
samples all ``S`` steps from t = 958: ``invert(depth=S - 1)`` followed by ``sample(depth=S)``
(:data:`SCHEDULES`, chosen by the generator).
"""

from __future__ import annotations

import contextlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from madpad.errors import UsageError
from madpad.io import optional_import

from .attention import IdentityCondition, install_identity_processors, set_slice_size

# The reference DDIM settings (scaled_linear betas 0.00085..0.012, no clipping, offset 1).
REFERENCE_SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "timestep_spacing": "leading",
}

CONFIG_DIR_PACKAGE = ("configs", "dcmorph")

#: ``paired``: invert k steps, sample the matching last k (madpad); ``reference``: invert S - 1
#: steps, then sample all S steps (the authors' released pipeline).
SCHEDULES = ("paired", "reference")
#: Source resizing before VAE encoding: ``crop`` = centre square crop, ``stretch`` = whole image
#: resized to the square model size (aspect ratio not kept; the released pipeline).
RESIZE_MODES = ("crop", "stretch")


def schedule_depths(schedule: str, steps: int, inversion_steps: int | None = None) -> tuple[int, int]:
    """(inversion depth, sampling depth) on the ``steps``-step grid for a schedule (see :data:`SCHEDULES`)."""
    steps = int(steps)
    if schedule == "paired":
        d = steps if inversion_steps is None else int(inversion_steps)
        return d, d
    if schedule == "reference":
        if inversion_steps is not None and int(inversion_steps) != steps - 1:
            raise UsageError(f"the reference schedule inverts steps - 1 = {steps - 1} steps; inversion_steps="
                             f"{inversion_steps} contradicts it (leave it unset)")
        return steps - 1, steps
    raise UsageError(f"schedule must be one of {list(SCHEDULES)}; got {schedule!r}")


def tiny_config_path(name_or_path: str | Path) -> Path:
    """A shipped tiny config by name (``tiny_sd15``, ``tiny_sdxl``) or a JSON file path."""
    p = Path(name_or_path)
    if p.suffix == ".json" and p.is_file():
        return p
    import madpad

    shipped = Path(madpad.__file__).parent.joinpath(*CONFIG_DIR_PACKAGE)
    cand = shipped / f"{name_or_path}.json"
    if cand.is_file():
        return cand
    names = sorted(x.stem for x in shipped.glob("*.json"))
    raise UsageError(f"tiny dcmorph config {str(name_or_path)!r} not found; shipped: {names} (or give a .json path)")


def _torch():
    return optional_import("torch", extra="torch", purpose="DCMorph")


def _diffusers():
    return optional_import("diffusers", extra="diffusion", purpose="DCMorph")


def _transformers():
    return optional_import("transformers", extra="diffusion", purpose="DCMorph text encoders")


def make_schedulers(base_config: dict | None = None):
    """(DDIMScheduler, DDIMInverseScheduler) with the reference settings over ``base_config``."""
    import inspect

    diffusers = _diffusers()
    cfg = dict(base_config or {})
    cfg.update(REFERENCE_SCHEDULER)
    out = []
    for cls in (diffusers.DDIMScheduler, diffusers.DDIMInverseScheduler):
        accepted = set(inspect.signature(cls.__init__).parameters)
        out.append(cls.from_config({k: v for k, v in cfg.items() if k in accepted}))
    return out[0], out[1]


@dataclass
class TextConditioning:
    """Text embeddings for one branch: (1, L, C) and, for SDXL, the pooled (1, P) embedding."""

    embeds: Any
    pooled: Any = None


class DCMorphPipeline:
    """Components + the two streams' building blocks. See the module docstring."""

    _optional_components = ("text_encoder_2", "tokenizer_2", "image_proj", "face_encoder")

    def __init__(self, *, unet, vae, text_encoder, tokenizer, scheduler, inverse_scheduler, image_proj=None,
                 text_encoder_2=None, tokenizer_2=None, face_encoder=None, arch: str | None = None,
                 force_zeros_for_empty_prompt: bool = True):
        self.unet = unet
        self.vae = vae
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.text_encoder_2 = text_encoder_2
        self.tokenizer_2 = tokenizer_2
        self.scheduler = scheduler
        self.inverse_scheduler = inverse_scheduler
        self.image_proj = image_proj
        self.face_encoder = face_encoder
        if arch is None:
            arch = "sdxl" if text_encoder_2 is not None else "sd15"
        if arch not in ("sd15", "sdxl"):
            raise UsageError(f"arch must be 'sd15' or 'sdxl'; got {arch!r}")
        if arch == "sdxl" and (text_encoder_2 is None or tokenizer_2 is None):
            raise UsageError("an SDXL-class pipeline needs text_encoder_2 and tokenizer_2")
        self.arch = arch
        self.force_zeros_for_empty_prompt = bool(force_zeros_for_empty_prompt)
        self.device = _torch().device("cpu")
        self.dtype = _torch().float32
        self._offload = False
        self._active = None
        self.source: dict[str, Any] = {}
        if not any(hasattr(p, "has_identity_weights") for p in unet.attn_processors.values()):
            install_identity_processors(unet)

    # ----------------------------------------------------------------- components
    @property
    def components(self) -> dict[str, Any]:
        return {
            "unet": self.unet, "vae": self.vae, "text_encoder": self.text_encoder, "tokenizer": self.tokenizer,
            "text_encoder_2": self.text_encoder_2, "tokenizer_2": self.tokenizer_2, "scheduler": self.scheduler,
            "inverse_scheduler": self.inverse_scheduler, "image_proj": self.image_proj,
            "face_encoder": self.face_encoder,
        }

    @classmethod
    def from_components(cls, *, unet, vae, text_encoder, tokenizer, scheduler=None, inverse_scheduler=None,
                        image_proj=None, text_encoder_2=None, tokenizer_2=None, face_encoder=None,
                        arch: str | None = None) -> "DCMorphPipeline":
        """Assemble from objects; missing schedulers get the reference DDIM settings."""
        if scheduler is None or inverse_scheduler is None:
            base = dict(scheduler.config) if scheduler is not None else None
            sch, inv = make_schedulers(base)
            scheduler = scheduler or sch
            inverse_scheduler = inverse_scheduler or inv
        return cls(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
                   inverse_scheduler=inverse_scheduler, image_proj=image_proj, text_encoder_2=text_encoder_2,
                   tokenizer_2=tokenizer_2, face_encoder=face_encoder, arch=arch)

    @classmethod
    def from_tiny_config(cls, name_or_path: str | Path = "tiny_sd15", *, face_encoder=None,
                         seed: int | None = None) -> "DCMorphPipeline":
        """Tiny random-init components from a shipped config (tests/CI/smoke: meaningless images)."""
        torch = _torch()
        diffusers = _diffusers()
        transformers = _transformers()
        from diffusers.models.embeddings import IPAdapterFaceIDImageProjection

        from .tokenizer import HashWordTokenizer

        path = tiny_config_path(name_or_path)
        cfg = json.loads(path.read_text(encoding="utf-8"))
        init_seed = int(cfg.get("init_seed", 0) if seed is None else seed)
        torch.manual_seed(init_seed)
        unet = diffusers.UNet2DConditionModel(**cfg["unet"])
        torch.manual_seed(init_seed + 1)
        vae = diffusers.AutoencoderKL(**cfg["vae"])
        torch.manual_seed(init_seed + 2)
        text_encoder = transformers.CLIPTextModel(transformers.CLIPTextConfig(**cfg["text_encoder"]))
        tokenizer = HashWordTokenizer(**cfg["tokenizer"])
        text_encoder_2 = tokenizer_2 = None
        if cfg.get("arch") == "sdxl":
            torch.manual_seed(init_seed + 3)
            text_encoder_2 = transformers.CLIPTextModelWithProjection(
                transformers.CLIPTextConfig(**cfg["text_encoder_2"]))
            tokenizer_2 = HashWordTokenizer(**cfg["tokenizer_2"])
        torch.manual_seed(init_seed + 4)
        ip = cfg["image_proj"]
        image_proj = IPAdapterFaceIDImageProjection(image_embed_dim=ip["image_embed_dim"],
                                                    cross_attention_dim=cfg["unet"]["cross_attention_dim"],
                                                    mult=ip["mult"], num_tokens=ip["num_tokens"])
        torch.manual_seed(init_seed + 5)
        install_identity_processors(unet)
        for m in (unet, vae, text_encoder, text_encoder_2, image_proj):
            if m is not None:
                m.eval()
        pipe = cls.from_components(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   image_proj=image_proj, text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2,
                                   face_encoder=face_encoder, arch=cfg.get("arch"))
        pipe.source = {"base_model": f"tiny-random:{path.stem}", "ip_adapter": "tiny-random", "init_seed": init_seed}
        return pipe

    @classmethod
    def from_pretrained(cls, base_model: str | Path, *, ip_adapter: str | Path | None, face_encoder=None,
                        arch: str = "auto", torch_dtype=None, lora_scale: float = 1.0, variant: str | None = None,
                        local_files_only: bool | None = None, faceid_strict: bool = True) -> "DCMorphPipeline":
        """Load a base model (hub id, diffusers folder, or single checkpoint file) + a FaceID checkpoint.

        ``arch``: ``sd15``, ``sdxl`` or ``auto`` (from the folder's ``model_index.json`` /
        the hub config, else from the checkpoint's UNet). ``ip_adapter`` None loads no identity
        weights (latent-stream-only use). The FaceID LoRA is fused once (``lora_scale``). Every key of
        the FaceID checkpoint must be consumed (``faceid_strict``, default True; see
        :func:`~madpad.morph.dcmorph.faceid.load_faceid`); ``self.source["faceid_keys"]`` records the account.
        """
        diffusers = _diffusers()
        torch = _torch()
        dtype = torch_dtype or torch.float32
        base = str(base_model)
        kw: dict[str, Any] = {"torch_dtype": dtype, "safety_checker": None}
        if variant:
            kw["variant"] = variant
        if local_files_only is not None:
            kw["local_files_only"] = bool(local_files_only)
        chosen = arch
        is_file = Path(base).is_file()
        if chosen == "auto":
            chosen = _detect_arch(base, is_file=is_file)
        pipe_cls = diffusers.StableDiffusionXLPipeline if chosen == "sdxl" else diffusers.StableDiffusionPipeline
        if chosen == "sdxl":
            kw.pop("safety_checker", None)
        try:
            with warnings.catch_warnings():  # diffusers >= 0.36 renames torch_dtype; older ones need it
                warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
                base_pipe = pipe_cls.from_single_file(base, **kw) if is_file else pipe_cls.from_pretrained(base, **kw)
        except (OSError, ValueError, EnvironmentError) as exc:
            raise UsageError(f"cannot load base model {base!r} as {pipe_cls.__name__}: {exc}") from None
        sch, inv = make_schedulers(dict(base_pipe.scheduler.config))
        unet = base_pipe.unet
        install_identity_processors(unet)
        image_proj = None
        info = {"base_model": base, "arch": chosen, "ip_adapter": None, "lora_layers_fused": 0}
        if ip_adapter is not None:
            from .faceid import build_faceid_projection, load_faceid, load_faceid_state_dict

            sd = load_faceid_state_dict(ip_adapter)
            image_proj = build_faceid_projection(sd["image_proj"], source=str(ip_adapter)).to(dtype=dtype)
            if image_proj.cross_attention_dim != unet.config.cross_attention_dim:
                raise UsageError(f"{ip_adapter}: FaceID projection makes {image_proj.cross_attention_dim}-D tokens but "
                                 f"the base UNet's cross-attention dim is {unet.config.cross_attention_dim} "
                                 f"(SD1.5 FaceID needs an SD1.5-class base, SDXL FaceID an SDXL-class base)")
            keys = load_faceid(unet, sd, lora_scale=lora_scale, strict=faceid_strict, source=str(ip_adapter))
            info["lora_layers_fused"] = keys["lora_layers_fused"]
            info["faceid_keys"] = {k: keys[k] for k in ("consumed", "missing", "unexpected", "mismatched",
                                                        "identity_layers", "lora_rank")}
            info["ip_adapter"] = str(ip_adapter)
        pipe = cls(unet=unet, vae=base_pipe.vae, text_encoder=base_pipe.text_encoder, tokenizer=base_pipe.tokenizer,
                   text_encoder_2=getattr(base_pipe, "text_encoder_2", None),
                   tokenizer_2=getattr(base_pipe, "tokenizer_2", None), scheduler=sch, inverse_scheduler=inv,
                   image_proj=image_proj, face_encoder=face_encoder, arch=chosen,
                   force_zeros_for_empty_prompt=bool(getattr(base_pipe.config, "force_zeros_for_empty_prompt", True)))
        pipe.dtype = dtype
        pipe.source = info
        return pipe

    # ----------------------------------------------------------------- placement
    def _modules(self):
        return [m for m in (self.unet, self.text_encoder, self.text_encoder_2, self.image_proj) if m is not None]

    def to(self, device=None, dtype=None) -> "DCMorphPipeline":
        """Move to ``device``; cast UNet/text encoders/projection to ``dtype``; the VAE stays float32."""
        torch = _torch()
        if device is not None:
            self.device = torch.device(device)
        if dtype is not None:
            self.dtype = dtype
        target = torch.device("cpu") if self._offload else self.device
        self._active = None
        for m in self._modules():
            _move(m, target, self.dtype)
        _move(self.vae, target, torch.float32)
        return self

    def component_dtypes(self) -> dict[str, str]:
        """The dtype of each component's parameters, read from the parameters themselves
        (``"mixed: float16, float32"`` when a module holds several)."""
        out = {}
        for name in ("unet", "vae", "text_encoder", "text_encoder_2", "image_proj"):
            module = getattr(self, name)
            if module is None:
                continue
            kinds = sorted({str(p.dtype).replace("torch.", "") for p in module.parameters()})
            out[name] = kinds[0] if len(kinds) == 1 else "mixed: " + ", ".join(kinds)
        return out

    def enable_model_cpu_offload(self, device="cuda") -> "DCMorphPipeline":
        """Keep components on the CPU and move each to ``device`` only while it runs."""
        self._offload = True
        return self.to(device=device)

    def enable_attention_slicing(self, slice_size: int | None = 1024) -> "DCMorphPipeline":
        """Compute attention in chunks of ``slice_size`` query rows (None turns it off)."""
        set_slice_size(self.unet, slice_size)
        return self

    @contextlib.contextmanager
    def _use(self, module):
        """Model CPU offload: the module that runs is on the device, the previous one goes back to the CPU
        (as diffusers' model offload: one whole model at a time, moved only when the next one is needed)."""
        if not self._offload or module is None:
            yield module
            return
        active = getattr(self, "_active", None)
        if active is not module:
            if active is not None:
                active.to("cpu")
                if self.device.type == "cuda":
                    _torch().cuda.empty_cache()
            module.to(self.device)
            self._active = module
        yield module

    # ----------------------------------------------------------------- sizes
    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def default_size(self) -> int:
        """The base model's native resolution (SD1.5: 512, SDXL: 1024, tiny: 64)."""
        s = self.unet.config.sample_size
        s = s[0] if isinstance(s, (list, tuple)) else s
        return int(s) * self.vae_scale_factor

    @property
    def identity_dim(self) -> int | None:
        if self.image_proj is None:
            return None
        return int(self.image_proj.ff.net[0].proj.in_features)

    # ----------------------------------------------------------------- text
    def _tokenize(self, tokenizer, texts: Sequence[str]):
        return tokenizer(list(texts), padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                         return_tensors="pt").input_ids

    def encode_prompt(self, text: str) -> TextConditioning:
        """Text embeddings of one prompt (SD1.5: last hidden state; SDXL: penultimate states of both
        encoders concatenated + pooled embedding of the second)."""
        torch = _torch()
        with torch.no_grad():
            if self.arch == "sd15":
                with self._use(self.text_encoder) as te:
                    ids = self._tokenize(self.tokenizer, [text]).to(self.device)
                    out = te(ids)
                    return TextConditioning(out.last_hidden_state.float().to(self.device))
            if text == "" and self.force_zeros_for_empty_prompt:
                full = self.encode_prompt_sdxl("")
                return TextConditioning(torch.zeros_like(full.embeds), torch.zeros_like(full.pooled))
            return self.encode_prompt_sdxl(text)

    def encode_prompt_sdxl(self, text: str) -> TextConditioning:
        torch = _torch()
        states, pooled = [], None
        for tok, enc in ((self.tokenizer, self.text_encoder), (self.tokenizer_2, self.text_encoder_2)):
            with self._use(enc) as te:
                ids = self._tokenize(tok, [text]).to(self.device)
                out = te(ids, output_hidden_states=True)
                states.append(out.hidden_states[-2].float().to(self.device))
                if hasattr(out, "text_embeds"):
                    pooled = out.text_embeds.float().to(self.device)
        if pooled is None:
            raise UsageError("SDXL text_encoder_2 must return text_embeds (CLIPTextModelWithProjection)")
        return TextConditioning(torch.cat(states, dim=-1), pooled)

    # ----------------------------------------------------------------- identity
    def project_identity(self, embeddings) -> Any:
        """(N, D) identity embeddings -> (N, tokens, cross_attention_dim) identity tokens."""
        torch = _torch()
        if self.image_proj is None:
            raise UsageError("this pipeline has no identity projection (load an IP-Adapter FaceID checkpoint)")
        x = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
        if x.ndim == 1:
            x = x[None]
        if x.shape[-1] != self.identity_dim:
            raise UsageError(f"identity embeddings are {x.shape[-1]}-D; the FaceID projection expects "
                             f"{self.identity_dim}-D")
        with torch.no_grad(), self._use(self.image_proj) as proj:
            tokens = proj(x.to(device=self.device, dtype=self.dtype))
        return tokens.to(self.device)

    # ----------------------------------------------------------------- images <-> latents
    def preprocess(self, image: np.ndarray, size: int, resize: str = "crop"):
        """RGB uint8 -> (1, 3, size, size) float32 in [-1, 1]: ``crop`` = centre square crop then
        bicubic resize; ``stretch`` = the whole image bicubic-resized to size x size (aspect ratio
        not kept, as the released pipeline does)."""
        from PIL import Image

        torch = _torch()
        if resize not in RESIZE_MODES:
            raise UsageError(f"resize must be one of {list(RESIZE_MODES)}; got {resize!r}")
        h, w = image.shape[:2]
        if resize == "stretch":
            crop = image
            if (h, w) != (size, size):
                crop = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((size, size), Image.BICUBIC))
            x = torch.from_numpy(np.array(crop, dtype=np.uint8, copy=True)).float().permute(2, 0, 1)[None]
            return x / 127.5 - 1.0
        s = min(h, w)
        y0, x0 = (h - s) // 2, (w - s) // 2
        crop = image[y0:y0 + s, x0:x0 + s]
        if s != size:
            crop = np.asarray(Image.fromarray(crop).resize((size, size), Image.BICUBIC))
        x = torch.from_numpy(np.array(crop, dtype=np.uint8, copy=True)).float().permute(2, 0, 1)[None] / 127.5 - 1.0
        return x

    def encode_image(self, image: np.ndarray, size: int | None = None, resize: str = "crop"):
        """VAE latent (posterior mean x scaling factor), float32 on the execution device (the VAE runs
        in float32). ``resize``: see :meth:`preprocess`."""
        torch = _torch()
        size = int(size or self.default_size)
        x = self.preprocess(image, size, resize)
        with torch.no_grad(), self._use(self.vae) as vae:
            lat = vae.encode(x.to(device=self.device, dtype=torch.float32)).latent_dist.mean
        return (lat * self.vae.config.scaling_factor).float().to(self.device)

    def decode_latents(self, latents) -> np.ndarray:
        """Latents -> RGB uint8 (H, W, 3) (first item)."""
        torch = _torch()
        with torch.no_grad(), self._use(self.vae) as vae:
            lat = latents.to(device=self.device, dtype=torch.float32) / self.vae.config.scaling_factor
            img = vae.decode(lat).sample
        img = ((img[0].float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return np.ascontiguousarray(img)

    # ----------------------------------------------------------------- denoiser
    def _added_cond(self, text: TextConditioning, batch: int, size: int):
        if self.arch != "sdxl":
            return None
        torch = _torch()
        ids = torch.tensor([[size, size, 0, 0, size, size]], dtype=torch.float32, device=self.device).repeat(batch, 1)
        return {"text_embeds": text.pooled.to(self.dtype), "time_ids": ids.to(self.dtype)}

    def predict_noise(self, latents, t, text: TextConditioning, identity: IdentityCondition | None, size: int):
        """The UNet's noise prediction (float32) for one batch of latents."""
        torch = _torch()
        with torch.no_grad(), self._use(self.unet) as unet:
            kwargs = {}
            added = self._added_cond(text, latents.shape[0], size)
            if added is not None:
                kwargs["added_cond_kwargs"] = added
            out = unet(latents.to(self.dtype), t, encoder_hidden_states=text.embeds.to(self.dtype),
                       cross_attention_kwargs={"identity": identity}, return_dict=False, **kwargs)[0]
        return out.float()

    def _check_depth(self, steps: int, depth: int | None, minimum: int = 1) -> int:
        steps = int(steps)
        if steps < 1:
            raise UsageError(f"steps must be >= 1; got {steps}")
        depth = steps if depth is None else int(depth)
        if not minimum <= depth <= steps:
            raise UsageError(f"inversion depth must be in {minimum}..{steps} (the number of steps); got {depth}")
        return depth

    def invert(self, latents, *, steps: int, depth: int | None = None, text: TextConditioning,
               identity: IdentityCondition | None, size: int, callback=None):
        """DDIM inversion without guidance: clean latent -> noise latent at the grid's ``depth``-th timestep.

        Step ``i`` evaluates the UNet at ``t_i`` (the inverse grid ``t_0 < t_1 < ...``) and moves the
        latent up to that level (``DDIMInverseScheduler.step``). ``depth`` 0 returns the latents unchanged.
        """
        depth = self._check_depth(steps, depth, minimum=0)
        self.inverse_scheduler.set_timesteps(int(steps))
        x = latents.float()
        for i, t in enumerate(self.inverse_scheduler.timesteps[:depth]):
            eps = self.predict_noise(x, t, text, identity, size)
            x = self.inverse_scheduler.step(eps, t, x, return_dict=False)[0]
            if callback is not None:
                callback(i, int(t), x)
        return x

    def sample(self, latents, *, steps: int, depth: int | None = None, cond: TextConditioning,
               cond_identity: IdentityCondition | None, guidance: float = 1.0, uncond: TextConditioning | None = None,
               uncond_identity: IdentityCondition | None = None, size: int, callback=None):
        """Deterministic DDIM sampling (eta 0) over the last ``depth`` steps of the ``steps``-step grid.

        ``guidance > 1`` uses classifier-free guidance ``eps_u + g (eps_c - eps_u)`` with the
        ``uncond`` text and ``uncond_identity`` in one batch of two.
        """
        torch = _torch()
        depth = self._check_depth(steps, depth)
        guidance = float(guidance)
        use_cfg = guidance > 1.0
        if use_cfg and uncond is None:
            raise UsageError("classifier-free guidance needs the unconditional (negative prompt) embeddings")
        self.scheduler.set_timesteps(int(steps))
        timesteps = self.scheduler.timesteps[int(steps) - depth:]
        if use_cfg:
            text = TextConditioning(torch.cat([uncond.embeds, cond.embeds]),
                                    None if cond.pooled is None else torch.cat([uncond.pooled, cond.pooled]))
            identity = _batch_identities(uncond_identity, cond_identity)
        else:
            text, identity = cond, cond_identity
        x = latents.float()
        for i, t in enumerate(timesteps):
            inp = torch.cat([x, x]) if use_cfg else x
            eps = self.predict_noise(inp, t, text, identity, size)
            if use_cfg:
                eps_u, eps_c = eps.chunk(2)
                eps = eps_u + guidance * (eps_c - eps_u)
            x = self.scheduler.step(eps, t, x, eta=0.0, return_dict=False)[0]
            if callback is not None:
                callback(i, int(t), x)
        return x


def _batch_identities(uncond: IdentityCondition | None, cond: IdentityCondition | None) -> IdentityCondition | None:
    """Stack the unconditional and conditional identity conditions into one batch of two."""
    torch = _torch()
    if uncond is None and cond is None:
        return None
    if uncond is None or cond is None:
        raise UsageError("both CFG branches must carry identity tokens, or neither")
    if len(uncond.tokens) != len(cond.tokens) or uncond.weights != cond.weights or uncond.scale != cond.scale:
        raise UsageError("CFG branches must share the identity slots, weights and scale")
    tokens = tuple(torch.cat([u, c]) for u, c in zip(uncond.tokens, cond.tokens))
    return IdentityCondition(tokens=tokens, weights=cond.weights, scale=cond.scale)


def _move(module, device, dtype) -> None:
    """``module.to`` only for what changes (diffusers warns on every dtype cast of a loaded model)."""
    p = next(module.parameters(), None)
    if p is None:
        return
    if p.dtype != dtype:
        module.to(dtype=dtype)
    if p.device != device and not (device.type == "cuda" and p.device.type == "cuda" and device.index is None):
        module.to(device=device)


def _detect_arch(base: str, *, is_file: bool) -> str:
    """'sd15' or 'sdxl' from model_index.json (folder or hub) or a single checkpoint's keys."""
    if is_file:
        if base.endswith(".safetensors"):
            st = optional_import("safetensors", extra="torch")
            with st.safe_open(base, framework="pt") as fh:
                keys = list(fh.keys())
            return "sdxl" if any(k.startswith("conditioner.embedders.1") for k in keys) else "sd15"
        raise UsageError(f"{base}: single-file base models must be .safetensors (or pass --arch sd15|sdxl)")
    index = Path(base) / "model_index.json"
    if index.is_file():
        name = json.loads(index.read_text(encoding="utf-8")).get("_class_name", "")
    else:
        diffusers = _diffusers()
        try:
            name = diffusers.DiffusionPipeline.load_config(base).get("_class_name", "")
        except Exception as exc:  # noqa: BLE001 - hub/network errors: say what to do
            raise UsageError(f"cannot read the model index of {base!r} ({exc}); pass --arch sd15 or sdxl, "
                             f"or a local diffusers folder") from None
    if "XL" in name:
        return "sdxl"
    if name.startswith("StableDiffusion"):
        return "sd15"
    raise UsageError(f"{base}: model class {name!r} is neither a Stable Diffusion 1.5-class nor an SDXL-class "
                     f"pipeline; dcmorph supports those two")


__all__ = ["DCMorphPipeline", "TextConditioning", "REFERENCE_SCHEDULER", "make_schedulers", "tiny_config_path",
           "SCHEDULES", "RESIZE_MODES", "schedule_depths"]

"""``preset="reference"`` against an independent step-by-step re-implementation of the authors' released loop.

The re-implementation below uses no madpad pipeline code: diffusers' own ``DDIMScheduler`` /
``DDIMInverseScheduler`` built from the released settings, diffusers' own IP-Adapter attention
processors (two adapters loaded with the same FaceID weights, scales ``[w_A, w_B]``), torchvision's
resize (the released preprocessing), text conditioning written out by hand, and a row-wise slerp
written here. It follows the released pipeline step for step:

* sources stretched whole to the model size (bicubic), VAE-encoded;
* DDIM inversion over ``steps - 1`` steps (timesteps t_1 ... t_{S-1} of the inverse grid; 1 ... 925 for
  30 steps) with the negative prompt and the null identity at adapter scale = the paper's alpha (the
  weight of A);
* row-wise slerp (normalised along the last dimension; |cos| > 0.9995 -> lerp);
* guided DDIM sampling over all ``steps`` steps (958 ... 1 for 30), conditional branch prompt +
  ``w_A attn(A) + w_B attn(B)``, unconditional branch negative prompt + the null identity at the same
  weights;
* VAE decoding.

Documented differences, applied to both sides: the VAE posterior mean instead of an unseeded sample,
float32 on the CPU. The madpad preset is checked at SD1.5 and SDXL layouts, at alpha 0.5 and 0.3.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
pytest.importorskip("torchvision")

from madpad.morph.dcmorph.faceid import export_faceid_state_dict  # noqa: E402  (weights only, to feed diffusers)
from madpad.morph.dcmorph.generator import make_dcmorph  # noqa: E402
from madpad.morph.dcmorph.identity import DummyIdentityEncoder  # noqa: E402
from madpad.morph.dcmorph.pipeline import tiny_config_path  # noqa: E402
from madpad.morph.dcmorph.testing import base_unet_state_dict, cached_tiny_pipeline  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

PROMPT = "headshot, high quality, best quality"
NEGATIVE = "monochrome, lowres, bad anatomy, worst quality, low quality, blurry"
STEPS, GUIDANCE, SIZE = 4, 2.0, 64


def _images():
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:96, 0:80]
    a = np.stack([(xx * 3) % 256, (yy * 2) % 256, (xx + yy) % 256], -1).astype(np.uint8)  # 96x80: not square
    b = rng.integers(0, 255, (70, 90, 3), dtype=np.uint8)
    return a, b


# --------------------------------------------------------------------------- the independent re-implementation
def _row_slerp(v0, v1, t, threshold=0.9995):
    n0, n1 = v0.norm(dim=-1, keepdim=True), v1.norm(dim=-1, keepdim=True)
    dot = ((v0 / n0) * (v1 / n1)).sum(-1, keepdim=True)
    lerp = dot.isnan() | (dot.abs() > threshold)
    theta = dot.clamp(-1, 1).arccos()
    slerped = torch.sin((1 - t) * theta) / torch.sin(theta) * v0 + torch.sin(t * theta) / torch.sin(theta) * v1
    return torch.where(lerp, torch.lerp(v0, v1, t), slerped)


class Reference:
    """The released loop, on diffusers components taken from a tiny madpad pipeline (weights only)."""

    def __init__(self, name):
        pipe = cached_tiny_pipeline(name)
        cfg = json.loads(tiny_config_path(name).read_text())
        self.xl = cfg.get("arch") == "sdxl"
        unet = diffusers.UNet2DConditionModel(**cfg["unet"]).eval()
        unet.load_state_dict(base_unet_state_dict(pipe.unet))
        faceid = export_faceid_state_dict(pipe.unet, pipe.image_proj)
        unet._load_ip_adapter_weights([faceid, faceid], low_cpu_mem_usage=False)  # diffusers' own IP-Adapter code
        self.unet = unet
        self.vae = copy.deepcopy(pipe.vae).float().eval()
        self.text = [(pipe.tokenizer, copy.deepcopy(pipe.text_encoder).float())]
        if self.xl:
            self.text.append((pipe.tokenizer_2, copy.deepcopy(pipe.text_encoder_2).float()))
        self.sched = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                             beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
                                             steps_offset=1)
        self.encoder = DummyIdentityEncoder(dim=512)  # the identity encoder the generator uses for tiny models

    def encode_text(self, text):
        states, pooled = [], None
        for tok, enc in self.text:
            ids = tok([text], padding="max_length", max_length=tok.model_max_length, truncation=True,
                      return_tensors="pt").input_ids
            out = enc(ids, output_hidden_states=True)
            states.append(out.hidden_states[-2] if self.xl else out.last_hidden_state)
            pooled = out[0] if self.xl else None
        return torch.cat(states, dim=-1), pooled

    def unet_call(self, x, t, text, pooled, embeds, scales):
        for proc in self.unet.attn_processors.values():
            if hasattr(proc, "to_k_ip"):
                proc.scale = list(scales)
        added = {"image_embeds": embeds}
        if self.xl:
            added["text_embeds"] = pooled
            ids = torch.tensor([[SIZE, SIZE, 0, 0, SIZE, SIZE]], dtype=torch.float32)
            added["time_ids"] = ids.repeat(x.shape[0], 1)
        return self.unet(x, t, encoder_hidden_states=text, added_cond_kwargs=added).sample

    def latents(self, image):
        import torchvision.transforms as T
        from PIL import Image

        tf = T.Compose([T.Resize((SIZE, SIZE), interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop((SIZE, SIZE)),
                        T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])
        x = tf(Image.fromarray(image))[None]
        return self.vae.encode(x).latent_dist.mean * self.vae.config.scaling_factor

    @torch.no_grad()
    def morph(self, a, b, alpha_b):
        w_a = 1.0 - alpha_b  # the released code's alpha is the weight of A
        emb = [torch.from_numpy(self.encoder.embed([img])[0])[None, None] for img in (a, b)]
        null = torch.zeros(1, 1, 512)
        neg, neg_pooled = self.encode_text(NEGATIVE)
        pos, pos_pooled = self.encode_text(PROMPT)
        self.sched.set_timesteps(STEPS)
        timesteps = self.sched.timesteps
        inverse = diffusers.DDIMInverseScheduler.from_config(self.sched.config)
        inverse.set_timesteps(STEPS)
        inverted = []
        for img in (a, b):
            lat = self.latents(img)
            for i in range(STEPS - 1):
                t = timesteps[STEPS - 1 - i]
                eps = self.unet_call(lat, t, neg, neg_pooled, [null, null], [w_a, 0.0])
                lat = inverse.step(eps, t, lat).prev_sample
            inverted.append(lat)
        z = _row_slerp(inverted[0], inverted[1], alpha_b)
        text = torch.cat([neg, pos])
        pooled = torch.cat([neg_pooled, pos_pooled]) if self.xl else None
        embeds = [torch.cat([null, emb[0]]), torch.cat([null, emb[1]])]
        for t in timesteps:
            eps_u, eps_c = self.unet_call(torch.cat([z, z]), t, text, pooled, embeds, [w_a, 1.0 - w_a]).chunk(2)
            z = self.sched.step(eps_u + GUIDANCE * (eps_c - eps_u), t, z).prev_sample
        img = self.vae.decode(z / self.vae.config.scaling_factor).sample
        img = ((img[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        return z, img, inverted


@pytest.fixture(scope="module", params=["tiny_sd15", "tiny_sdxl"])
def setup(request):
    return request.param, Reference(request.param)


def _madpad(name, alpha, **kw):
    """A madpad morph plus the latents it decoded and the two inverted latents."""
    pipe = copy.copy(cached_tiny_pipeline(name))  # shallow copy: same modules, own instance attributes
    captured = {}
    decode, invert = pipe.decode_latents, pipe.invert

    def keep_latents(z):
        captured["z"] = z.clone()
        return decode(z)

    def keep_inverted(*args, **kwargs):
        out = invert(*args, **kwargs)
        captured.setdefault("inverted", []).append(out.clone())
        return out

    pipe.decode_latents, pipe.invert = keep_latents, keep_inverted
    gen = make_dcmorph(tiny_random=name, pipeline=pipe, steps=STEPS, guidance=GUIDANCE, **kw)
    img = gen.morph(*_images(), alpha=alpha)
    return img, captured, gen


def _rel(x, y):
    return ((x - y).norm() / y.norm()).item()


@pytest.mark.parametrize("alpha", [0.5, 0.3])
def test_reference_preset_reproduces_the_released_loop(setup, alpha):
    name, ref = setup
    z_ref, img_ref, inv_ref = ref.morph(*_images(), alpha)
    img, got, gen = _madpad(name, alpha, preset="reference")
    assert gen.params()["schedule"] == "reference" and gen.params()["inversion_steps"] == STEPS - 1
    for mine, theirs in zip(got["inverted"], inv_ref):
        assert _rel(mine, theirs) < 1e-4
    assert _rel(got["z"], z_ref) < 1e-4
    assert np.abs(img.astype(int) - img_ref.astype(int)).max() <= 1


def test_madpad_defaults_differ_from_the_released_loop(setup):
    """The comparison above has power: madpad's own defaults are far from the reference on the same inputs."""
    name, ref = setup
    z_ref, _, _ = ref.morph(*_images(), 0.3)
    _, got, _ = _madpad(name, 0.3)
    assert _rel(got["z"], z_ref) > 1e-2


@pytest.mark.parametrize("override, setting", [
    ({"schedule": "paired"}, "schedule"),
    ({"inversion_id_scale": "id_scale"}, "inversion identity scale"),
    ({"slerp": "flat"}, "slerp granularity"),
    ({"source_align": "off"}, "source preprocessing"),
])
def test_each_reference_setting_matters(override, setting):
    """Switching any one preset setting back to madpad's moves the result well outside the parity tolerance."""
    ref = Reference("tiny_sd15")
    z_ref, _, _ = ref.morph(*_images(), 0.3)
    _, got, _ = _madpad("tiny_sd15", 0.3, preset="reference", **override)
    assert _rel(got["z"], z_ref) > 1e-3, setting


def test_reference_schedule_timesteps_for_30_steps():
    """The released schedule at 30 steps: invert through t = 1 ... 925 (29 steps), then sample 958 ... 1."""
    from madpad.morph.dcmorph.pipeline import make_schedulers, schedule_depths

    sched, inverse = make_schedulers()
    sched.set_timesteps(30)
    inverse.set_timesteps(30)
    inv_depth, sample_depth = schedule_depths("reference", 30)
    assert (inv_depth, sample_depth) == (29, 30)
    inverted = inverse.timesteps[:inv_depth].tolist()
    assert inverted[0] == 1 and inverted[-1] == 925 and len(inverted) == 29
    sampled = sched.timesteps[30 - sample_depth:].tolist()
    assert sampled[0] == 958 and sampled[-1] == 1 and len(sampled) == 30
    assert schedule_depths("paired", 30) == (30, 30) and schedule_depths("paired", 30, 29) == (29, 29)


def test_reference_preset_settings_and_explicit_overrides():
    a = make_dcmorph(tiny_random="tiny_sd15", pipeline=cached_tiny_pipeline("tiny_sd15"), steps=3, preset="reference")
    p = a.params()
    assert (p["schedule"], p["inversion_id_scale"], p["slerp"], p["source_align"], p["realign_to"]) == (
        "reference", "weight_a", "rows", "stretch", "arcface112")
    assert p["inversion_steps"] == 2 and p["sampling_steps"] == 3 and p["preset"] == "reference"
    assert a.inversion_scale(0.3) == pytest.approx(0.7)  # the weight of A
    m = make_dcmorph(tiny_random="tiny_sd15", pipeline=cached_tiny_pipeline("tiny_sd15"), steps=3)
    assert (m.params()["schedule"], m.params()["slerp"], m.inversion_scale(0.3)) == ("paired", "flat", 1.0)
    o = make_dcmorph(tiny_random="tiny_sd15", pipeline=cached_tiny_pipeline("tiny_sd15"), steps=3,
                     preset="reference", slerp="flat")
    assert o.params()["slerp"] == "flat" and o.params()["schedule"] == "reference"
    from madpad.errors import UsageError

    with pytest.raises(UsageError, match="contradicts the reference schedule"):
        make_dcmorph(tiny_random="tiny_sd15", preset="reference", steps=3, inversion_steps=3)
    with pytest.raises(UsageError, match="preset must be one of"):
        make_dcmorph(tiny_random="tiny_sd15", preset="paper")


def test_arcface112_realignment_uses_the_five_points_of_the_morph(sample_dir):
    """Output alignment of the reference: the 112x112 ArcFace crop from the morph's own five points."""
    pytest.importorskip("dlib")
    from madpad.face import align_arcface, analyze_face
    from madpad.io import read_image

    photo = read_image(sorted((sample_dir / "neutral").glob("*.jpg"))[0])
    gen = make_dcmorph(tiny_random="tiny_sd15", pipeline=cached_tiny_pipeline("tiny_sd15"), steps=1,
                       preset="reference", realign="required")
    info = {}
    out = gen._realign(photo, info)
    analysis = analyze_face(photo, detector="dlib_hog", landmarker="dlib68")
    assert out.shape == (112, 112, 3) and info["realign"] == "aligned (arcface112)"
    assert np.array_equal(out, align_arcface(photo, analysis.landmarks5, size=112))

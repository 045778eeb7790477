"""Reduced precision: the UNet (with the identity projections), the text encoders and the FaceID
projection run in float16/bfloat16, the VAE in float32, checked on the real parameters and on the
tensors that reach each model (forward pre-hooks), and recorded from the parameters in ``params()``."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from madpad.morph.dcmorph.generator import make_dcmorph  # noqa: E402
from madpad.morph.dcmorph.pipeline import DCMorphPipeline  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (80, 96, 3), dtype=np.uint8), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)


def _final_norm(text_encoder) -> str:
    """The text encoder's final LayerNorm (``text_model.final_layer_norm`` or ``final_layer_norm``)."""
    return next(n for n, _ in text_encoder.named_modules() if n.endswith("final_layer_norm"))


def _param_dtypes(module):
    return {p.dtype for p in module.parameters()}


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("config", ["tiny_sd15", "tiny_sdxl"])
def test_unet_in_reduced_precision_vae_in_float32(config, dtype):
    want = getattr(torch, dtype)
    pipe = DCMorphPipeline.from_tiny_config(config)  # fresh: the generator casts it in place
    seen = {"unet": set(), "vae.encoder": set(), "vae.decoder": set(), "text": set()}

    def record(key):
        def hook(module, args):
            seen[key].add(args[0].dtype)
        return hook

    handles = [pipe.unet.conv_in.register_forward_pre_hook(record("unet")),
               pipe.vae.encoder.conv_in.register_forward_pre_hook(record("vae.encoder")),
               pipe.vae.decoder.conv_in.register_forward_pre_hook(record("vae.decoder")),
               pipe.text_encoder.get_submodule(_final_norm(pipe.text_encoder)).register_forward_pre_hook(record("text"))]
    try:
        gen = make_dcmorph(tiny_random=config, pipeline=pipe, steps=2, dtype=dtype, device="cpu")
        out = gen.morph(*_images(), alpha=0.5)
    finally:
        for h in handles:
            h.remove()
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    # parameters, all of them
    assert _param_dtypes(pipe.unet) == {want}  # includes every processor's to_k_ip / to_v_ip
    assert any(getattr(p, "has_identity_weights", False) and p.to_k_ip.weight.dtype == want
               for p in pipe.unet.attn_processors.values())
    assert _param_dtypes(pipe.text_encoder) == {want} and _param_dtypes(pipe.image_proj) == {want}
    if pipe.text_encoder_2 is not None:
        assert _param_dtypes(pipe.text_encoder_2) == {want}
    assert _param_dtypes(pipe.vae) == {torch.float32}
    # what actually ran
    assert seen["unet"] == {want} and seen["text"] == {want}
    assert seen["vae.encoder"] == {torch.float32} and seen["vae.decoder"] == {torch.float32}
    # and what the manifest records
    p = gen.params()
    assert p["unet_dtype"] == dtype and p["vae_dtype"] == "float32" and p["dtype"] == dtype


def test_component_dtypes_reports_a_mixed_module():
    pipe = DCMorphPipeline.from_tiny_config("tiny_sd15")
    pipe.vae.decoder.conv_in.to(torch.float16)
    assert pipe.component_dtypes()["vae"] == "mixed: float16, float32"
    assert pipe.component_dtypes()["unet"] == "float32"

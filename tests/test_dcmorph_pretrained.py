"""The real loading path, offline: ``DCMorphPipeline.from_pretrained`` on a local diffusers folder
(tiny random-init SD1.5-class pipeline written with ``save_pretrained``, real CLIP tokenizer built from
open_clip's shipped BPE file) + a FaceID checkpoint file (identity weights and LoRA)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("open_clip")

from madpad.errors import UsageError  # noqa: E402
from madpad.morph.dcmorph.attention import install_identity_processors  # noqa: E402
from madpad.morph.dcmorph.faceid import export_faceid_state_dict  # noqa: E402
from madpad.morph.dcmorph.generator import make_dcmorph  # noqa: E402
from madpad.morph.dcmorph.pipeline import DCMorphPipeline  # noqa: E402
from madpad.morph.dcmorph.testing import clip_tokenizer_offline, save_tiny_diffusers_folder  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("sd15tiny")
    base = save_tiny_diffusers_folder(root / "base")
    # a FaceID checkpoint for that UNet: random identity weights + a rank-2 LoRA on every attention layer
    # (the released layout), and a partial one with the LoRA of layer 0 only
    import copy

    from diffusers.models.embeddings import IPAdapterFaceIDImageProjection

    unet = copy.deepcopy(base.unet)
    torch.manual_seed(3)
    install_identity_processors(unet)
    proj = IPAdapterFaceIDImageProjection(image_embed_dim=512, cross_attention_dim=32, mult=2, num_tokens=4)
    lora = {}
    for key_id, name in enumerate(unet.attn_processors):
        attn = unet.get_submodule(name.removesuffix(".processor"))
        for lname, lin in (("to_q_lora", attn.to_q), ("to_k_lora", attn.to_k), ("to_v_lora", attn.to_v),
                           ("to_out_lora", attn.to_out[0])):
            lora[f"{key_id}.{lname}.down.weight"] = 0.1 * torch.randn(2, lin.in_features)
            lora[f"{key_id}.{lname}.up.weight"] = 0.1 * torch.randn(lin.out_features, 2)
    sd = export_faceid_state_dict(unet, proj, lora=lora)
    torch.save(sd, root / "ip-adapter-faceid_tiny.bin")
    partial = {"image_proj": sd["image_proj"],
               "ip_adapter": {k: v for k, v in sd["ip_adapter"].items() if "_lora." not in k or k.startswith("0.")}}
    torch.save(partial, root / "partial.bin")
    return root, base, sd


def test_tokenizer_matches_open_clip():
    import open_clip

    text = "headshot, high quality, best quality"
    ours = clip_tokenizer_offline()([text]).input_ids[0]
    ref = open_clip.get_tokenizer("ViT-B-32")([text])[0].tolist()
    assert ours == ref[: len(ours)] and ours[0] == 49406 and ours[-1] == 49407


def test_from_pretrained_loads_base_faceid_and_fuses_the_lora(folder):
    root, base, sd = folder
    pipe = DCMorphPipeline.from_pretrained(root / "base", ip_adapter=root / "ip-adapter-faceid_tiny.bin")
    assert pipe.arch == "sd15" and type(pipe.tokenizer).__name__ == "CLIPTokenizer"
    assert pipe.default_size == 64 and pipe.identity_dim == 512
    assert pipe.scheduler.config.beta_schedule == "scaled_linear" and pipe.scheduler.config.steps_offset == 1
    assert not pipe.scheduler.config.clip_sample and not pipe.inverse_scheduler.config.set_alpha_to_one
    procs = pipe.unet.attn_processors
    keys = pipe.source["faceid_keys"]
    assert pipe.source["lora_layers_fused"] == len(procs) and keys["lora_rank"] == 2
    assert keys["consumed"] == len(sd["ip_adapter"]) and keys["missing"] == keys["unexpected"] == []
    for key_id, (name, proc) in enumerate(procs.items()):
        if proc.has_identity_weights:
            assert torch.equal(proc.to_k_ip.weight, sd["ip_adapter"][f"{key_id}.to_k_ip.weight"]), name
    for key_id in (0, 1):
        layer = list(procs)[key_id].removesuffix(".processor")
        ip = sd["ip_adapter"]
        want = (base.unet.get_submodule(layer).to_q.weight
                + ip[f"{key_id}.to_q_lora.up.weight"] @ ip[f"{key_id}.to_q_lora.down.weight"])
        assert torch.allclose(pipe.unet.get_submodule(layer).to_q.weight, want, atol=1e-6)


def test_a_partial_lora_is_refused_by_name_unless_strict_is_off(folder):
    root, base, sd = folder
    with pytest.raises(UsageError, match=r"partial.bin: the FaceID checkpoint does not match this UNet: missing \d+ "
                                         r"key\(s\): 1\.to_k_lora\.down\.weight"):
        DCMorphPipeline.from_pretrained(root / "base", ip_adapter=root / "partial.bin")
    pipe = DCMorphPipeline.from_pretrained(root / "base", ip_adapter=root / "partial.bin", faceid_strict=False)
    keys = pipe.source["faceid_keys"]
    assert pipe.source["lora_layers_fused"] == 1 and "1.to_q_lora.up.weight" in keys["missing"]
    assert keys["identity_layers"] == sum(1 for p in pipe.unet.attn_processors.values() if p.has_identity_weights)
    procs = list(pipe.unet.attn_processors)
    first, second = procs[0].removesuffix(".processor"), procs[1].removesuffix(".processor")
    want = (base.unet.get_submodule(first).to_q.weight
            + sd["ip_adapter"]["0.to_q_lora.up.weight"] @ sd["ip_adapter"]["0.to_q_lora.down.weight"])
    assert torch.allclose(pipe.unet.get_submodule(first).to_q.weight, want, atol=1e-6)
    assert torch.equal(pipe.unet.get_submodule(second).to_q.weight, base.unet.get_submodule(second).to_q.weight)


def test_generator_from_a_local_folder_makes_a_morph(folder):
    root, _, _ = folder
    gen = make_dcmorph(base_model=str(root / "base"), ip_adapter=str(root / "ip-adapter-faceid_tiny.bin"),
                       face_encoder="dummy", steps=2, source_align="off", realign="off")
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 255, (80, 80, 3), dtype=np.uint8), rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)
    out = gen.morph(a, b)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert gen.params()["base_model"] == str(root / "base") and gen.params()["arch"] == "sd15"


def test_bad_base_model_paths_are_usage_errors(tmp_path, folder):
    root, _, _ = folder
    bogus = tmp_path / "notamodel"
    bogus.mkdir()
    (bogus / "model_index.json").write_text('{"_class_name": "FluxPipeline"}')
    with pytest.raises(UsageError, match="neither a Stable Diffusion 1.5-class nor an SDXL-class"):
        DCMorphPipeline.from_pretrained(bogus, ip_adapter=None)
    with pytest.raises(UsageError, match="cannot load base model"):
        DCMorphPipeline.from_pretrained(tmp_path / "missing", ip_adapter=None, arch="sd15")

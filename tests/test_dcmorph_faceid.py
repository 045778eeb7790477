"""FaceID checkpoint loading: our loader + processors vs diffusers' own IP-Adapter loader on a tiny UNet,
the LoRA fused once, identity-encoder dimension checks, and clear errors for wrong files."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from madpad.errors import UsageError  # noqa: E402
from madpad.morph.dcmorph.attention import install_identity_processors, morph_condition  # noqa: E402
from madpad.morph.dcmorph.faceid import (  # noqa: E402
    build_faceid_projection,
    export_faceid_state_dict,
    fuse_faceid_lora,
    load_faceid_state_dict,
    load_identity_weights,
)
from madpad.morph.dcmorph.identity import DummyIdentityEncoder, check_identity_dim, parse_encoder_spec  # noqa: E402
from madpad.morph.dcmorph.pipeline import tiny_config_path  # noqa: E402
from madpad.morph.dcmorph.testing import base_unet_state_dict, cached_tiny_pipeline  # noqa: E402

RANK = 4


pytestmark = pytest.mark.usefixtures("torch_one_thread")
TARGET = {"to_q_lora": "to_q", "to_k_lora": "to_k", "to_v_lora": "to_v", "to_out_lora": "to_out.0"}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny pipeline and a FaceID checkpoint (original layout, with a LoRA) written from it."""
    pipe = cached_tiny_pipeline("tiny_sd15")  # read only: the checkpoint is exported (cloned) from it
    g = torch.Generator().manual_seed(5)
    lora = {}
    for key_id, name in enumerate(pipe.unet.attn_processors):
        attn = pipe.unet.get_submodule(name.removesuffix(".processor"))
        for lname, target in (("to_q_lora", attn.to_q), ("to_k_lora", attn.to_k), ("to_v_lora", attn.to_v),
                              ("to_out_lora", attn.to_out[0])):
            lora[f"{key_id}.{lname}.down.weight"] = 0.1 * torch.randn(RANK, target.in_features, generator=g)
            lora[f"{key_id}.{lname}.up.weight"] = 0.1 * torch.randn(target.out_features, RANK, generator=g)
    sd = export_faceid_state_dict(pipe.unet, pipe.image_proj, lora=lora)
    path = tmp_path_factory.mktemp("faceid") / "ip-adapter-faceid_tiny.bin"
    torch.save(sd, path)
    cfg = json.loads(tiny_config_path("tiny_sd15").read_text())
    return pipe, sd, path, cfg


def _fresh_unet(cfg, base_sd):
    unet = diffusers.UNet2DConditionModel(**cfg["unet"]).eval()
    unet.load_state_dict(base_sd)
    return unet


def test_bin_and_safetensors_round_trip(ckpt, tmp_path):
    pipe, sd, path, _ = ckpt
    loaded = load_faceid_state_dict(path)
    assert set(loaded) >= {"image_proj", "ip_adapter"}
    assert all(torch.equal(loaded["ip_adapter"][k], v) for k, v in sd["ip_adapter"].items())
    st = pytest.importorskip("safetensors.torch")
    flat = {f"{sec}.{k}": v.contiguous() for sec in ("image_proj", "ip_adapter") for k, v in sd[sec].items()}
    st.save_file(flat, str(tmp_path / "faceid.safetensors"))
    again = load_faceid_state_dict(tmp_path / "faceid.safetensors")
    assert all(torch.equal(again["image_proj"][k], v) for k, v in sd["image_proj"].items())


def test_our_loader_and_processor_equal_diffusers_ip_adapter_on_the_unet(ckpt):
    """Load the same checkpoint with diffusers' own IP-Adapter code and with ours: identical UNet outputs
    when all identity weight is on one identity (paper's alpha = 1), on every cross-attention layer."""
    pipe, sd, _, cfg = ckpt
    base = base_unet_state_dict(pipe.unet)
    ref = _fresh_unet(cfg, base)
    ref._load_ip_adapter_weights([sd], low_cpu_mem_usage=False)  # diffusers' conversion (FaceID branch)
    ours = _fresh_unet(cfg, base)
    install_identity_processors(ours)
    n_layers = load_identity_weights(ours, sd["ip_adapter"])
    assert n_layers == sum(1 for n in ours.attn_processors if n.endswith("attn2.processor")) > 0
    proj = build_faceid_projection(sd["image_proj"]).eval()

    g = torch.Generator().manual_seed(7)
    x = torch.randn(1, 4, 16, 16, generator=g)
    text = torch.randn(1, 77, 32, generator=g)
    e_a, e_b = torch.randn(1, 512, generator=g), torch.randn(1, 512, generator=g)
    e_a, e_b = e_a / e_a.norm(), e_b / e_b.norm()
    t = torch.tensor(500)
    with torch.no_grad():
        tok_a, tok_b = proj(e_a), proj(e_b)
        assert torch.equal(tok_a, ref.encoder_hid_proj.image_projection_layers[0](e_a))
        want_a = ref(x, t, encoder_hidden_states=text, added_cond_kwargs={"image_embeds": [e_a[:, None]]}).sample
        want_b = ref(x, t, encoder_hidden_states=text, added_cond_kwargs={"image_embeds": [e_b[:, None]]}).sample
        got_a = ours(x, t, encoder_hidden_states=text,
                     cross_attention_kwargs={"identity": morph_condition(tok_a, tok_b, 0.0)}).sample
        got_b = ours(x, t, encoder_hidden_states=text,
                     cross_attention_kwargs={"identity": morph_condition(tok_a, tok_b, 1.0)}).sample
        mixed = ours(x, t, encoder_hidden_states=text,
                     cross_attention_kwargs={"identity": morph_condition(tok_a, tok_b, 0.5)}).sample
        swapped = ours(x, t, encoder_hidden_states=text,
                       cross_attention_kwargs={"identity": morph_condition(tok_b, tok_a, 0.5)}).sample
        text_only = ours(x, t, encoder_hidden_states=text).sample
        plain = _fresh_unet(cfg, base)(x, t, encoder_hidden_states=text).sample
    assert torch.equal(got_a, want_a)
    assert torch.equal(got_b, want_b)
    assert torch.equal(mixed, swapped)
    assert torch.equal(text_only, plain)  # identity=None: the base UNet, unchanged
    assert not torch.allclose(got_a, got_b) and not torch.allclose(mixed, got_a)


def test_lora_is_fused_once_at_the_layers_diffusers_maps_it_to(ckpt):
    pipe, sd, _, cfg = ckpt
    base = base_unet_state_dict(pipe.unet)
    unet = _fresh_unet(cfg, base)
    install_identity_processors(unet)
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    n = fuse_faceid_lora(unet, sd["ip_adapter"], lora_scale=0.5)
    assert n == len(unet.attn_processors)
    # diffusers' own key mapping of the FaceID LoRA: "unet.<layer>.to_q_lora.down.weight" -> tensor
    mapping = _fresh_unet(cfg, base)._load_ip_adapter_loras([sd])[0]
    after = unet.state_dict()
    checked = 0
    for key, down in mapping.items():
        if ".down.weight" not in key:
            continue
        layer, lname = key[len("unet."):].rsplit(".", 3)[0].removesuffix(".processor"), key.rsplit(".", 3)[1]
        up = mapping[key.replace(".down.", ".up.")]
        wkey = f"{layer}.{TARGET[lname]}.weight"
        assert torch.allclose(after[wkey], before[wkey] + 0.5 * up @ down, atol=1e-6), wkey
        checked += 1
    assert checked == 4 * n
    # the fused linear map equals base(x) + scale * up(down(x)), as the FaceID processors compute it
    name = next(iter(unet.attn_processors)).removesuffix(".processor")
    key_q = f"{name}.to_q.weight"
    x = torch.randn(3, before[key_q].shape[1])
    down, up = sd["ip_adapter"]["0.to_q_lora.down.weight"], sd["ip_adapter"]["0.to_q_lora.up.weight"]
    with torch.no_grad():
        fused = unet.get_submodule(f"{name}.to_q")(x)
    assert torch.allclose(fused, x @ before[key_q].T + 0.5 * (x @ down.T) @ up.T, atol=1e-5)
    with pytest.raises(UsageError, match="already fused"):
        fuse_faceid_lora(unet, sd["ip_adapter"])


def test_checkpoint_for_another_base_is_refused_clearly(ckpt, tmp_path):
    pipe, sd, _, cfg = ckpt
    wrong = {k: (torch.zeros(v.shape[0], 64) if "to_k_ip" in k or "to_v_ip" in k else v)
             for k, v in sd["ip_adapter"].items()}
    unet = _fresh_unet(cfg, base_unet_state_dict(pipe.unet))
    install_identity_processors(unet)
    with pytest.raises(UsageError, match="does not fit this UNet.*SDXL"):
        load_identity_weights(unet, wrong, source="sdxl.bin")
    missing = {k: v for k, v in sd["ip_adapter"].items() if not k.startswith("1.")}
    with pytest.raises(UsageError, match=r"missing 1\.to_k_ip\.weight"):
        load_identity_weights(unet, missing)


def test_wrong_files_give_errors_naming_the_file(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        load_faceid_state_dict(tmp_path / "nope.bin")
    p = tmp_path / "plain.bin"
    torch.save({"image_proj": {"proj.weight": torch.zeros(2, 2)}, "ip_adapter": {}}, p)
    with pytest.raises(UsageError, match="plain.bin: not an IP-Adapter FaceID checkpoint"):
        load_faceid_state_dict(p)
    q = tmp_path / "other.bin"
    torch.save({"state_dict": {}}, q)
    with pytest.raises(UsageError, match="other.bin: not an IP-Adapter checkpoint"):
        load_faceid_state_dict(q)
    r = tmp_path / "garbage.bin"
    r.write_bytes(b"not a checkpoint")
    with pytest.raises(UsageError, match="garbage.bin: cannot read"):
        load_faceid_state_dict(r)


def test_identity_encoder_dimension_is_checked():
    check_identity_dim(DummyIdentityEncoder(dim=512), 512)  # fits
    with pytest.raises(UsageError, match="'dummy' gives 64-D embeddings but the FaceID projection expects 512-D"):
        check_identity_dim(DummyIdentityEncoder(dim=64), 512)
    face = pytest.importorskip("madpad.face")
    try:
        dlib_embedder = face.get_embedder("dlib")
    except Exception as exc:  # noqa: BLE001 - dlib models not installed here
        pytest.skip(f"dlib embedder unavailable: {exc}")
    with pytest.raises(UsageError, match="128-D.*dlib.*arcface_onnx"):
        check_identity_dim(dlib_embedder, 512)


def test_dummy_encoder_is_deterministic_and_discriminative():
    enc = DummyIdentityEncoder(dim=512)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 255, (40, 30, 3), dtype=np.uint8), rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)
    ea, ea2, eb = enc.embed([a])[0], enc.embed([a.copy()])[0], enc.embed([b])[0]
    assert np.array_equal(ea, ea2)
    assert np.linalg.norm(ea) == pytest.approx(1.0, abs=1e-6)
    assert abs(float(ea @ eb)) < 0.5


def test_encoder_spec_parsing():
    assert parse_encoder_spec("arcface_onnx:model_path=/m/w.onnx,det_size=640") == (
        "arcface_onnx", {"model_path": "/m/w.onnx", "det_size": 640})
    assert parse_encoder_spec("dummy") == ("dummy", {})
    with pytest.raises(UsageError, match="missing an '=' sign"):
        parse_encoder_spec("dummy:dim")


def test_hash_tokenizer_is_deterministic_and_clip_shaped():
    from madpad.morph.dcmorph.tokenizer import HashWordTokenizer

    tok = HashWordTokenizer(vocab_size=1000, model_max_length=8, bos_token_id=0, eos_token_id=999, pad_token_id=1)
    ids = tok(["Headshot, high quality", "headshot high QUALITY"], padding="max_length", max_length=8).input_ids
    assert ids.shape == (2, 8) and torch.equal(ids[0], ids[1])  # case and punctuation do not matter
    row = ids[0].tolist()
    assert row[0] == 0 and row[4] == 999 and row[5:] == [1, 1, 1]
    assert all(i not in (0, 1, 999) for i in row[1:4])
    long = tok(["a b c d e f g h i j"], max_length=8).input_ids[0].tolist()
    assert len(long) == 8 and long[-1] == 999  # truncated, EOS kept
    with pytest.raises(ValueError, match="vocab_size"):
        HashWordTokenizer(vocab_size=3)


def test_mtcnn_five_points_drive_the_arcface_identity_encoder(tmp_path, sample_dir):
    """The documented SCRFD-like identity path: ``arcface_onnx:...,detector=mtcnn,landmarker=null`` aligns
    on MTCNN's own five points (as insightface aligns on SCRFD's) and gives a 512-D unit embedding."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("facenet_pytorch")
    from onnx import TensorProto, helper, numpy_helper

    from madpad.face import align_arcface, analyze_face
    from madpad.io import read_image
    from madpad.morph.dcmorph.identity import embed_one, resolve_identity_encoder

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((3 * 112 * 112, 512)).astype(np.float32), "w")
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])]
    graph = helper.make_graph(nodes, "rec", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 112, 112])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 512])], [w])
    model = tmp_path / "arcface_like.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(model))
    enc = resolve_identity_encoder(f"arcface_onnx:model_path={model},detector=mtcnn,landmarker=null")
    check_identity_dim(enc, 512)
    img = read_image(sorted((sample_dir / "neutral").glob("*.jpg"))[0])
    e = embed_one(enc, img, expected_dim=512, role="a")
    crop = align_arcface(img, analyze_face(img, detector="mtcnn", landmarker=None).landmarks5, size=112)
    want = enc.embed_aligned(crop[None])[0]
    assert np.allclose(e, want / np.linalg.norm(want), atol=1e-5)
    dlib_crop = align_arcface(img, analyze_face(img, detector="dlib_hog", landmarker="dlib68").landmarks5, size=112)
    assert not np.array_equal(crop, dlib_crop)  # a different five-point source, a different crop

"""``python -m madpad.weights verify`` on files built here with the real key layouts and shapes.

* Full-size SD1.5 and SDXL IP-Adapter FaceID checkpoints written from meta tensors (real shapes, no
  data: a few KB on disk), their layout generated here the way the original IP-Adapter code numbers
  its layers (not with madpad's own layout code).
* A reduced-channel SD1.5-layout diffusers base folder (real block structure: 32 attention layers,
  real 768-D cross-attention) and a FaceID checkpoint for it with real random tensors.
* Refusals: a wrong-rank LoRA, a missing key, an unexpected key, an SDXL adapter with an SD1.5
  base, a truncated file, a pickle that would run code, an unknown timm checkpoint.
"""

from __future__ import annotations

import hashlib
import json

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
pytest.importorskip("safetensors")

from madpad.errors import UsageError  # noqa: E402
from madpad.weights import verify_paths  # noqa: E402
from madpad.weights.__main__ import main  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SD15_UNET = dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=[32, 32, 64, 64],
                 layers_per_block=2, down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
                 up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3, cross_attention_dim=768,
                 attention_head_dim=8, norm_num_groups=8)


# --------------------------------------------------------------------------- FaceID layouts, written independently
def _hidden_size(cfg, name):
    """Hidden size of an attention layer from its name, as the original IP-Adapter code computes it."""
    if name.startswith("mid_block"):
        return cfg["block_out_channels"][-1]
    block = int(name.split(".")[1])
    if name.startswith("up_blocks"):
        return list(reversed(cfg["block_out_channels"]))[block]
    return cfg["block_out_channels"][block]


def faceid_state_dict(unet_cfg, *, rank, device="cpu", dtype=torch.float16, seed=0, tokens=4, id_dim=512):
    """``{"image_proj": ..., "ip_adapter": ...}`` in the released FaceID layout for a UNet config."""
    with torch.device("meta"):
        names = list(diffusers.UNet2DConditionModel(**unet_cfg).attn_processors)
    cross = unet_cfg["cross_attention_dim"]
    g = torch.Generator().manual_seed(seed)

    def t(*shape):
        if device == "meta":
            return torch.empty(shape, dtype=dtype, device="meta")
        return (0.02 * torch.randn(shape, generator=g)).to(dtype)

    proj = {"proj.0.weight": t(2 * id_dim, id_dim), "proj.0.bias": t(2 * id_dim),
            "proj.2.weight": t(tokens * cross, 2 * id_dim), "proj.2.bias": t(tokens * cross),
            "norm.weight": t(cross), "norm.bias": t(cross)}
    ip = {}
    for i, name in enumerate(names):
        h = _hidden_size(unet_cfg, name)
        kv_in = h if name.endswith("attn1.processor") else cross
        for lora, (fin, fout) in (("to_q_lora", (h, h)), ("to_k_lora", (kv_in, h)), ("to_v_lora", (kv_in, h)),
                                  ("to_out_lora", (h, h))):
            ip[f"{i}.{lora}.down.weight"] = t(rank, fin)
            ip[f"{i}.{lora}.up.weight"] = t(fout, rank)
        if not name.endswith("attn1.processor"):
            ip[f"{i}.to_k_ip.weight"] = t(h, cross)
            ip[f"{i}.to_v_ip.weight"] = t(h, cross)
    return {"image_proj": proj, "ip_adapter": ip}


def _canonical(arch):
    from madpad.morph.dcmorph.faceid import canonical_unet_config

    return canonical_unet_config(arch)


def _save_safetensors(sd, path):
    from safetensors.torch import save_file

    save_file({f"{sec}.{k}": v.contiguous() for sec in ("image_proj", "ip_adapter") for k, v in sd[sec].items()},
              str(path))


@pytest.fixture(scope="module")
def full_size(tmp_path_factory):
    root = tmp_path_factory.mktemp("faceid_full")
    sd15 = faceid_state_dict(_canonical("sd15"), rank=128, device="meta")
    sdxl = faceid_state_dict(_canonical("sdxl"), rank=128, device="meta")
    torch.save(sd15, root / "ip-adapter-faceid_sd15.bin")
    torch.save(sdxl, root / "ip-adapter-faceid_sdxl.bin")
    return root, sd15, sdxl


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A reduced-channel SD1.5-layout diffusers folder (real block structure and 768-D cross-attention)."""
    transformers = pytest.importorskip("transformers")
    from madpad.morph.dcmorph.pipeline import make_schedulers

    root = tmp_path_factory.mktemp("sd15_reduced")
    torch.manual_seed(0)
    diffusers.UNet2DConditionModel(**SD15_UNET).save_pretrained(root / "unet")
    diffusers.AutoencoderKL(block_out_channels=[8, 16], down_block_types=["DownEncoderBlock2D"] * 2,
                            up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=4,
                            norm_num_groups=8).save_pretrained(root / "vae")
    te = transformers.CLIPTextModel(transformers.CLIPTextConfig(
        vocab_size=64, hidden_size=768, intermediate_size=32, num_hidden_layers=1, num_attention_heads=12,
        max_position_embeddings=77))
    te.to(torch.float16).save_pretrained(root / "text_encoder")
    make_schedulers()[0].save_pretrained(root / "scheduler")
    (root / "tokenizer").mkdir()
    (root / "tokenizer" / "vocab.json").write_text("{}")
    (root / "tokenizer" / "merges.txt").write_text("#version: 0.2\n")
    (root / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": diffusers.__version__,
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "DDIMScheduler"], "safety_checker": [None, None],
        "feature_extractor": [None, None]}))
    faceid = root.parent / "faceid_for_base.safetensors"
    _save_safetensors(faceid_state_dict(SD15_UNET, rank=4, seed=1), faceid)
    return root, faceid


def _row(rows, name):
    return next(r for r in rows if r.path.endswith(name))


# --------------------------------------------------------------------------- tests
def test_full_size_faceid_checkpoints_have_the_released_layout(full_size):
    root, sd15, sdxl = full_size
    assert (root / "ip-adapter-faceid_sd15.bin").stat().st_size < 200_000  # meta tensors: shapes, no data
    assert len(sd15["ip_adapter"]) == 16 * 2 + 32 * 8 and len(sdxl["ip_adapter"]) == 70 * 2 + 140 * 8
    rows = verify_paths([root], hash_files=False)
    r15, rxl = _row(rows, "faceid_sd15.bin"), _row(rows, "faceid_sdxl.bin")
    assert r15.ok and rxl.ok, (r15.problems, rxl.problems)
    assert r15.kind == "IP-Adapter FaceID (SD1.5 layout)" and rxl.kind == "IP-Adapter FaceID (SDXL layout)"
    assert "4 tokens x 768, identity 512-D, LoRA rank 128, 16 identity layers" in r15.summary
    assert "4 tokens x 2048, identity 512-D, LoRA rank 128, 70 identity layers" in rxl.summary
    assert f"all {16 * 2 + 32 * 8 + 6} keys fit the canonical SD1.5 UNet" in r15.summary
    assert "non-commercial" in r15.licence and r15.dtypes.startswith("float16")


def test_base_folder_and_matching_adapter_pass_with_hashes(base, capsys):
    root, faceid = base
    assert main(["verify", str(root), str(faceid)]) == 0
    out = capsys.readouterr().out
    rows = verify_paths([root, faceid])
    assert all(r.ok for r in rows), [(r.path, r.problems) for r in rows]
    head = rows[0]
    assert head.kind == "SD1.5-class base model folder (StableDiffusionPipeline)"
    assert "UNet cross-attention 768" in head.summary
    unet = _row(rows, "unet/diffusion_pytorch_model.safetensors")
    assert unet.kind == "SD1.5 UNet (cross-attention 768)" and unet.dtypes.startswith("float32")
    te = _row(rows, "text_encoder/model.safetensors")
    assert te.dtypes.startswith("float16") and "hidden 768" in te.kind
    want = hashlib.sha256((root / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()).hexdigest()
    assert unet.sha256 == want and want in out
    fid = _row(rows, "faceid_for_base.safetensors")
    assert fid.kind == "IP-Adapter FaceID (SD1.5 layout)" and "LoRA rank 4" in fid.summary
    assert f"fit the base model {root}" in fid.summary
    assert "| file | what it is | sizes | dtypes | sha256 | licence | verdict |" in out


def _broken_variant(tmp_path, edit, name="faceid.safetensors"):
    sd = faceid_state_dict(SD15_UNET, rank=4, seed=1)
    edit(sd)
    path = tmp_path / name
    _save_safetensors(sd, path)
    return path


def test_wrong_rank_lora_is_refused_naming_the_layer(base, tmp_path, capsys):
    root, _ = base
    path = _broken_variant(tmp_path, lambda sd: sd["ip_adapter"].update(
        {"5.to_k_lora.up.weight": torch.zeros(sd["ip_adapter"]["5.to_k_lora.up.weight"].shape[0], 8)}))
    assert main(["verify", str(root), str(path), "--no-hash"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "faceid.safetensors" in err[0]
    assert "5.to_k_lora LoRA rank mismatch: down.weight has rank 4" in err[0] and "up.weight rank 8" in err[0]


def test_missing_and_unexpected_keys_are_named(base, tmp_path):
    root, _ = base
    missing = _broken_variant(tmp_path, lambda sd: sd["ip_adapter"].pop("3.to_k_ip.weight"), "missing.safetensors")
    row = _row(verify_paths([root, missing], hash_files=False), "missing.safetensors")
    assert not row.ok and any("missing 3.to_k_ip.weight" in p for p in row.problems), row.problems
    extra = _broken_variant(tmp_path, lambda sd: sd["ip_adapter"].update({"99.to_k_ip.weight": torch.zeros(64, 768)}),
                            "extra.safetensors")
    row = _row(verify_paths([root, extra], hash_files=False), "extra.safetensors")
    assert not row.ok and any("unexpected 1 key(s): 99.to_k_ip.weight" in p for p in row.problems), row.problems
    bias = _broken_variant(tmp_path, lambda sd: sd["image_proj"].pop("norm.bias"), "nobias.safetensors")
    row = _row(verify_paths([root, bias], hash_files=False), "nobias.safetensors")
    assert row.problems == ["image_proj: missing norm.bias"]
    # without the base, the reduced-channel adapter is checked against the real SD1.5 UNet: every shape differs
    row = _row(verify_paths([bias], hash_files=False), "nobias.safetensors")
    assert any("key(s) of the wrong shape: 0.to_k_lora.down.weight: checkpoint (4, 32) vs model (4, 320)" in p
               for p in row.problems), row.problems


def test_an_sdxl_adapter_with_an_sd15_base_is_refused(base, full_size, capsys):
    root, _ = base
    sdxl = full_size[0] / "ip-adapter-faceid_sdxl.bin"
    assert main(["verify", str(root), str(sdxl), "--no-hash"]) == 2
    err = capsys.readouterr().err
    assert "an SDXL FaceID adapter (2048-D tokens) does not fit the SD1.5 base" in err
    assert "cross-attention width 768" in err and "ip-adapter-faceid_sdxl.bin" in err


def test_a_broken_base_folder_is_refused(base, tmp_path):
    import shutil

    root, _ = base
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    unet_file = broken / "unet" / "diffusion_pytorch_model.safetensors"
    unet_file.write_bytes(unet_file.read_bytes()[:-1000])
    shutil.rmtree(broken / "scheduler")
    rows = verify_paths([broken], hash_files=False)
    assert "component folder scheduler/ is missing" in rows[0].problems
    assert any("truncated" in p for p in _row(rows, "diffusion_pytorch_model.safetensors").problems)


def test_the_strict_dcmorph_loader_uses_the_same_account(base):
    """madpad's loader refuses what verify refuses: the SD1.5-layout UNet with a checkpoint missing a key."""
    from safetensors.torch import load_file

    from madpad.morph.dcmorph.attention import install_identity_processors
    from madpad.morph.dcmorph.faceid import load_faceid

    _, faceid = base
    flat = load_file(str(faceid))
    sd = {"image_proj": {}, "ip_adapter": {}}
    for k, v in flat.items():
        sec, _, rest = k.partition(".")
        sd[sec][rest] = v.float()
    unet = diffusers.UNet2DConditionModel(**SD15_UNET)
    install_identity_processors(unet)
    info = load_faceid(unet, sd)
    assert info["identity_layers"] == 16 and info["lora_layers_fused"] == 32 and not info["missing"]
    del sd["ip_adapter"]["7.to_v_ip.weight"]
    unet2 = diffusers.UNet2DConditionModel(**SD15_UNET)
    install_identity_processors(unet2)
    with pytest.raises(UsageError, match=r"missing 1 key\(s\): 7.to_v_ip.weight"):
        load_faceid(unet2, sd, source="x.safetensors")


def test_a_pickle_that_runs_code_is_refused_and_never_run(tmp_path, capsys):
    marker = tmp_path / "RAN"

    class _Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "model.bin"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "x": _Payload()}, path)
    assert main(["verify", str(path), "--no-hash"]) == 2
    err = capsys.readouterr().err
    assert "refused: reading it needs arbitrary unpickling" in err and not marker.exists()


def test_onnx_recognisers_and_matte_models(tmp_path):
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    def recogniser(path, dim):
        w = numpy_helper.from_array(np.zeros((3, dim), np.float32), "w")
        graph = helper.make_graph(
            [helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "w"], ["y"])], "rec",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 112, 112])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, dim])], [w])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))

    recogniser(tmp_path / "w600k_r50.onnx", 512)
    recogniser(tmp_path / "small.onnx", 128)
    rows = verify_paths([tmp_path / "w600k_r50.onnx", tmp_path / "small.onnx"], hash_files=False)
    arc, small = rows
    assert arc.ok and arc.kind.startswith("ArcFace-family face recogniser ONNX, 112x112 -> 512-D")
    assert arc.licence == "insightface models: non-commercial research only"
    assert small.ok and small.kind == "face recognition ONNX, 112x112 -> 128-D"
    assert any("not as the dcmorph identity encoder" in n for n in small.notes)
    (tmp_path / "broken.onnx").write_bytes(b"\x00garbage")
    assert not verify_paths([tmp_path / "broken.onnx"], hash_files=False)[0].ok


def test_rembg_model_from_the_shared_folder(rembg_model_dir):
    row = verify_paths([rembg_model_dir / "isnet-general-use.onnx"], hash_files=False)[0]
    assert row.ok and row.kind == "background-removal (rembg-style) ONNX, 1024x1024 -> 1-channel matte"
    assert any("session 'isnet-general-use'" in n for n in row.notes)


def test_open_clip_checkpoint_is_named_and_its_keys_checked(tmp_path):
    open_clip = pytest.importorskip("open_clip")
    from madpad.mad.backbone import resolve_model_config

    open_clip.add_model_config(str(resolve_model_config("madpad-tiny-vit")))
    sd = open_clip.create_model("madpad-tiny-vit", pretrained=None).state_dict()
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "clip.pt")
    row = verify_paths([tmp_path / "clip.pt"], hash_files=False)[0]
    assert row.ok, row.problems
    assert row.kind.startswith("open_clip CLIP checkpoint: madpad-tiny-vit")
    assert "ViT width 64, 2 layers, patch 16, 64 px, embed 32" in row.summary
    sd.pop("visual.ln_post.bias")
    torch.save(sd, tmp_path / "clip_broken.pt")
    row = verify_paths([tmp_path / "clip_broken.pt"], hash_files=False)[0]
    assert not row.ok and "missing 1 key(s) the config needs: visual.ln_post.bias" in row.problems[0]


def test_timm_checkpoint_needs_its_architecture_named(tmp_path, capsys):
    timm = pytest.importorskip("timm")
    sd = timm.create_model("test_vit", pretrained=False).state_dict()
    torch.save(sd, tmp_path / "vit.pth")
    assert main(["verify", str(tmp_path / "vit.pth"), "--no-hash"]) == 2
    assert "name it with --arch timm:NAME" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "vit.pth"), "--no-hash", "--arch", "timm:test_vit"]) == 0
    capsys.readouterr()
    sd["head.extra"] = torch.zeros(1)
    torch.save(sd, tmp_path / "vit2.pth")
    assert main(["verify", str(tmp_path / "vit2.pth"), "--no-hash", "--arch", "timm:test_vit"]) == 2
    assert "unexpected key(s): head.extra" in capsys.readouterr().err


def test_bad_invocations_exit_2(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nothing-here")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["verify", str(tmp_path), "--arch", "keras:x"]) == 2
    assert "expected open_clip:NAME or timm:NAME" in capsys.readouterr().err

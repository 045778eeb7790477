"""Argument validation of ``python -m madpad.demo`` and the wiring of the real-weight options
(DCMorph, CLIP foundation detector, YOLO, rembg) through the params of ``pipelines/demo.yaml``
into the library calls the stages make. Nothing here loads a model: each check stops before any
heavy work."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from madpad import demo
from madpad.errors import UsageError
from madpad.pipeline.stages.demo import detect, generate, tshirt


def _run(argv) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = demo.main(argv)
        except SystemExit as exc:  # argparse errors
            rc = exc.code
    return rc, err.getvalue()


def _opts(tmp_path, *extra) -> demo.DemoOptions:
    args = demo.build_parser().parse_args(["--out", str(tmp_path / "out"), *extra])
    return demo.options_from_args(args)


def test_parse_steps_order_all_and_unknown():
    assert demo.parse_steps("detect,generate") == ("generate", "detect")
    assert demo.parse_steps("all") == demo.STEPS
    with pytest.raises(UsageError, match=r"unknown step 'tshrit' \(did you mean 'tshirt'\?\)"):
        demo.parse_steps("generate,tshrit")
    with pytest.raises(UsageError, match="--steps is empty"):
        demo.parse_steps(" , ")


@pytest.mark.parametrize("argv, message", [
    (["--steps", "morphs"], "unknown step 'morphs'"),
    (["--dcmorph-base-model", "/nonexistent/sdxl"], "also needs --dcmorph-ip-adapter and --dcmorph-face-encoder"),
    (["--clip-checkpoint", "/nonexistent/clip.bin"], "--clip-checkpoint: not found: /nonexistent/clip.bin"),
    (["--yolo-weights", "/nonexistent/yolov8n.pt"], "--yolo-weights: file not found"),
    (["--rembg-models", "/nonexistent/rembg"], "--rembg-models: folder not found"),
    (["--data", "/nonexistent/images.csv"], "not 'sample', 'frll', a folder or an existing manifest file"),
    (["--root", "/tmp"], "--root applies to --data frll or a manifest"),
])
def test_bad_options_exit_2_with_a_clear_message(tmp_path, argv, message):
    rc, err = _run(["--out", str(tmp_path / "out"), *argv])
    assert rc == 2
    assert message in err
    assert not (tmp_path / "out").exists()  # nothing written for bad input


def test_argparse_rejects_non_positive_sizes(tmp_path):
    rc, err = _run(["--out", str(tmp_path), "--pairs", "0"])
    assert rc == 2 and "expected a positive integer" in err


def test_data_frll_needs_a_root(tmp_path, monkeypatch):
    monkeypatch.delenv("MADPAD_SHARED", raising=False)
    rc, err = _run(["--out", str(tmp_path / "o"), "--data", "frll"])
    assert rc == 2 and "--data frll needs --root FOLDER" in err
    monkeypatch.setenv("MADPAD_SHARED", str(tmp_path / "nowhere"))
    rc, err = _run(["--out", str(tmp_path / "o"), "--data", "frll"])
    assert rc == 2 and f"FRLL folder not found: {tmp_path / 'nowhere' / 'data' / 'frll'}" in err


def test_out_must_be_a_folder(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    rc, err = _run(["--out", str(f)])
    assert rc == 2 and "exists and is not a folder" in err


def test_dcmorph_options_are_checked_and_passed_to_the_generator(tmp_path):
    base = tmp_path / "sdxl"
    base.mkdir()
    adapter = tmp_path / "ip-adapter-faceid_sdxl.bin"
    onnx = tmp_path / "w600k_r50.onnx"
    common = ["--dcmorph-base-model", str(base), "--dcmorph-ip-adapter", str(adapter)]
    with pytest.raises(UsageError, match="--dcmorph-ip-adapter: file not found"):
        _opts(tmp_path, *common, "--dcmorph-face-encoder", f"arcface_onnx:model_path={onnx}")
    adapter.write_bytes(b"\0")
    with pytest.raises(UsageError, match="--dcmorph-face-encoder: model_path=.*: file not found"):
        _opts(tmp_path, *common, "--dcmorph-face-encoder", f"arcface_onnx:model_path={onnx}")
    onnx.write_bytes(b"\0")
    o = _opts(tmp_path, *common, "--dcmorph-face-encoder", f"arcface_onnx:model_path={onnx}", "--dcmorph-steps", "12")
    params = demo.dcmorph_params(o)
    assert params == {"base_model": str(base.resolve()), "ip_adapter": str(adapter.resolve()),
                      "face_encoder": f"arcface_onnx:model_path={onnx}", "steps": 12, "device": "auto"}
    # the generator's own validation accepts exactly these options (no model is loaded here)
    from madpad.morph.dcmorph.generator import make_settings

    s = make_settings(**params)
    assert s.base_model == str(base.resolve()) and s.steps == 12
    # the pipeline param carries them, and the attack family joins the morph methods (so every later
    # step sees it)
    pp = demo.pipeline_params(o)
    assert pp["dcmorph"] == params
    assert generate.morph_methods(pp) == ["landmark", "landmark_spliced", "dcmorph"]
    assert generate.morph_methods(demo.pipeline_params(_opts(tmp_path))) == ["landmark", "landmark_spliced"]


def test_clip_checkpoint_file_fine_tunes_the_foundation_detector(tmp_path):
    ckpt = tmp_path / "ViT-B-16-openai.bin"
    ckpt.write_bytes(b"\0")
    o = _opts(tmp_path, "--clip-checkpoint", str(ckpt), "--clip-model", "madpad-tiny-vit", "--clip-epochs", "2")
    dets = detect.mad_detectors(demo.pipeline_params(o)["clip"], progress=False)
    name, params, trained = dets["foundation"]
    assert name == "foundation" and trained is None
    assert params["pretrained"] == str(ckpt.resolve()) and params["backbone"] == "madpad-tiny-vit"
    assert params["model_config"] == "madpad-tiny-vit"  # shipped open_clip config registered before building
    assert params["epochs"] == 2 and params["face_crop"] == "dlib_hog"
    # the detector class accepts every option (FoundationConfig validation, nothing built yet)
    from madpad.mad.foundation import FoundationDetector

    det = FoundationDetector(**params)
    assert det.config.pretrained == str(ckpt.resolve())
    # training adds the class's defaults: a resumable state folder inside the stage's scratch space
    state = tmp_path / "scratch" / "foundation"
    tp = detect.training_params(name, params, state_dir=state, seed=4)
    assert tp == {**params, "checkpoint_dir": str(state / "_train_state"), "seed": 4}
    assert FoundationDetector(**tp).config.checkpoint_dir == str(state / "_train_state")
    assert detect.training_params("embedding_logreg", {"C": 1.0}, state_dir=state, seed=4) == {"C": 1.0}
    # the baselines are always there
    assert {"dlib_distance", "dlib_diff_logreg", "dlib_diff_svm"} <= set(dets)


def test_clip_checkpoint_folder_is_a_trained_detector(tmp_path):
    d = tmp_path / "trained"
    d.mkdir()
    rc, err = _run(["--out", str(tmp_path / "o"), "--clip-checkpoint", str(d)])
    assert rc == 2 and "has no detector.json" in err
    (d / "detector.json").write_text(json.dumps({"detector": "foundation"}))
    o = _opts(tmp_path, "--clip-checkpoint", str(d))
    assert detect.mad_detectors(demo.pipeline_params(o)["clip"])["foundation"] == ("foundation", {}, d)


def test_yolo_weights_add_a_person_detector(tmp_path):
    w = tmp_path / "yolov8n.pt"
    w.write_bytes(b"\0")
    o = _opts(tmp_path, "--yolo-weights", str(w))
    configs = tshirt.tshirt_detectors(demo.pipeline_params(o)["yolo_weights"])
    assert configs["pose+dlib_hog"] == ("mediapipe_pose", "dlib_hog")
    person, _ = configs["yolo+dlib_hog"]
    from madpad.pad.tshirt import parse_component

    assert parse_component(person, what="person") == ("yolo", {"weights": str(w.resolve())})
    assert "yolo+dlib_hog" not in tshirt.tshirt_detectors(demo.pipeline_params(_opts(tmp_path))["yolo_weights"])


def test_rembg_models_folder_joins_the_segmentation_study(tmp_path, monkeypatch):
    monkeypatch.delenv("U2NET_HOME", raising=False)
    assert demo.rembg_dir(_opts(tmp_path)) is None
    m = tmp_path / "rembg"
    m.mkdir()
    assert demo.rembg_dir(_opts(tmp_path, "--rembg-models", str(m))) == str(m.resolve())
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "env"))
    assert demo.rembg_dir(_opts(tmp_path)) == str(tmp_path / "env")
    # the folder is a param of the segmentation stages (a new model folder reruns them); rembg IS-Net
    # joins the segmenters only when its model file is there, and the summary notes why it did not
    p1 = demo.pipeline_params(_opts(tmp_path, "--rembg-models", str(m)))
    assert p1["rembg_dir"] == str(m.resolve()) and "rembg_isnet" not in p1["segmenters"]
    (m / "isnet-general-use.onnx").write_bytes(b"\0")
    p2 = demo.pipeline_params(_opts(tmp_path, "--rembg-models", str(m)))
    assert p2["segmenters"] == ["mediapipe_selfie", "landmark_hull", "grabcut", "rembg_isnet"]
    monkeypatch.delenv("U2NET_HOME")
    p0 = demo.pipeline_params(_opts(tmp_path))
    assert p0["rembg_dir"] == "" and p0["segmenters"] == ["mediapipe_selfie", "landmark_hull", "grabcut"]
    from madpad.pipeline.stages.demo.segmentation import demo_segmenters

    assert demo_segmenters(None)[1] == [("rembg IS-Net not used: isnet-general-use.onnx not found in "
                                         "--rembg-models / $U2NET_HOME (neither is set)")]


def test_options_become_the_params_of_the_demo_pipeline(tmp_path):
    """The demo is pipelines/demo.yaml: found in a checkout, loaded with the options' params,
    --out as its workdir, the data's root and manifest fed to the segmentation study."""
    p = demo.pipeline_file()
    assert p is not None and p.name == "demo.yaml" and p.parent.name == "pipelines"
    assert demo.pipeline_file("segmentation_study") == p.parent / "segmentation_study.yaml"
    from madpad.data.sample import sample_manifest_path, sample_root
    from madpad.pipeline.stages.demo.common import load_data

    o = _opts(tmp_path, "--pairs", "6", "--seed", "3", "--tshirt-wearers", "5", "--bootstrap", "0")
    data = load_data(o.data, o.root)
    spec = demo.load_demo_pipeline(o, data)
    assert spec.workdir == (tmp_path / "out").resolve()
    assert spec.order[0] == "data" and spec.order[-1] == "report"
    assert spec.stages["generate"].params == {"pairs": 6, "seed": 3, "dcmorph": None}
    assert spec.stages["tshirt"].params == {"seed": 3, "wearers": 5, "bootstrap": 0, "yolo_weights": None}
    assert spec.stages["seg_images"].inputs["data"] == sample_root()
    assert spec.stages["seg_images"].params["manifest"] == str(sample_manifest_path())
    assert spec.stages["seg_images"].params["n_subjects"] == 6
    # vulnerability and detect read the morphs of generate (input references = dependencies)
    assert "generate" in spec.stages["vulnerability"].deps and "generate" in spec.stages["detect"].deps
    assert "generate" not in spec.stages["tshirt"].deps

"""Argument validation of ``python -m madpad.demo`` and the wiring of the real-weight options
(DCMorph, CLIP foundation detector, YOLO, rembg) into the library calls the steps make.
Nothing here loads a model: each check stops before any heavy work."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from madpad import demo
from madpad.errors import UsageError


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
    # and the attack family joins the morph methods (so every later step sees it)
    ctx = demo.DemoContext(opts=o, data=None, out=tmp_path, progress=False, echo=print)
    assert ctx.morph_methods() == ["landmark", "landmark_spliced", "dcmorph"]


def test_clip_checkpoint_file_fine_tunes_the_foundation_detector(tmp_path):
    ckpt = tmp_path / "ViT-B-16-openai.bin"
    ckpt.write_bytes(b"\0")
    o = _opts(tmp_path, "--clip-checkpoint", str(ckpt), "--clip-model", "madpad-tiny-vit", "--clip-epochs", "2")
    ctx = demo.DemoContext(opts=o, data=None, out=tmp_path / "out", progress=False, echo=print)
    dets = demo.mad_detectors(ctx)
    name, params, trained = dets["foundation"]
    assert name == "foundation" and trained is None
    assert params["pretrained"] == str(ckpt.resolve()) and params["backbone"] == "madpad-tiny-vit"
    assert params["model_config"] == "madpad-tiny-vit"  # shipped open_clip config registered before building
    assert params["epochs"] == 2 and params["face_crop"] == "dlib_hog"
    # the detector class accepts every option (FoundationConfig validation, nothing built yet)
    from madpad.mad.foundation import FoundationDetector

    det = FoundationDetector(**params)
    assert det.config.pretrained == str(ckpt.resolve())
    # the baselines are always there
    assert {"dlib_distance", "dlib_diff_logreg", "dlib_diff_svm"} <= set(dets)


def test_clip_checkpoint_folder_is_a_trained_detector(tmp_path):
    d = tmp_path / "trained"
    d.mkdir()
    rc, err = _run(["--out", str(tmp_path / "o"), "--clip-checkpoint", str(d)])
    assert rc == 2 and "has no detector.json" in err
    (d / "detector.json").write_text(json.dumps({"detector": "foundation"}))
    o = _opts(tmp_path, "--clip-checkpoint", str(d))
    ctx = demo.DemoContext(opts=o, data=None, out=tmp_path, progress=False, echo=print)
    assert demo.mad_detectors(ctx)["foundation"] == ("foundation", {}, d)


def test_yolo_weights_add_a_person_detector(tmp_path):
    w = tmp_path / "yolov8n.pt"
    w.write_bytes(b"\0")
    o = _opts(tmp_path, "--yolo-weights", str(w))
    configs = demo.tshirt_detectors(o)
    assert configs["pose+dlib_hog"] == ("mediapipe_pose", "dlib_hog")
    person, _ = configs["yolo+dlib_hog"]
    from madpad.pad.detector import parse_component

    assert parse_component(person, what="person") == ("yolo", {"weights": str(w.resolve())})
    assert "yolo+dlib_hog" not in demo.tshirt_detectors(_opts(tmp_path))


def test_rembg_models_folder_joins_the_segmentation_study(tmp_path, monkeypatch):
    monkeypatch.delenv("U2NET_HOME", raising=False)
    assert demo._rembg_dir(_opts(tmp_path)) is None
    m = tmp_path / "rembg"
    m.mkdir()
    assert demo._rembg_dir(_opts(tmp_path, "--rembg-models", str(m))) == str(m.resolve())
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "env"))
    assert demo._rembg_dir(_opts(tmp_path)) == str(tmp_path / "env")
    # the option is part of the segmentation step's identity (a new model folder reruns the step)
    o1, o2 = _opts(tmp_path), _opts(tmp_path, "--rembg-models", str(m))
    assert o1.rembg_models != o2.rembg_models


def test_segmentation_pipeline_file_is_found_in_a_checkout(tmp_path):
    p = demo.segmentation_pipeline_file()
    assert p is not None and p.name == "segmentation_study.yaml"
    from madpad.pipeline import load_pipeline

    spec = load_pipeline(p, set_items=["params.segmenters=[mediapipe_selfie, landmark_hull, grabcut]",
                                       "params.n_subjects=2"], workdir=tmp_path / "unused-demo-workdir")
    assert {"segment", "recognition", "report"} <= set(spec.stages)

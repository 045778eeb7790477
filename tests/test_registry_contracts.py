"""Contract tests driven by the registries: every registered component of every kind.

For each (registry, name): the entry loads to a concrete subclass of the kind's interface; it
builds with its declared ``test_params`` (plus the files a user would bring, where the tests
have them) and its core method does what the interface promises on a small real input (the
bundled FRLL sample, tiny random-init models, the shared rembg model); a component that needs a
user file fails without it with a one-line error naming the option; a misspelt parameter is a
UsageError naming the intended one; morph detectors round-trip their checkpoint with identical
scores. A new registered component is covered by these tests without editing this file.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os

import numpy as np
import pytest

from madpad.errors import MadpadError, MissingDependencyError, UsageError
from madpad.face import EMBEDDERS, FACE_DETECTORS, LANDMARKERS, FaceDetection
from madpad.mad import MORPH_DETECTORS, Pair, load_detector
from madpad.morph import MORPH_METHODS
from madpad.morph.dcmorph import IDENTITY_ENCODERS
from madpad.pad import PERSON_DETECTORS, PersonDetection
from madpad.registry import Component
from madpad.segment import SEGMENTERS

from conftest import shared_path

REGISTRIES = [FACE_DETECTORS, LANDMARKERS, EMBEDDERS, PERSON_DETECTORS, SEGMENTERS, MORPH_DETECTORS, MORPH_METHODS,
              IDENTITY_ENCODERS]
ENTRIES = [pytest.param(reg, name, id=f"{reg.kind}:{name}") for reg in REGISTRIES for name in reg.names()]

#: Entries with random-init test models: their outputs are checked for form only.
RANDOM_INIT = {("face detector", "yolo"), ("person detector", "yolo"), ("face embedder", "open_clip"),
               ("face embedder", "arcface_onnx")}
#: Person detectors that must find the subject of a head-and-shoulders portrait (HOG is trained on
#: full-body pedestrians and rarely fires on portraits).
FINDS_PORTRAIT_PERSON = {"mediapipe_pose", "mediapipe_selfie", "centernet", "nanodet"}

pytestmark = pytest.mark.usefixtures("torch_one_thread")


# --------------------------------------------------------------------------- inputs
@pytest.fixture(scope="module")
def sample():
    """Three bundled FRLL subjects: neutral and smiling images, eye centres from the .tem files."""
    from madpad.data.sample import sample_root
    from madpad.io import read_image
    from madpad.morph.warp import read_tem

    root = sample_root()
    out = {}
    for s in ("001", "004", "007"):
        out[s] = {"neutral": read_image(root / "neutral" / f"{s}_03.jpg"),
                  "smiling": read_image(root / "smiling" / f"{s}_08.jpg"),
                  "eyes": read_tem(root / "landmarks" / f"{s}_03.tem")[:2]}  # points 0, 1: the pupils
    return out


def _small(image, side=320):
    import cv2

    f = side / max(image.shape[:2])
    return cv2.resize(image, (round(image.shape[1] * f), round(image.shape[0] * f)), interpolation=cv2.INTER_AREA), f


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """A tiny ArcFace-shaped ONNX graph (N,3,112,112 -> N,8): mean-pool per channel, then a fixed
    3x8 projection. Stands in for the user's recognition model."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["data"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "w"], ["embedding"])],
        "tiny", [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["n", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", 8])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    onnx.save(model, str(path))
    return path


#: rembg models in the shared folder (``$MADPAD_SHARED/models/rembg``; see its README)
SHARED_REMBG_MODELS = {"isnet-general-use"}


def user_files(reg, name, tiny_onnx_path) -> dict:
    """The files a user brings for entries that declare ``required_files``, where the tests have
    one: the tiny ONNX model, the shared rembg IS-Net model."""
    if reg is EMBEDDERS and name == "arcface_onnx":
        return {"model_path": str(tiny_onnx_path)}
    if reg is SEGMENTERS and reg.get(name).target_name.endswith(":RembgSegmenter"):
        model = reg.get(name).defaults.get("model", "isnet-general-use")
        if model in SHARED_REMBG_MODELS:
            return {"model_dir": str(shared_path(f"models/rembg/{model}.onnx").parent)}
    shared_model = reg.get(name).meta.get("shared_model")  # e.g. the ONNX person detectors
    if shared_model:
        return {"model_path": str(shared_path(f"models/person/{shared_model}"))}
    return {}


def _build(reg, name, params):
    try:
        return reg.create(name, **params)
    except MissingDependencyError as exc:
        pytest.skip(str(exc))


def _one_line_error_naming(exc: BaseException, options) -> None:
    msg = str(exc)
    assert isinstance(exc, MadpadError), f"{type(exc).__name__}: {msg}"
    assert "\n" not in msg.strip(), msg
    assert any(o in msg or "--" + o.replace("_", "-") in msg for o in options), (options, msg)


# --------------------------------------------------------------------------- core methods per kind
def _face_detector(det, sample, expect_real):
    img, f = _small(sample["001"]["neutral"])
    dets = det.detect(img)
    assert isinstance(dets, list) and all(isinstance(d, FaceDetection) for d in dets)
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)
    h, w = img.shape[:2]
    for d in dets:
        assert 0 <= d.box[0] <= d.box[2] <= w and 0 <= d.box[1] <= d.box[3] <= h
    if expect_real:
        assert dets, "no face found in a frontal portrait"
        eyes = sample["001"]["eyes"] * f
        x0, y0, x1, y1 = dets[0].box
        assert all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in eyes), (dets[0].box, eyes)


def _landmarker(lm, sample):
    img = sample["004"]["neutral"]
    eyes = sample["004"]["eyes"]
    iod = float(np.linalg.norm(eyes[1] - eyes[0]))
    c = eyes.mean(axis=0) + [0, 0.5 * iod]  # face box around the eyes, nose and mouth
    box = [c[0] - 1.2 * iod, c[1] - 1.3 * iod, c[0] + 1.2 * iod, c[1] + 1.3 * iod]
    pts = lm.landmarks(img, box)
    assert pts.ndim == 2 and pts.shape[1] == 2 and np.isfinite(pts).all()
    five = lm.to_landmarks5(pts)
    assert five.shape == (5, 2)
    # the two eye points land on the annotated pupils (within a quarter of the inter-eye distance)
    assert np.linalg.norm(five[:2] - eyes, axis=1).max() < 0.25 * iod, (five[:2], eyes)


def _embedder(emb, sample, expect_real):
    v = emb.embed([sample["001"]["neutral"], sample["001"]["smiling"], sample["007"]["neutral"]])
    assert v.shape == (3, emb.dim) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert isinstance(emb.id, str) and emb.id
    if expect_real:  # the same person (other expression) is closer than another person
        assert float(v[0] @ v[1]) > float(v[0] @ v[2])


def _person_detector(det, sample, name):
    img = sample["007"]["neutral"]
    persons = det.detect(img)
    assert isinstance(persons, list) and all(isinstance(p, PersonDetection) for p in persons)
    assert [p.score for p in persons] == sorted((p.score for p in persons), reverse=True)
    if name in FINDS_PORTRAIT_PERSON:
        assert persons, "no person found in a head-and-shoulders portrait"
        mid = sample["007"]["eyes"].mean(axis=0)
        x0, y0, x1, y1 = persons[0].box
        assert x0 <= mid[0] <= x1 and y0 <= mid[1] <= y1


def _segmenter(seg, sample):
    img, f = _small(sample["001"]["neutral"], 256)
    matte = seg.segment(img)
    assert matte.shape == img.shape[:2] and matte.dtype == np.float32
    assert 0.0 <= float(matte.min()) and float(matte.max()) <= 1.0
    eyes = sample["001"]["eyes"] * f
    x, y = np.round(eyes.mean(axis=0)).astype(int)
    assert matte[y - 3:y + 4, x - 3:x + 4].mean() > 0.5  # the face is foreground
    assert matte[:12, :12].mean() < 0.5 and matte[:12, -12:].mean() < 0.5  # the top corners are backdrop
    json.dumps(seg.params())


def _identity_encoder(enc, sample):
    a, b = _small(sample["001"]["neutral"], 64)[0], _small(sample["004"]["neutral"], 64)[0]
    v = enc.embed([a, b, a])
    assert v.shape == (3, enc.dim) and v.dtype == np.float32
    assert np.array_equal(v[0], v[2]) and not np.allclose(v[0], v[1])


def _morph_method(gen, sample, name):
    if name == "dcmorph":  # tiny random-init diffusion models: small random sources
        rng = np.random.default_rng(0)
        a, b = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    else:
        a, b = _small(sample["001"]["neutral"], 300)[0], _small(sample["007"]["neutral"], 300)[0]
    m = gen.morph(a, b, alpha=0.5, seed=3)
    assert m.dtype == np.uint8 and m.ndim == 3 and m.shape[2] == 3
    assert not np.array_equal(m, a) and not (m.shape == b.shape and np.array_equal(m, b))
    assert np.array_equal(gen.morph(a, b, alpha=0.5, seed=3), m)  # deterministic for a seed
    json.dumps(gen.params(), default=str)


# --------------------------------------------------------------------------- morph detector data
@pytest.fixture(scope="module")
def face_pairs(sample):
    """Bona fide (neutral vs smiling of the same subject) and crude blend "morphs" of the sample."""
    subjects = list(sample)
    pairs = []
    for i, s in enumerate(subjects):
        other = sample[subjects[(i + 1) % len(subjects)]]["neutral"]
        blend = ((sample[s]["neutral"].astype(np.float64) + other) / 2).astype(np.uint8)
        pairs.append(Pair(f"b{s}", sample[s]["neutral"], sample[s]["smiling"], "bona_fide", "", (s,)))
        pairs.append(Pair(f"a{s}", blend, sample[s]["smiling"], "attack", "blend", (s,)))
    return pairs


@pytest.fixture(scope="module")
def feature_cache():
    from madpad.mad.cache import FeatureCache

    return FeatureCache()  # FR features shared by the embedding detectors


def _morph_detector(det, reg, name, face_pairs, feature_cache, tmp_path):
    from madpad.mad.base import read_header
    from madpad.mad.synthetic import synthetic_pairs

    # the face-based detectors need faces; the foundation ones learn the synthetic task
    pairs = face_pairs if reg.get(name).extra == "face" else synthetic_pairs(16, seed=1)
    kwargs = {"cache": feature_cache} if "cache" in inspect.signature(det.fit).parameters else {}
    assert det.fit(pairs, **kwargs) is det
    s = det.score(pairs, cache=feature_cache)
    assert s.dtype == np.float64 and s.shape == (len(pairs),) and np.isfinite(s).all()
    det.save(tmp_path / "ck")
    assert read_header(tmp_path / "ck")["detector"] == type(det).checkpoint_kind
    back = load_detector(tmp_path / "ck", **type(det).runtime_overrides(progress=False, device="cpu"))
    assert type(back) is type(det)
    np.testing.assert_array_equal(back.score(pairs, cache=feature_cache), s)


# --------------------------------------------------------------------------- the contract
def test_every_kind_has_an_abstract_interface():
    for reg in REGISTRIES:
        assert reg.interface is not None, reg.kind
        assert inspect.isabstract(reg.interface) and issubclass(reg.interface, Component), reg.kind
        assert len(reg) > 0


@pytest.mark.parametrize("reg, name", ENTRIES)
def test_entry_loads_a_concrete_subclass_of_its_interface(reg, name):
    try:
        cls = reg.load(name)
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    assert isinstance(cls, type) and issubclass(cls, reg.interface) and not inspect.isabstract(cls)
    entry = reg.get(name)
    params = reg.parameters(name)
    declared = {**entry.defaults, **(entry.test_params or {})}
    if params is not None:  # defaults, test params and required files are constructor parameters
        assert set(declared) <= set(params), set(declared) - set(params)
        assert set(cls.required_files) <= set(params)


@pytest.mark.parametrize("reg, name", ENTRIES)
def test_entry_builds_and_keeps_its_interface_promise(reg, name, sample, tiny_onnx, face_pairs, feature_cache,
                                                      tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "yolo"))
    monkeypatch.delenv("U2NET_HOME", raising=False)
    entry = reg.get(name)
    params = {**(entry.test_params or {}), **user_files(reg, name, tiny_onnx)}
    missing = [f for f in reg.load(name).required_files if f not in params]
    try:
        _check_core(reg, name, _build(reg, name, params), sample, face_pairs, feature_cache, tmp_path)
    except MadpadError as exc:
        if not missing:
            raise
        # no file for it here (e.g. rembg models other than IS-Net): the one-line error instead
        _one_line_error_naming(exc, missing)


def _check_core(reg, name, obj, sample, face_pairs, feature_cache, tmp_path):
    assert isinstance(obj, reg.interface)
    key = (reg.kind, name)
    if reg is FACE_DETECTORS:
        _face_detector(obj, sample, key not in RANDOM_INIT)
    elif reg is LANDMARKERS:
        _landmarker(obj, sample)
    elif reg is EMBEDDERS:
        _embedder(obj, sample, key not in RANDOM_INIT)
    elif reg is PERSON_DETECTORS:
        _person_detector(obj, sample, name)
    elif reg is SEGMENTERS:
        _segmenter(obj, sample)
    elif reg is MORPH_DETECTORS:
        _morph_detector(obj, reg, name, face_pairs, feature_cache, tmp_path)
    elif reg is MORPH_METHODS:
        _morph_method(obj, sample, name)
    elif reg is IDENTITY_ENCODERS:
        _identity_encoder(obj, sample)
    else:  # a new registry: add its core-method check here
        pytest.fail(f"no contract check for the kind {reg.kind!r}")


FACE_FINDERS = [p for p in ENTRIES if p.values[0] in (FACE_DETECTORS, LANDMARKERS)]


@pytest.mark.parametrize("reg, name", FACE_FINDERS)
def test_face_finder_options_are_all_part_of_the_embedding_cache_identity(reg, name, tmp_path, monkeypatch):
    """Every constructor option of a face detector or landmarker changes the cache identity of
    the embeddings computed with it (or is declared as not changing what it finds), so a cache
    folder reused with other options never serves features found another way."""
    from madpad.face.embed import IDENTITY_IGNORES, _component_id

    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "yolo"))
    obj = _build(reg, name, dict(reg.get(name).test_params or {}))
    base = _component_id(obj)
    ignores = IDENTITY_IGNORES | set(getattr(type(obj), "identity_ignores", ()))
    changed = 0
    for opt in inspect.signature(type(obj).__init__).parameters:
        if opt == "self" or opt in ignores:
            continue
        assert hasattr(obj, opt), f"{name} does not keep its option {opt!r}"
        value = getattr(obj, opt)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float)):
            continue  # numbers are enough to see every option go through
        setattr(obj, opt, value + 1)
        assert _component_id(obj) != base, opt
        setattr(obj, opt, value)
        changed += 1
    assert _component_id(obj) == base
    if name in ("dlib_hog", "dlib_cnn", "haar", "mtcnn", "mediapipe", "mediapipe_mesh"):
        assert changed >= 2  # the check above saw options of these


NEEDS_FILES = [p for p in ENTRIES if p.values[0].load(p.values[1]).required_files]


@pytest.mark.parametrize("reg, name", NEEDS_FILES)
def test_without_its_user_file_it_fails_with_one_line_naming_the_option(reg, name, sample, monkeypatch):
    monkeypatch.delenv("U2NET_HOME", raising=False)
    with pytest.raises(MadpadError) as exc:
        obj = _build(reg, name, {})
        if reg is SEGMENTERS:  # segmenters load their model on first use
            obj.segment(_small(sample["001"]["neutral"], 64)[0])
    _one_line_error_naming(exc.value, reg.load(name).required_files)


def _typo(word: str) -> str:
    return word[:-1] + ("x" if word[-1] != "x" else "y")


@pytest.mark.parametrize("reg, name", ENTRIES)
def test_a_misspelt_parameter_is_a_usage_error_naming_the_intended_one(reg, name):
    entry = reg.get(name)
    valid = reg.parameters(name) or sorted(entry.test_params or {})
    assert valid, "no known parameter to misspell"
    intended = max(valid, key=len)
    with pytest.raises(UsageError) as exc:
        reg.create(name, **{**(entry.test_params or {}), _typo(intended): 1})
    msg = str(exc.value)
    assert "\n" not in msg and _typo(intended) in msg and f"did you mean {intended!r}" in msg, msg


def test_unknown_parameter_message_names_the_kind_entry_and_valid_keys():
    with pytest.raises(UsageError) as exc:
        FACE_DETECTORS.create("dlib_hog", upsmple=2)
    assert str(exc.value) == ("face detector 'dlib_hog': unknown parameter 'upsmple'; did you mean 'upsample'? "
                              "valid: ['equalise', 'max_side', 'threshold', 'upsample', 'upsample_retry']")


def test_a_value_a_constructor_rejects_is_a_usage_error_naming_the_kind_and_entry():
    from madpad.face.embed import EMBEDDERS

    with pytest.raises(UsageError) as exc:  # the CLIs turn UsageError into one line and exit 2
        EMBEDDERS.create("dlib", padding=-0.1)
    assert str(exc.value) == ("face embedder 'dlib': the dlib embedder needs num_jitters >= 0 and a finite "
                              "padding >= 0; got num_jitters=0, padding=-0.1")
    assert isinstance(exc.value.__cause__, ValueError)


def test_checkpoint_kinds_identify_one_class_each():
    kinds = {}
    for name in MORPH_DETECTORS.names():
        cls = MORPH_DETECTORS.load(name)
        assert cls.checkpoint_kind, name
        assert kinds.setdefault(cls.checkpoint_kind, cls) is cls, (name, cls.checkpoint_kind)
    assert kinds["embedding_classifier"] is MORPH_DETECTORS.load("fr_texture")


def test_runtime_options_and_training_defaults_are_declared_on_the_class(tmp_path):
    foundation = MORPH_DETECTORS.load("foundation")
    distance = MORPH_DETECTORS.load("embedding_distance")
    assert foundation.runtime_overrides(device="cuda", batch_size=64, progress=False) == {
        "device": "cuda", "eval_batch_size": 64, "progress": False}
    assert foundation.runtime_overrides(device=None, batch_size=None, progress=False) == {"progress": False}
    assert distance.runtime_overrides(device="cuda", batch_size=64, progress=False) == {"progress": False}
    assert foundation.training_defaults(tmp_path, 7) == {"checkpoint_dir": str(tmp_path / "_train_state"), "seed": 7}
    assert distance.training_defaults(tmp_path, 7) == {}
    assert not distance.trainable and foundation.trainable


@pytest.mark.parametrize("name", MORPH_METHODS.names())
def test_morph_method_options_fit_the_generate_command_line(name, capsys):
    from madpad.generate import main

    assert main(["--method", name, "--help"]) == 0  # no clash with generate's own options
    assert f"{name} options" in capsys.readouterr().out
    p = argparse.ArgumentParser()
    MORPH_METHODS.load(name).add_cli_arguments(p.add_argument_group(name))
    assert p._actions[1:], f"{name} adds no options"


def test_a_lazy_target_imports_only_when_used():
    import subprocess
    import sys

    code = ("import sys, madpad.segment as s, madpad.mad as m, madpad.morph as mm; "
            "print(sorted(x for x in ('madpad.segment.rembg_seg', 'madpad.mad.foundation', "
            "'madpad.morph.landmark') if x in sys.modules)); "
            "s.SEGMENTERS.load('rembg'); print('madpad.segment.rembg_seg' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"}).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True"


# --------------------------------------------------------------------------- the Registry itself
class _Shape(Component):
    def area(self):
        raise NotImplementedError


class _Square(_Shape):
    def __init__(self, *, side: float, colour: str = "red"):
        self.side, self.colour = side, colour


def test_registry_lazy_targets_interfaces_and_parameter_checks(tmp_path, monkeypatch):
    from madpad.registry import Registry

    (tmp_path / "madpad_test_shapes.py").write_text(
        "from test_registry_contracts import _Square\n"
        "class Circle:\n    pass\n")
    (tmp_path / "madpad_test_needs_pkg.py").write_text("import madpad_zz_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("shape", _Shape)
    reg.register("square", "madpad_test_shapes:_Square", defaults={"colour": "blue"})
    reg.register("circle", "madpad_test_shapes:Circle")
    reg.register("needs_pkg", "madpad_test_needs_pkg:X", extra="segment")
    reg.register("typo", "madpad.segment.no_such_module:X")
    import sys

    assert "madpad_test_shapes" not in sys.modules  # registering imports nothing
    sq = reg.create("square", side=2.0)
    assert isinstance(sq, _Square) and (sq.side, sq.colour) == (2.0, "blue")
    assert reg.parameters("square") == ["colour", "side"]
    with pytest.raises(UsageError, match=r"shape 'square': missing required parameter\(s\) \['side'\]"):
        reg.create("square")
    with pytest.raises(UsageError) as exc:
        reg.create("square", side=1, sdie=2, colur="x")
    assert str(exc.value) == ("shape 'square': unknown parameters 'colur' (did you mean 'colour'?), 'sdie' "
                              "(did you mean 'side'?); valid: ['colour', 'side']")
    with pytest.raises(TypeError, match="must be a class that subclasses"):
        reg.load("circle")  # checked when the lazy target is first loaded
    with pytest.raises(TypeError, match="must be a class that subclasses"):
        reg.register("bad", dict)  # and at once for a class target
    with pytest.raises(MissingDependencyError, match=r"needs the package 'madpad_zz_not_installed'.*madpad\[segment\]"):
        reg.load("needs_pkg")
    with pytest.raises(ImportError, match="does not exist"):
        reg.load("typo")
    with pytest.raises(ValueError, match="package.module:Attr"):
        reg.register("nocolon", "madpad.segment")

"""The pretrained ONNX FR networks (madpad.face.fr_onnx) on real FRLL photos from the shared folder.

The figures the shared models/fr/README.md reports (recommended crops: genuine and impostor scores
fully separated, d' 5.8 - 7.4 on 40 subjects) are reproduced on 16 subjects, and the wrong
preprocessings of the README's table ([-1, 1] input scaling, a dlib chip for mobileface) fail the
same checks. Face analyses are computed once per image and shared by every model.
"""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from conftest import shared_path

from madpad.errors import MadpadError, MissingDependencyError, UsageError
from madpad.face import EMBEDDERS, analyze_face, get_embedder

N_SUBJECTS = 16
MODELS = ("mobileface", "hse_faceres", "faceapi_resnet128")


@pytest.fixture(scope="module")
def shared_env():
    """MADPAD_SHARED set to the shared folder for this module (the embedders' default location)."""
    root = shared_path("models/fr/mobileface.onnx").parents[2]
    mp = pytest.MonkeyPatch()
    mp.setenv("MADPAD_SHARED", str(root))
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def frll_analyses(shared_env):
    """(subjects, analyses of the neutral photos, analyses of the smiling photos) of the first
    N_SUBJECTS FRLL subjects (dlib HOG + 68 landmarks, images kept)."""
    frll = shared_path("data/frll")
    with open(frll / "subjects.csv", newline="") as fh:
        subjects = [r["subject"] for r in csv.DictReader(fh)][:N_SUBJECTS]
    det = {"name": "dlib_hog", "upsample": 0}
    neutral = [analyze_face(frll / "neutral" / f"{s}_03.jpg", detector=det, keep_image=True) for s in subjects]
    smiling = [analyze_face(frll / "smiling" / f"{s}_08.jpg", detector=det, keep_image=True) for s in subjects]
    assert all(a.ok for a in neutral + smiling)
    return subjects, neutral, smiling


@pytest.fixture(scope="module")
def embedders(shared_env):
    return {n: get_embedder(n, batch_size=8) for n in MODELS}


def _scores(emb, neutral, smiling, crops=None):
    """Genuine (neutral vs smiling of a subject) and impostor (all other neutral x smiling) cosines."""
    if crops is None:
        crops = [emb.face_chip(a.image, a) for a in neutral + smiling]
    v = emb.embed_aligned(crops)
    n = len(neutral)
    S = v[:n] @ v[n:].T
    return np.diag(S), S[~np.eye(n, dtype=bool)]


def _separation(gen, imp):
    d = (gen.mean() - imp.mean()) / np.sqrt((gen.var() + imp.var()) / 2)
    return float(gen.min() - imp.max()), float(d)


@pytest.mark.parametrize("name, min_d", [("mobileface", 6.5), ("hse_faceres", 6.5), ("faceapi_resnet128", 5.6)])
def test_recommended_crop_separates_genuine_from_impostor_on_frll(name, min_d, embedders, frll_analyses):
    # README, 40 subjects: every genuine score above every impostor score (gap > 0); d' 7.3 / 7.4 / 5.8
    _, neutral, smiling = frll_analyses
    gen, imp = _scores(embedders[name], neutral, smiling)
    gap, d = _separation(gen, imp)
    assert gap > 0, (name, gen.min(), imp.max())
    assert d > min_d, (name, d)


def test_wrong_input_scaling_breaks_hse_faceres(embedders, frll_analyses):
    # README: scaling the input to [-1, 1] (the graph expects 0..255) gives EER 33 %, d' 0.5
    emb = embedders["hse_faceres"]
    _, neutral, smiling = frll_analyses
    crops = np.stack([emb.face_chip(a.image, a) for a in neutral + smiling]).astype(np.float32)
    sess = emb._session()
    raw = sess.run([emb.output], {sess.get_inputs()[0].name: crops / 127.5 - 1.0})[0]
    v = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    n = len(neutral)
    S = v[:n] @ v[n:].T
    gap, d = _separation(np.diag(S), S[~np.eye(n, dtype=bool)])
    assert gap < 0 and d < 2.0, (gap, d)


def test_mobileface_needs_the_arcface_alignment(shared_env, frll_analyses):
    # README: a dlib chip resized to 112 instead of the 5-point ArcFace alignment: EER 10-12 %, d' 2.3
    _, neutral, smiling = frll_analyses
    gen, imp = _scores(get_embedder("mobileface", crop="dlib_chip"), neutral, smiling)
    gap, d = _separation(gen, imp)
    assert gap < 0 and d < 4.0, (gap, d)


def test_faceapi_is_a_port_of_dlib_not_an_independent_system(embedders, frll_analyses):
    # on the same dlib chips the two 128-D descriptors agree to a cosine of about 0.9997
    _, neutral, _ = frll_analyses
    dlib_emb = get_embedder("dlib", detector={"name": "dlib_hog", "upsample": 0})
    chips = [dlib_emb.face_chip(a.image, a) for a in neutral]
    fa = embedders["faceapi_resnet128"]
    np.testing.assert_array_equal(chips[0], fa.face_chip(neutral[0].image, neutral[0]))
    cos = np.sum(dlib_emb.embed_aligned(chips) * fa.embed_aligned(chips), axis=1)
    assert cos.min() > 0.999, cos
    assert type(fa).port_of == "dlib" and type(embedders["mobileface"]).port_of is None


def test_embeddings_are_unit_norm_and_batched_like_single_images(embedders, frll_analyses):
    _, neutral, _ = frll_analyses
    images = [a.image for a in neutral[:3]]
    for emb in embedders.values():
        v = emb.embed(images)
        assert v.shape == (3, emb.dim) and v.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
        one = np.stack([emb.embed_one(im) for im in images])  # one image per network run
        np.testing.assert_allclose(v, one, atol=2e-5)
    # batch_size 1 vs 8 (embedders fixture) vs 2: the same vectors
    b2 = get_embedder("hse_faceres", batch_size=2).embed(images)
    np.testing.assert_allclose(b2, embedders["hse_faceres"].embed(images), atol=2e-5)


def test_crop_shapes_and_ids(embedders, frll_analyses):
    _, neutral, _ = frll_analyses
    a = neutral[0]
    for name, emb in embedders.items():
        c = emb.face_chip(a.image, a)
        assert c.shape == (emb.input_size, emb.input_size, 3) and c.dtype == np.uint8
        assert emb.model_id.startswith(f"{name}:{emb.sha256[:16]}|crop={emb.default_crop}")
    box = get_embedder("faceapi_resnet128", crop="box")
    assert box.face_chip(a.image, a).shape == (150, 150, 3) and box.id != embedders["faceapi_resnet128"].id


def test_missing_shared_folder_is_a_one_line_error_naming_file_and_option(monkeypatch):
    monkeypatch.delenv("MADPAD_SHARED", raising=False)
    with pytest.raises(MissingDependencyError) as exc:
        get_embedder("mobileface")
    msg = str(exc.value)
    assert "\n" not in msg and "mobileface.onnx" in msg and "MADPAD_SHARED" in msg and "model_path" in msg


def test_missing_file_at_model_path(tmp_path, monkeypatch):
    monkeypatch.setenv("MADPAD_SHARED", str(tmp_path))  # set, but the file is not there
    with pytest.raises(MissingDependencyError, match=r"hse_faceres: model file not found: .*models/fr/hse_faceres.onnx"):
        get_embedder("hse_faceres")
    with pytest.raises(MissingDependencyError, match=r"model file not found: .*nope.onnx \(from model_path="):
        get_embedder("hse_faceres", model_path=str(tmp_path / "nope.onnx"))


def test_a_different_file_is_refused_by_sha256(tmp_path, shared_env):
    from madpad.face.fr_onnx import FRModelMismatchError, model_available

    other = tmp_path / "mobileface.onnx"
    shutil.copyfile(shared_env / "models" / "fr" / "faceapi_resnet128.onnx", other)
    with pytest.raises(FRModelMismatchError) as exc:
        get_embedder("mobileface", model_path=str(other))
    msg = str(exc.value)
    assert isinstance(exc.value, UsageError) and "\n" not in msg
    assert str(other) in msg and "sha256" in msg and "model_path" in msg
    assert not model_available("mobileface", model_path=str(other))
    assert model_available("mobileface") and model_available("dlib")
    # check_sha256=false accepts it (a user's file of the same architecture); the id records its digest
    emb = get_embedder("faceapi_resnet128", model_path=str(other), check_sha256=False)
    assert emb.model_id.startswith("faceapi_resnet128:c9f2e3cf7790143d")


def test_bad_options_are_usage_errors(shared_env):
    with pytest.raises(UsageError, match="crop must be one of"):
        get_embedder("mobileface", crop="center")
    with pytest.raises(UsageError, match="landmarker must be 'dlib68' or 'dlib5'"):
        get_embedder("faceapi_resnet128", landmarker="mediapipe_mesh")
    with pytest.raises(ValueError, match=r"crops must have shape \(N, 112, 112, 3\)"):
        get_embedder("mobileface").embed_aligned([np.zeros((150, 150, 3), np.uint8)])
    with pytest.raises(UsageError, match="did you mean 'batch_size'"):
        get_embedder("mobileface", batch_sise=4)


def test_registered_lazily_with_the_face_extra():
    import subprocess
    import sys

    for name in MODELS:
        e = EMBEDDERS.get(name)
        assert e.target_name.startswith("madpad.face.fr_onnx:") and e.extra == "face"
    code = ("import sys, madpad.face as f; f.list_embedders(); "
            "print('madpad.face.fr_onnx' in sys.modules, 'onnxruntime' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False False"


def test_errors_are_madpad_errors():
    from madpad.face.fr_onnx import FRModelMismatchError, FRModelNotFoundError

    assert issubclass(FRModelNotFoundError, MadpadError) and issubclass(FRModelMismatchError, MadpadError)


def test_split_system_args():
    from madpad.generate import split_system_args

    assert split_system_args(["dlib,mobileface", "hse_faceres"]) == ["dlib", "mobileface", "hse_faceres"]
    assert split_system_args(["arcface_onnx:model_path=m.onnx,color=BGR@arc,dlib@d,faceapi_resnet128"]) == [
        "arcface_onnx:model_path=m.onnx,color=BGR@arc", "dlib@d", "faceapi_resnet128"]
    with pytest.raises(UsageError, match="no FR system"):
        split_system_args([" , "])


def test_split_system_args_offline_keeps_the_systems_found(monkeypatch, tmp_path, shared_env):
    from madpad.generate import split_system_args

    assert split_system_args(["offline"]) == ["dlib", "mobileface", "hse_faceres", "faceapi_resnet128"]
    monkeypatch.setenv("MADPAD_SHARED", str(tmp_path))  # no models here: dlib alone
    assert split_system_args(["offline", "dlib"]) == ["dlib"]


def test_compare_cli_with_comma_separated_systems(tmp_path, sample_dir, shared_env, capsys):
    """Two systems in one --systems value; a bundled photo stands in for a morph of 001 and 004."""
    import csv as _csv

    from madpad.generate import main

    with open(tmp_path / "morphs.csv", "w", newline="") as fh:
        w = _csv.writer(fh)
        w.writerow(["id", "path", "subject_a", "subject_b", "method", "status"])
        w.writerow(["m1", "neutral/001_03.jpg", "001", "004", "landmark", "ok"])
    rows = [["id", "path", "subject", "label", "capture"]]
    for s in ("001", "004", "007"):
        rows += [[f"{s}_03", f"neutral/{s}_03.jpg", s, "bona_fide", "enrolment"],
                 [f"{s}_08", f"smiling/{s}_08.jpg", s, "bona_fide", "probe"]]
    with open(tmp_path / "images.csv", "w", newline="") as fh:
        _csv.writer(fh).writerows(rows)
    rc = main(["compare", "--morphs", str(tmp_path / "morphs.csv"), "--morph-root", str(sample_dir),
               "--probes", str(tmp_path / "images.csv"), "--root", str(sample_dir), "--probe-capture", "probe",
               "--reference-capture", "enrolment", "--systems", "dlib,mobileface", "--out", str(tmp_path / "s.csv"),
               "--no-cache", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    with open(tmp_path / "s.csv", newline="") as fh:
        out = list(_csv.DictReader(fh))
    count = {}
    for r in out:
        count[(r["system"], r["kind"])] = count.get((r["system"], r["kind"]), 0) + 1
    # per system: 3 genuine (reference vs own probe), 3 x 2 impostor, the morph vs the probes of 001 and 004
    assert count == {(s, k): n for s in ("dlib", "mobileface") for k, n in
                     (("genuine", 3), ("impostor", 6), ("morph", 2))}
    # the "morph" is 001's own photo: it matches 001's probe better than 004's in both systems
    for s in ("dlib", "mobileface"):
        m = {r["probe_subject"]: float(r["score"]) for r in out if r["system"] == s and r["kind"] == "morph"}
        assert m["001"] > m["004"]

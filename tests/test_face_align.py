"""Alignment, landmark conversions, similarity and face selection (mostly pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from madpad.errors import FaceNotFoundError
from madpad.face import (
    ARCFACE_TEMPLATE,
    FaceDetection,
    MultipleFacesError,
    align_arcface,
    align_portrait,
    apply_transform,
    cosine_similarity,
    estimate_landmarks5,
    invert_transform,
    landmarks68_to_5,
    portrait_eye_targets,
    select_face,
    similarity_matrix,
    similarity_transform,
    to_landmarks5,
)


def _similarity(theta, scale, tx, ty):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])


def test_similarity_transform_recovers_known_transform(rng):
    src = rng.uniform(0, 100, size=(7, 2))
    M_true = _similarity(0.3, 1.7, 12.0, -5.0)
    dst = apply_transform(M_true, src)
    M = similarity_transform(src, dst)
    np.testing.assert_allclose(M, M_true, atol=1e-9)
    # never a reflection, even when the best fit would be one
    mirrored = src * np.array([-1.0, 1.0])
    Mr = similarity_transform(src, mirrored)
    assert np.linalg.det(Mr[:, :2]) > 0


def test_similarity_transform_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        similarity_transform(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="identical"):
        similarity_transform(np.ones((3, 2)), np.zeros((3, 2)))


def test_invert_transform_round_trip(rng):
    M = _similarity(-0.7, 0.4, 3.0, 9.0)
    pts = rng.normal(size=(5, 2))
    np.testing.assert_allclose(apply_transform(invert_transform(M), apply_transform(M, pts)), pts, atol=1e-9)


def test_landmarks68_to_5_hand_computed():
    lm = np.zeros((68, 2))
    lm[36:42] = [[10, 20], [12, 18], [14, 18], [16, 20], [14, 22], [12, 22]]  # mean (13, 20)
    lm[42:48] = [[30, 20], [32, 18], [34, 18], [36, 20], [34, 22], [32, 22]]  # mean (33, 20)
    lm[30] = [23, 30]
    lm[48], lm[54] = [15, 40], [31, 41]
    np.testing.assert_allclose(landmarks68_to_5(lm), [[13, 20], [33, 20], [23, 30], [15, 40], [31, 41]])
    np.testing.assert_allclose(to_landmarks5(lm), landmarks68_to_5(lm))
    with pytest.raises(ValueError, match="68"):
        landmarks68_to_5(np.zeros((67, 2)))
    with pytest.raises(ValueError, match="cannot convert 10"):
        to_landmarks5(np.zeros((10, 2)))


def test_estimate_landmarks5_recovers_template_points():
    M = _similarity(0.2, 3.0, 100.0, 50.0)
    full = apply_transform(M, ARCFACE_TEMPLATE)
    est = estimate_landmarks5({0: full[0], 1: full[1], 2: full[2]})
    np.testing.assert_allclose(est, full, atol=1e-9)


def test_portrait_targets_iso_defaults():
    # ISO/IEC 19794-5 token geometry for W=600: eye line 0.6*W = 360 px down, eyes 0.25*W = 150 px apart
    np.testing.assert_allclose(portrait_eye_targets(), [[225, 360], [375, 360]])
    with pytest.raises(ValueError, match="fractions"):
        portrait_eye_targets(eye_dist=1.5)


def test_align_portrait_puts_eyes_exactly_on_targets_synthetic():
    img = np.full((300, 400, 3), 128, np.uint8)
    lm5 = np.array([[150.0, 140.0], [210.0, 120.0], [180, 170], [160, 200], [205, 195]])
    out, M = align_portrait(img, lm5, size=(200, 260), eye_y=0.4, eye_dist=0.3)
    assert out.shape == (260, 200, 3) and out.dtype == np.uint8
    np.testing.assert_allclose(apply_transform(M, lm5[:2]), [[70, 104], [130, 104]], atol=1e-6)


def test_align_arcface_maps_template_onto_itself_when_scaled(rng):
    img = rng.integers(0, 255, size=(224, 224, 3), dtype=np.uint8)
    lm5 = ARCFACE_TEMPLATE * 2.0
    crop, M = align_arcface(img, lm5, return_matrix=True)
    assert crop.shape == (112, 112, 3)
    np.testing.assert_allclose(apply_transform(M, lm5), ARCFACE_TEMPLATE, atol=1e-9)
    # the transform is a pure downscale by 2
    np.testing.assert_allclose(M[:, :2], np.eye(2) * 0.5, atol=1e-9)


def test_cosine_similarity_hand_values():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [np.nan, 0.0]])
    b = np.array([[0.0, 2.0], [2.0, 2.0], [1.0, 0.0]])
    s = cosine_similarity(a, b)
    np.testing.assert_allclose(s[:2], [0.0, 1.0], atol=1e-12)
    assert np.isnan(s[2])
    assert cosine_similarity([3.0, 4.0], [4.0, -3.0]) == pytest.approx(0.0)
    S = similarity_matrix(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 1.0], [-1.0, 0.0], [0.0, 3.0]]))
    np.testing.assert_allclose(S, [[2**-0.5, -1.0, 0.0], [2**-0.5, 0.0, 1.0]], atol=1e-12)
    with pytest.raises(ValueError, match="dimensions differ"):
        similarity_matrix(np.zeros((2, 3)), np.zeros((2, 4)))


def _det(box, score):
    return FaceDetection(box, score)


def test_select_face_policies():
    big = _det([0, 0, 100, 100], 0.5)      # largest, off-centre
    sure = _det([300, 0, 350, 50], 0.99)   # highest score
    mid = _det([180, 130, 240, 190], 0.7)  # centre (210, 160) = image centre
    dets = [big, sure, mid]
    assert select_face(dets) is big
    assert select_face(dets, "highest_score") is sure
    assert select_face(dets, "most_central", image_shape=(320, 420, 3)) is mid
    with pytest.raises(MultipleFacesError, match="3 faces"):
        select_face(dets, "error_if_multiple")
    assert select_face([mid], "error_if_multiple") is mid
    with pytest.raises(FaceNotFoundError):
        select_face([])
    with pytest.raises(ValueError, match="policy"):
        select_face(dets, "biggest")
    with pytest.raises(ValueError, match="image_shape"):
        select_face(dets, "most_central")


def test_face_detection_validates_and_scales():
    d = FaceDetection([10, 20, 30, 60], 1.0, np.ones((5, 2)))
    assert d.area == 800 and tuple(d.center) == (20, 40)
    d2 = d.scaled(2.0)
    np.testing.assert_allclose(d2.box, [20, 40, 60, 120])
    np.testing.assert_allclose(d2.landmarks5, 2 * np.ones((5, 2)))
    with pytest.raises(ValueError, match="x1 >= x0"):
        FaceDetection([10, 0, 5, 5], 1.0)
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        FaceDetection([0, 0, 5, 5], 1.0, np.zeros((4, 2)))


def test_import_is_light_and_models_are_found_without_pkg_resources():
    import subprocess
    import sys

    code = (
        "import sys, madpad.face as f\n"
        "heavy = [m for m in ('dlib', 'torch', 'cv2', 'mediapipe', 'onnxruntime', 'ultralytics') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "p = f.dlib_model_path('shape68')\n"
        "assert p.is_file(), p\n"
        "assert 'pkg_resources' not in sys.modules and 'face_recognition_models' not in sys.modules\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "MADPAD_DLIB_MODELS"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_dlib_models_env_override(tmp_path, monkeypatch):
    from madpad.face import dlib_model_path, dlib_models_dir

    monkeypatch.setenv("MADPAD_DLIB_MODELS", str(tmp_path))
    assert dlib_models_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="shape_predictor_5_face_landmarks.dat"):
        dlib_model_path("shape5")
    assert dlib_models_dir(tmp_path / "x") == tmp_path / "x"  # the parameter wins over the variable

"""madpad.segment: segmenters on a real FRLL portrait, background replacement, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from madpad.errors import UnknownComponentError
from madpad.io import read_image
from madpad.segment import (
    ICAO_LIGHT_GREY,
    FaceHint,
    ModelFileNotFoundError,
    get_segmenter,
    list_segmenters,
    replace_background,
    segmenter_spec,
)


@pytest.fixture(scope="module")
def portrait(sample_dir):
    """A bundled FRLL portrait (600x600, plain backdrop) and its face hint from madpad.face."""
    from madpad.face import analyze_face

    img = read_image(sample_dir / "neutral" / "001_03.jpg")
    a = analyze_face(img, detector={"name": "dlib_hog", "upsample": 0}, landmarker="dlib68")
    assert a.status == "ok", a.error
    return img, FaceHint.from_any(a)


def _check_person_matte(matte, img, hint):
    assert matte.dtype == np.float32 and matte.shape == img.shape[:2]
    assert float(matte.min()) >= 0.0 and float(matte.max()) <= 1.0
    x0, y0, x1, y1 = np.round(hint.box).astype(int)
    assert matte[y0:y1, x0:x1].mean() > 0.85  # the face box (its lower corners are neck/background)
    inner = hint.landmarks[17:68]  # brows, nose, eyes, mouth: the face itself
    a0, b0 = np.floor(inner.min(axis=0)).astype(int)
    a1, b1 = np.ceil(inner.max(axis=0)).astype(int)
    assert matte[b0:b1, a0:a1].mean() > 0.9
    h, w = matte.shape
    c = max(4, int(0.08 * min(h, w)))
    assert matte[:c, :c].mean() < 0.1 and matte[:c, w - c:].mean() < 0.1  # backdrop corners


@pytest.mark.parametrize("name", ["grabcut", "landmark_hull", "mediapipe_selfie"])
def test_segmenter_covers_face_not_background(name, portrait):
    img, hint = portrait
    seg = get_segmenter(name)
    matte = seg.segment(img, face=hint)
    _check_person_matte(matte, img, hint)


def test_grabcut_finds_its_own_face_and_is_deterministic(portrait):
    img, hint = portrait
    seg = get_segmenter("grabcut", iterations=3)
    a = seg.segment(img)  # no hint: runs madpad.face itself
    _check_person_matte(a, img, hint)
    b, c = seg.segment(img, face=hint), seg.segment(img, face=hint)
    assert np.array_equal(b, c)


def test_grabcut_seed_mask_layout():
    import cv2

    seg = get_segmenter("grabcut", border=0.05, core=0.2)
    m = seg.seed_mask((200, 300), np.array([130.0, 40.0, 170.0, 90.0]))  # face 40 x 50 px
    assert m[0, 150] == cv2.GC_BGD and m[60, 1] == cv2.GC_BGD  # top strip; side strip above the chin
    assert m[65, 150] == cv2.GC_FGD  # face core
    assert m[15, 150] == cv2.GC_PR_FGD  # hair above the face box
    assert m[195, 150] == cv2.GC_PR_FGD and m[199, 95] == cv2.GC_PR_FGD  # shoulders: 3 x 40 px wide at the bottom
    assert m[199, 1] == cv2.GC_PR_BGD and m[150, 5] == cv2.GC_PR_BGD  # lower side edges: probable background


def test_landmark_hull_geometry_follows_the_face(portrait):
    img, hint = portrait
    seg = get_segmenter("landmark_hull", shoulders=0, feather_sigma=0)
    matte = seg.segment(img, face=hint)
    assert set(np.unique(matte).tolist()) <= {0.0, 1.0}
    lm = hint.landmarks
    chin = lm[8]
    assert matte[int(chin[1]) - 5, int(chin[0])] == 1.0
    # without shoulders nothing below neck level (chin + 0.6 face height + margin) is person
    fh = np.hypot(*(0.5 * (lm[36:42].mean(0) + lm[42:48].mean(0)) - chin))
    assert matte[int(chin[1] + 0.75 * fh):, :].max() == 0.0
    # the crown ellipse reaches above the brows (forehead/hair)
    brow_top = lm[17:27, 1].min()
    assert matte[int(brow_top - 0.5 * fh), int(chin[0])] == 1.0
    with pytest.raises(ValueError, match="68"):
        seg.segment(img, face={"box": hint.box, "landmarks": lm[:5]})


def test_rembg_isnet_from_model_dir(portrait, rembg_model_dir):
    img, hint = portrait
    seg = get_segmenter("rembg:isnet-general-use", model_dir=rembg_model_dir)
    assert seg.model == "isnet-general-use"
    _check_person_matte(seg.segment(img), img, hint)
    clone = pickle.loads(pickle.dumps(seg))  # process pools pickle segmenters; the session is rebuilt
    assert clone._session is None and clone.model_dir == str(rembg_model_dir)


def test_rembg_model_dir_from_environment(monkeypatch, rembg_model_dir, tmp_path):
    from madpad.segment.rembg_seg import resolve_model_file

    monkeypatch.setenv("U2NET_HOME", str(rembg_model_dir))
    assert resolve_model_file("isnet-general-use") == rembg_model_dir / "isnet-general-use.onnx"
    assert get_segmenter("rembg_isnet").check() == rembg_model_dir / "isnet-general-use.onnx"
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    with pytest.raises(ModelFileNotFoundError) as err:
        get_segmenter("rembg_u2net_human_seg").check()
    msg = str(err.value)
    assert "U2NET_HOME" in msg and "u2net_human_seg.onnx" in msg and str(tmp_path) in msg


def test_rembg_missing_model_is_a_clear_error_not_a_download(monkeypatch, tmp_path):
    monkeypatch.delenv("U2NET_HOME", raising=False)
    seg = get_segmenter("rembg:birefnet-portrait")
    with pytest.raises(ModelFileNotFoundError, match="U2NET_HOME"):
        seg.segment(np.zeros((32, 32, 3), np.uint8))
    seg = get_segmenter("rembg:u2net", model_dir=tmp_path)
    with pytest.raises(ModelFileNotFoundError, match=r"u2net\.onnx"):
        seg.segment(np.zeros((32, 32, 3), np.uint8))
    assert not any(tmp_path.iterdir())  # nothing was downloaded there


def test_registry_names_and_errors():
    names = list_segmenters()
    for n in ("rembg", "rembg_isnet", "mediapipe_selfie", "grabcut", "landmark_hull"):
        assert n in names
    with pytest.raises(UnknownComponentError, match="grabcut"):
        get_segmenter("grabcutt")
    with pytest.raises(ValueError, match="iterations"):
        get_segmenter("grabcut", iterations=0)
    assert segmenter_spec("rembg:u2net") == ("rembg_u2net", "rembg:u2net", {})
    assert segmenter_spec({"name": "grabcut", "label": "gc3", "iterations": 3}) == ("gc3", "grabcut", {"iterations": 3})
    with pytest.raises(UnknownComponentError):
        segmenter_spec("nonsense")


def test_face_hint_accepts_analysis_detection_and_dict(portrait):
    from madpad.face import FaceDetection

    _, hint = portrait
    d = FaceHint.from_any({"box": hint.box.tolist(), "landmarks": hint.landmarks.tolist()})
    assert np.allclose(d.box, hint.box) and d.landmarks.shape == (68, 2)
    assert FaceHint.from_any(FaceDetection(hint.box, 1.0)).landmarks is None
    with pytest.raises(ValueError, match="box"):
        FaceHint.from_any({"box": [10, 10, 5, 20]})


# --------------------------------------------------------------------------- background replacement
def _two_tone():
    img = np.zeros((40, 60, 3), np.uint8)
    img[:, :30] = (200, 30, 40)  # "person" on the left
    img[:, 30:] = (10, 20, 230)  # backdrop on the right
    matte = np.zeros((40, 60), np.float32)
    matte[:, :30] = 1.0
    return img, matte


def test_replace_background_keeps_person_and_whitens_backdrop():
    img, matte = _two_tone()
    out = replace_background(img, matte, background="white")
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert np.array_equal(out[:, :30], img[:, :30])
    assert (out[:, 30:] == 255).all()
    grey = replace_background(img, matte, background="icao_grey")
    assert (grey[:, 30:] == np.array(ICAO_LIGHT_GREY, np.uint8)).all()
    col = replace_background(img, (matte * 255).astype(np.uint8), background=(0, 128, 0))
    assert (col[:, 30:] == (0, 128, 0)).all()


def test_soft_matte_blends_linearly():
    img = np.full((8, 8, 3), 100, np.uint8)
    matte = np.full((8, 8), 0.25, np.float32)
    out = replace_background(img, matte, background="white")
    assert (out == round(0.25 * 100 + 0.75 * 255)).all()  # 88.75 + ... = 216.25 -> 216


def test_blur_background_has_no_person_halo():
    img, matte = _two_tone()
    out = replace_background(img, matte, background="blur", blur_sigma=0.1)
    # the backdrop next to the person stays backdrop-coloured: the person does not bleed into it
    assert np.abs(out[:, 31].astype(int) - np.array([10, 20, 230])).max() <= 1
    assert np.array_equal(out[:, :30], img[:, :30])


def test_replace_background_validates_inputs():
    img, matte = _two_tone()
    with pytest.raises(ValueError, match="does not match"):
        replace_background(img, matte[:, :10])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        replace_background(img, matte * 2)
    with pytest.raises(ValueError, match="unknown background"):
        replace_background(img, matte, background="purple")
    with pytest.raises(ValueError, match="0..255"):
        replace_background(img, matte, background=(0, 0, 300))


def test_clean_matte_drops_specks_and_fills_the_person():
    from madpad.segment.base import clean_matte

    m = np.zeros((200, 200), np.float32)
    m[60:200, 60:140] = 1.0          # the person
    m[100:110, 100:110] = 0.85       # a dip inside the person
    m[60:200, 140:143] = 0.4         # soft hair edge next to the person
    m[10:13, 10:13] = 0.9            # a speck far away
    out = clean_matte(m)
    assert out[11, 11] == 0.0 and out[105, 105] == 1.0
    assert out[100, 141] == pytest.approx(0.4, abs=0.02)  # the soft edge is kept
    assert out.dtype == np.float32 and out.max() <= 1.0

"""Detectors, landmarkers, analyze_face statuses and alignment on real FRLL sample photos."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from madpad.errors import UnknownComponentError
from madpad.face import (
    FaceDetection,
    align_arcface,
    align_portrait,
    analyze_face,
    apply_transform,
    get_detector,
    get_landmarker,
    list_detectors,
    portrait_eye_targets,
)
from madpad.io import read_image


@pytest.fixture(scope="module")
def face_image(sample_dir):
    return read_image(sample_dir / "neutral" / "001_03.jpg")


@pytest.fixture(scope="module")
def reference(face_image):
    """dlib HOG + 68 landmarks on the sample image (the reference eye positions)."""
    a = analyze_face(face_image)
    assert a.status == "ok", a.error
    return a


def test_registry_lists_all_contract_names_and_rejects_unknown():
    assert set(list_detectors()) >= {"dlib_hog", "dlib_cnn", "haar", "mediapipe", "mtcnn", "yolo"}
    with pytest.raises(UnknownComponentError, match=r"face detector 'dlib_hgo' is not registered.*'dlib_hog'"):
        get_detector("dlib_hgo")
    with pytest.raises(UnknownComponentError, match="available"):
        get_landmarker("dlib69")


def test_analyze_face_ok_on_sample(reference, face_image):
    assert reference.n_faces == 1 and reference.landmarks.shape == (68, 2)
    le, re = reference.landmarks5[0], reference.landmarks5[1]
    assert le[0] < re[0]  # image-left eye first
    # eyes above the nose tip, nose above the mouth corners
    assert max(le[1], re[1]) < reference.landmarks5[2, 1] < min(reference.landmarks5[3:, 1])
    d = reference.detection
    assert d.box[0] < le[0] < re[0] < d.box[2]


DETECTOR_PARAMS = {
    "dlib_hog": {},
    "dlib_cnn": {"max_side": 300},  # CNN is seconds per image at full size on CPU
    "haar": {},
    "mediapipe": {},
    "mtcnn": {},
}


@pytest.mark.parametrize("name", sorted(DETECTOR_PARAMS))
def test_each_detector_finds_the_face(name, face_image, reference):
    dets = get_detector(name, **DETECTOR_PARAMS[name]).detect(face_image)
    assert len(dets) >= 1
    d = dets[0]
    assert isinstance(d, FaceDetection) and d.detector == name
    eyes = reference.landmarks5[:2]
    assert np.all((eyes[:, 0] > d.box[0]) & (eyes[:, 0] < d.box[2]) & (eyes[:, 1] > d.box[1]) & (eyes[:, 1] < d.box[3]))
    # not a whole-image box: the face is about a third of the 600 px sample
    assert 100 < d.width < 400
    if d.landmarks5 is not None:  # detectors with keypoints agree with dlib's eye centres within a few pixels
        assert np.max(np.linalg.norm(d.landmarks5[:2] - eyes, axis=1)) < 0.06 * d.width


def test_detections_sorted_and_mtcnn_landmarks_drive_analysis(face_image, reference):
    a = analyze_face(face_image, detector="mtcnn", landmarker=None)
    assert a.status == "ok" and a.landmarks is None
    assert np.max(np.linalg.norm(a.landmarks5 - reference.landmarks5, axis=1)) < 15


def test_yolo_wired_end_to_end_with_random_init(face_image, tmp_path, monkeypatch):
    import cv2

    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "yolo"))
    from PIL import Image

    threads = cv2.getNumThreads()
    before = dict(os.environ)
    pil_open = Image.open
    det = get_detector("yolo", weights="yolov8n.yaml", conf=0.0, imgsz=128)
    dets = det.detect(face_image)  # random weights: boxes are meaningless, the plumbing is what runs
    assert isinstance(dets, list)
    for d in dets:
        assert isinstance(d, FaceDetection) and 0 <= d.box[0] <= d.box[2] <= 600
    assert dict(os.environ) == before  # importing/running ultralytics left the environment alone
    assert cv2.getNumThreads() == threads
    assert Image.open is pil_open  # ultralytics' process-wide PIL patch was undone
    with pytest.raises(Exception, match="weights"):
        get_detector("yolo")
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        get_detector("yolo", weights=str(tmp_path / "nope.pt"))


@pytest.mark.parametrize("name", ["dlib68", "dlib5", "mediapipe_mesh"])
def test_landmarkers_agree_on_eye_centres(name, face_image, reference):
    lmk = get_landmarker(name)
    pts = lmk.landmarks(face_image, reference.detection.box)
    assert pts.shape == ({"dlib68": 68, "dlib5": 5, "mediapipe_mesh": 478}[name], 2)
    lm5 = lmk.to_landmarks5(pts)
    assert lm5.shape == (5, 2)
    err = np.linalg.norm(lm5[:2] - reference.landmarks5[:2], axis=1)
    assert err.max() < 8, err  # eye centres within 8 px on a 600 px image (inter-eye ~95 px)


def test_statuses_unreadable_blank_and_multiple(tmp_path, sample_dir, face_image):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    a = analyze_face(bad)
    assert a.status == "unreadable" and "broken.jpg" in a.error
    a = analyze_face(tmp_path / "missing.jpg")
    assert a.status == "unreadable" and "missing.jpg" in a.error

    blank = np.full((400, 400, 3), 200, np.uint8)
    a = analyze_face(blank)
    assert a.status == "no_face" and a.detection is None and "no face" in a.error

    # two faces side by side: the sample at full size on the left, a 2/3-size face to the right
    # of it, nearer the centre of the 1400 px wide canvas
    import cv2

    other = read_image(sample_dir / "neutral" / "004_03.jpg")
    small = cv2.resize(other, (400, 400), interpolation=cv2.INTER_AREA)
    canvas = np.full((600, 1400, 3), 255, np.uint8)
    canvas[:, :600] = face_image
    canvas[100:500, 600:1000] = small
    a = analyze_face(canvas)  # policy "largest" (default)
    assert a.status == "ok" and a.n_faces == 2 and a.detection.center[0] < 600
    a = analyze_face(canvas, policy="most_central")
    assert a.status == "ok" and a.detection.center[0] > 600
    a = analyze_face(canvas, policy="error_if_multiple")
    assert a.status == "multiple_faces" and a.n_faces == 2 and "2 faces" in a.error
    with pytest.raises(ValueError, match="policy"):
        analyze_face(canvas, policy="biggest")


def test_align_portrait_real_image_eyes_land_on_targets(face_image, reference):
    size = (300, 400)
    out, M = align_portrait(face_image, reference.landmarks, size=size)
    targets = portrait_eye_targets(size=size)
    # exact on the landmarks transformed by the returned matrix
    np.testing.assert_allclose(apply_transform(M, reference.landmarks5[:2]), targets, atol=1.0)
    # and re-detected on the aligned image within a few pixels (inter-eye distance 75 px here)
    again = analyze_face(out, detector={"name": "dlib_hog", "upsample": 1})
    assert again.status == "ok", again.error
    assert np.max(np.linalg.norm(again.landmarks5[:2] - targets, axis=1)) < 4.0
    # eyes level after alignment
    assert abs(again.landmarks5[0, 1] - again.landmarks5[1, 1]) < 3.0


def test_align_arcface_real_image(face_image, reference):
    from madpad.face import ARCFACE_TEMPLATE

    crop, M = align_arcface(face_image, reference.landmarks5, return_matrix=True)
    assert crop.shape == (112, 112, 3)
    mapped = apply_transform(M, reference.landmarks5)
    # a least-squares fit over 5 points: each point near its template position
    assert np.max(np.linalg.norm(mapped - ARCFACE_TEMPLATE, axis=1)) < 5.0


def test_landmarker_failure_is_a_status_not_a_crash(face_image):
    class Broken:
        name = "broken"

        def landmarks(self, image, box):
            raise RuntimeError("model exploded")

    a = analyze_face(face_image, landmarker=Broken())
    assert a.status == "failed" and "broken" in a.error and "model exploded" in a.error
    assert a.detection is not None

    class BrokenDetector:
        name = "broken_det"

        def detect(self, image):
            raise RuntimeError("graph crashed")

    a = analyze_face(face_image, detector=BrokenDetector())
    assert a.status == "failed" and "broken_det failed: graph crashed" in a.error

    class MissingModel(BrokenDetector):
        def detect(self, image):
            raise FileNotFoundError("weights.pt")

    with pytest.raises(FileNotFoundError):  # configuration problems still raise
        analyze_face(face_image, detector=MissingModel())


def test_used_components_pickle_for_worker_processes(face_image):
    import pickle

    from madpad.face import get_embedder

    det = get_detector("mediapipe")
    n = len(det.detect(face_image))  # loads the graph, which cannot be pickled
    clone = pickle.loads(pickle.dumps(det))
    assert clone._graph is None and len(clone.detect(face_image)) == n
    lmk = get_landmarker("dlib68")
    emb = get_embedder("dlib", detector=det, landmarker=lmk)
    v = emb.embed([face_image])
    np.testing.assert_allclose(pickle.loads(pickle.dumps(emb)).embed([face_image]), v, atol=1e-6)


def test_dlib_hog_equalise_retry_finds_a_dark_low_contrast_face_and_is_part_of_the_cache_identity(sample_dir):
    """An under-exposed, hazy, blurred capture (FRLL sample 061, CC BY 4.0, here darkened to 20 %
    contrast, lifted by 20 grey levels and blurred; the kind of gate capture HOG misses) is found
    after CLAHE equalisation of the luma, at the face's place; a found face is never searched again."""
    import cv2

    from madpad.face import get_embedder
    from madpad.face.detectors import equalise_luma

    img = read_image(sample_dir / "neutral" / "061_03.jpg").astype(np.float64)
    img = cv2.resize(img, (400, round(400 * img.shape[0] / img.shape[1])), interpolation=cv2.INTER_AREA)
    ref = get_detector("dlib_hog", upsample=0, max_side=400).detect(img.astype(np.uint8))
    dark = np.clip(cv2.GaussianBlur(img, (0, 0), 1.5) * 0.2 + 20, 0, 255).astype(np.uint8)
    plain = get_detector("dlib_hog", upsample=0, max_side=400)
    retry = get_detector("dlib_hog", upsample=0, max_side=400, equalise="retry")
    assert plain.detect(dark) == []
    found = retry.detect(dark)
    assert len(found) == 1 and len(ref) == 1
    a, b = found[0].box, ref[0].box
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    assert inter / (found[0].area + ref[0].area - inter) > 0.5
    # CLAHE raises the local contrast of the luma and leaves the chroma alone (up to rounding)
    y0, y1 = (cv2.cvtColor(x, cv2.COLOR_RGB2YCrCb).astype(int) for x in (dark, equalise_luma(dark)))
    lap = [np.abs(cv2.Laplacian(y[..., 0].astype(np.float32), cv2.CV_32F)).mean() for y in (y0, y1)]
    assert lap[1] > 2 * lap[0] and np.abs(y1[..., 1:] - y0[..., 1:]).mean() < 1.0
    # a face found on the image itself is returned as is (no second search)
    np.testing.assert_array_equal(retry.detect(img.astype(np.uint8))[0].box, ref[0].box)
    with pytest.raises(ValueError, match="equalise must be one of"):
        get_detector("dlib_hog", equalise="always")
    # the option changes detections, so it is part of the embedder's cache identity; the default is not
    fast = {"name": "dlib_hog", "upsample": 0, "max_side": 400}
    plain_id = get_embedder("dlib", detector=fast).id
    assert "det=dlib_hog[max_side=400,upsample=0]|" in plain_id
    assert get_embedder("dlib", detector={**fast, "equalise": "retry"}).id == plain_id.replace(
        "det=dlib_hog[max_side=400,upsample=0]|", "det=dlib_hog[equalise=retry,max_side=400,upsample=0]|")


def test_dlib_hog_upsample_retry_finds_the_face_in_a_low_resolution_capture(sample_dir):
    """A face-and-shoulders thumbnail (FRLL sample 001 smiling, CC BY 4.0, downscaled to 90 and
    120 px: a 37-45 px face) is below what HOG finds without upsampling; the retry with one more
    upsampling finds it at the face's place, and leaves images with a found face alone."""
    import cv2

    from madpad.face import get_embedder

    img = read_image(sample_dir / "smiling" / "001_08.jpg")
    ref = get_detector("dlib_hog", upsample=0, max_side=None).detect(img)[0]
    plain = get_detector("dlib_hog", upsample=0, max_side=400, equalise="retry")
    retry = get_detector("dlib_hog", upsample=0, max_side=400, equalise="retry", upsample_retry=True)
    for side in (90, 120):
        thumb = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
        assert plain.detect(thumb) == []
        found = retry.detect(thumb)
        assert len(found) == 1
        a, b = found[0].box, np.asarray(ref.box) * side / img.shape[1]
        inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        assert inter / union > 0.5
    big = cv2.resize(img, (400, 400), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal([d.box for d in retry.detect(big)], [d.box for d in plain.detect(big)])
    with pytest.raises(ValueError, match="upsample_retry must be true or false"):
        get_detector("dlib_hog", upsample_retry="yes")
    assert "det=dlib_hog[upsample_retry=true]|" in get_embedder("dlib", detector={"name": "dlib_hog",
                                                                                 "upsample_retry": True}).id


def test_embedding_cache_identity_names_every_non_default_face_finding_option(tmp_path):
    """Embeddings found with other detector options (smaller detection image, no upsampling,
    another model file) never share a cache identity; default options keep the plain name, and a
    model file counts by its content, not where it lies."""
    import shutil

    import cv2

    from madpad.face import EmbeddingCache, get_embedder

    default = get_embedder("dlib").id
    assert "|det=dlib_hog|lm=dlib68|" in default
    assert get_embedder("dlib", detector={"name": "dlib_hog", "upsample": 1, "max_side": 640}).id == default
    ids = {get_embedder("dlib", detector={"name": "dlib_hog", **o}).id
           for o in ({}, {"upsample": 0}, {"max_side": 400}, {"upsample": 0, "max_side": 400}, {"threshold": 0.5})}
    assert len(ids) == 5
    assert "det=dlib_hog[threshold=0.5]|" in get_embedder("dlib", detector={"name": "dlib_hog", "threshold": 0.5}).id
    # a cascade file: same content elsewhere = same identity; one changed byte = another
    src = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    a, b = tmp_path / "a.xml", tmp_path / "sub" / "b.xml"
    b.parent.mkdir()
    shutil.copy(src, a)
    shutil.copy(src, b)
    ida, idb = (get_embedder("dlib", detector={"name": "haar", "cascade_path": str(p)}).id for p in (a, b))
    assert ida == idb and "det=haar[cascade_path=sha256:" in ida and str(tmp_path) not in ida
    b.write_bytes(b.read_bytes().replace(b"<stages>", b"<stages> ", 1))
    assert get_embedder("dlib", detector={"name": "haar", "cascade_path": str(b)}).id != ida
    # what this protects: one cache folder, two option sets, two entries
    cache = EmbeddingCache(tmp_path / "cache")
    for i, emb_id in enumerate(sorted(ids)):
        cache.put("ab" * 16, emb_id, np.full(4, i, np.float32))
    assert sorted(float(cache.get("ab" * 16, e)[0]) for e in ids) == [0.0, 1.0, 2.0, 3.0, 4.0]

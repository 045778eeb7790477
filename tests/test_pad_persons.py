"""Person detector backends: real shipped models on a real photo, YOLO wired with a random-init model."""

from __future__ import annotations

import numpy as np
import pytest

from madpad.errors import UnknownComponentError
from madpad.pad.persons import (
    PersonDetection,
    get_person_detector,
    keypoint_box,
    list_person_detectors,
)


@pytest.fixture(scope="module")
def astronaut():
    skd = pytest.importorskip("skimage.data")
    return skd.astronaut()  # NASA, public domain: a real upper-body photo, 512x512


# the astronaut's face (measured once by hand on the image): about x 170..270, y 70..200
FACE_CENTRE = (220, 135)


def _contains(box, pt):
    return box[0] <= pt[0] <= box[2] and box[1] <= pt[1] <= box[3]


def test_registry_lists_backends_and_rejects_unknown():
    assert {"mediapipe_pose", "mediapipe_selfie", "hog", "yolo"} <= set(list_person_detectors())
    with pytest.raises(UnknownComponentError, match="Did you mean 'hog'"):
        get_person_detector("hgo")
    with pytest.raises(ValueError, match="needs weights="):
        get_person_detector("yolo")


def test_person_and_face_detections_share_one_box_geometry():
    from madpad.face import FaceDetection
    from madpad.face.types import box_of, clip_box

    for d in (FaceDetection([10, 20, 50, 100], 0.9), PersonDetection(box=[10, 20, 50, 100], score=0.9)):
        assert (d.width, d.height, d.area, d.center.tolist()) == (40.0, 80.0, 3200.0, [30.0, 60.0])
        assert box_of(d).tolist() == [10, 20, 50, 100]
    with pytest.raises(ValueError, match="face box must be 4 finite numbers"):
        box_of([0, 0, np.nan, 1], what="face box")
    boxes = [[-5, -5, 300, 90], [10, 10, 20, 20]]
    assert clip_box(boxes, (100, 200, 3)).tolist() == [[0, 0, 200, 90], [10, 10, 20, 20]]
    assert clip_box(boxes[0], (100, 200)).tolist() == [0, 0, 200, 90] and boxes[0][0] == -5  # input kept


def test_mediapipe_pose_finds_the_person_with_keypoints_and_mask(astronaut):
    pytest.importorskip("mediapipe")
    det = get_person_detector("mediapipe_pose")
    people = det.detect(astronaut)
    assert len(people) == 1
    p = people[0]
    assert isinstance(p, PersonDetection) and p.score > 0.5
    assert _contains(p.box, FACE_CENTRE)
    nose = p.keypoint("nose")
    assert nose is not None and abs(nose[0] - FACE_CENTRE[0]) < 50 and abs(nose[1] - FACE_CENTRE[1]) < 50
    ls, rs = p.keypoint("left_shoulder"), p.keypoint("right_shoulder")
    assert ls is not None and rs is not None and min(ls[1], rs[1]) > nose[1]  # shoulders below the nose
    assert p.mask is not None and p.mask.shape == astronaut.shape[:2]
    assert p.mask[FACE_CENTRE[1], FACE_CENTRE[0]] > 0.5 and p.mask[5, 5] < 0.5  # person vs sky corner
    # any image size: a tiny image gives a list (possibly empty), never a crash
    assert isinstance(det.detect(np.zeros((7, 9, 3), np.uint8)), list)


def test_selfie_person_masks_and_segmenter_matte_come_from_one_model(astronaut):
    """The mediapipe_selfie person detector and the mediapipe_selfie segmenter share madpad.face.selfie."""
    pytest.importorskip("mediapipe")
    import pickle

    from madpad.face.selfie import MediapipeSelfie
    from madpad.segment import get_segmenter

    mask = MediapipeSelfie().mask(astronaut)
    assert mask.dtype == np.float32 and mask.shape == astronaut.shape[:2] and 0.0 <= mask.min() <= mask.max() <= 1.0
    people = get_person_detector("mediapipe_selfie").detect(astronaut)
    assert people and _contains(people[0].box, FACE_CENTRE)
    inside = people[0].mask > 0
    assert np.allclose(people[0].mask[inside], mask[inside], atol=1e-6)  # a component of the same matte
    seg = get_segmenter("mediapipe_selfie")
    matte = seg.segment(astronaut)
    assert np.allclose(matte, mask, atol=1e-6)
    again = pickle.loads(pickle.dumps(seg))  # the loaded graph is not pickled; the copy loads its own
    assert np.allclose(again.segment(astronaut), matte, atol=1e-6)
    with pytest.raises(ValueError, match="model_selection"):
        MediapipeSelfie(model_selection=2)


def test_hog_people_detector_maps_boxes_back_to_the_input_size(astronaut):
    import cv2

    det = get_person_detector("hog", max_side=512)
    small = det.detect(astronaut)
    big_img = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_NEAREST)
    big = det.detect(big_img)  # downscaled to 512 internally -> the same windows, boxes x2
    assert len(small) == len(big) >= 1
    np.testing.assert_allclose(big[0].box, 2 * small[0].box, atol=2.0)
    for p in big:
        assert 0 <= p.box[0] <= p.box[2] <= 1024 and 0 <= p.box[1] <= p.box[3] <= 1024
    assert det.detect(np.full((50, 40, 3), 200, np.uint8)) == []  # tiny images are padded, no crash


def test_yolo_backend_end_to_end_with_random_init_model(astronaut, tmp_path, monkeypatch):
    import importlib.util

    torch = pytest.importorskip("torch")
    if importlib.util.find_spec("ultralytics") is None:  # not importorskip: importing it patches PIL globally
        pytest.skip("ultralytics is not installed")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ycfg"))
    from PIL import Image

    torch.manual_seed(0)
    threads, pil_open, torch_load = torch.get_num_threads(), Image.open, torch.load
    det = get_person_detector("yolo", weights="yolov8n.yaml", conf=1e-4, imgsz=160)
    people = det.detect(astronaut)
    # ultralytics' process-wide changes are undone (thread count, monkey-patched PIL/torch functions)
    assert torch.get_num_threads() == threads
    assert Image.open is pil_open and torch.load is torch_load
    assert people, "a random-init model at conf=1e-4 still emits boxes; the wiring must return them"
    for p in people:
        assert isinstance(p, PersonDetection) and p.detector == "yolo" and p.keypoints is None
        assert 0 <= p.box[0] <= p.box[2] <= 512 and 0 <= p.box[1] <= p.box[3] <= 512
    assert [p.score for p in people] == sorted((p.score for p in people), reverse=True)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        get_person_detector("yolo", weights=str(tmp_path / "missing.pt")).detect(astronaut)


def test_keypoint_box_adds_the_head_top_and_clips():
    kps = {"nose": (50, 40, 1.0), "left_eye": (60, 30, 1.0), "right_eye": (40, 30, 1.0),
           "mouth_left": (58, 50, 1.0), "mouth_right": (42, 50, 1.0),
           "left_shoulder": (90, 80, 1.0), "right_shoulder": (10, 80, 1.0), "left_hip": (80, 300, 0.1)}
    box = keypoint_box(kps, (100, 100), head_extension=2.0)
    # top = highest head keypoint (30) - 2 * eye-to-mouth height (20) = -10 -> clipped to 0
    np.testing.assert_allclose(box, [10, 0, 90, 80])

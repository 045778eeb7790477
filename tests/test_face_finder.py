"""The union face finder: rotated passes mapped back, merging, and a real tilted face."""

from __future__ import annotations

import numpy as np
import pytest

from madpad.errors import UnknownComponentError, UsageError
from madpad.face import FaceDetection, get_detector
from madpad.face.finder import (
    FaceFinder,
    merge_detections,
    rotate_image,
    rotation_angles,
    unrotate_detection,
)


def test_rotation_angles():
    assert rotation_angles(30, 15) == (-30, -15, 15, 30)
    assert rotation_angles(20, 15) == (-15, 15)
    assert rotation_angles(0, 15) == ()


def test_a_detection_in_a_rotated_copy_maps_back_to_the_original_point():
    img = np.zeros((200, 300, 3), np.uint8)
    rot, M = rotate_image(img, 30)
    # the canvas holds the whole rotated image: w cos + h sin by w sin + h cos
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    assert rot.shape[:2] == (int(np.ceil(300 * s + 200 * c)), int(np.ceil(300 * c + 200 * s)))
    p = np.array([80.0, 50.0])                       # a face centre in the original
    q = M[:, :2] @ p + M[:, 2]                        # where it lies in the rotated copy
    eyes = np.array([[q[0] - 10, q[1] - 5], [q[0] + 10, q[1] - 5]])
    lm5 = np.vstack([eyes, q, [q[0] - 8, q[1] + 10], [q[0] + 8, q[1] + 10]])
    d = FaceDetection([q[0] - 20, q[1] - 25, q[0] + 20, q[1] + 25], 0.9, lm5, detector="mediapipe")
    back = unrotate_detection(d, M, img.shape, tag="mediapipe@30")
    np.testing.assert_allclose(back.center, p, atol=1e-6)
    assert (back.width, back.height) == pytest.approx((40.0, 50.0))  # the face's own size
    e = back.landmarks5[1] - back.landmarks5[0]
    # eyes level in the copy rotated by +30 (counter-clockwise) are tilted by 30 degrees in the original
    assert np.degrees(np.arctan2(e[1], e[0])) == pytest.approx(30.0)
    assert back.landmarks5[0, 0] < back.landmarks5[1, 0]


def test_merge_detections_groups_one_face_and_counts_passes():
    a = FaceDetection([100, 100, 200, 220], 1.2, detector="dlib_hog")
    b = FaceDetection([95, 90, 205, 230], 0.9, np.tile([150.0, 160.0], (5, 1)), detector="mediapipe")
    c = FaceDetection([102, 98, 198, 225], 0.8, detector="mediapipe@15")  # the same face, rotated pass
    far = FaceDetection([400, 100, 480, 200], 0.7, detector="mediapipe")
    again = FaceDetection([105, 105, 195, 215], 0.3, detector="dlib_hog")  # a second box of one pass
    out = merge_detections([(a, "dlib_hog", 0.0), (b, "mediapipe", 0.0), (far, "mediapipe", 0.0),
                            (c, "mediapipe", 15.0), (again, "dlib_hog", 0.0)], n_passes=4)
    assert len(out) == 2
    face, other = out
    assert face.detector == "dlib_hog+mediapipe+mediapipe@15" and face.score == pytest.approx(3 / 4)  # 3 of 4 passes
    np.testing.assert_allclose(face.box, a.box)          # the first upright detector's box
    assert face.landmarks5 is not None                    # from the first detection that has them
    assert other.detector == "mediapipe" and other.score == pytest.approx(1 / 4)


def test_options_are_checked():
    with pytest.raises(UnknownComponentError, match="dlib_hgo"):
        FaceFinder(detectors="dlib_hgo+mediapipe")
    with pytest.raises(UsageError, match="must also be in detectors"):
        FaceFinder(detectors="dlib_hog", rotated="mediapipe")
    with pytest.raises(UsageError, match="no detector"):
        FaceFinder(detectors="")
    f = get_detector("union", detectors="dlib_hog|mediapipe", rotated="", max_angle=30)
    assert f.detectors == ("dlib_hog", "mediapipe") and f.angles == () and f.n_passes == 2


def test_a_tilted_face_that_the_upright_pass_misses_is_found_by_a_rotated_pass(sample_dir):
    pytest.importorskip("mediapipe")
    pytest.importorskip("dlib")
    import cv2

    from madpad.io import read_image
    from madpad.morph.warp import read_tem

    img = read_image(sample_dir / "neutral" / "004_03.jpg")
    eyes = read_tem(sample_dir / "landmarks" / "004_03.tem")[:2]
    f = 400 / img.shape[1]
    img = cv2.resize(img, (400, round(img.shape[0] * f)), interpolation=cv2.INTER_AREA)
    tilted, M = rotate_image(img, -55)  # the head now leans 55 degrees
    mid = ((eyes * f) @ M[:, :2].T + M[:, 2]).mean(axis=0)
    assert get_detector("dlib_hog").detect(tilted) == []  # dlib's frontal detector misses it upright
    faces = get_detector("union", detectors="dlib_hog", rotated="dlib_hog", max_angle=45).detect(tilted)
    assert len(faces) == 1 and faces[0].detector.startswith("dlib_hog@")  # found by rotated passes only
    assert faces[0].box[0] <= mid[0] <= faces[0].box[2] and faces[0].box[1] <= mid[1] <= faces[0].box[3]
    # with landmarks (BlazeFace) the face's tilt is measured in the original image
    tilted, M = rotate_image(img, -25)
    eyes_t = (eyes * f) @ M[:, :2].T + M[:, 2]
    best = get_detector("union", detectors="mediapipe", rotated="mediapipe").detect(tilted)[0]
    e = best.landmarks5[1] - best.landmarks5[0]
    true = eyes_t[1] - eyes_t[0] if eyes_t[0, 0] < eyes_t[1, 0] else eyes_t[0] - eyes_t[1]
    assert abs(np.degrees(np.arctan2(e[1], e[0]) - np.arctan2(true[1], true[0]))) < 5

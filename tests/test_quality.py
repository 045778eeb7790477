"""madpad.quality: ISO/IEC 29794-5-style measures on hand-made images and landmarks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from madpad import quality as Q


def synthetic_landmarks(*, nose_x: float = 50.0, angle_deg: float = 0.0, scale: float = 1.0,
                        centre=(100.0, 100.0)) -> np.ndarray:
    """68 points with a known geometry: jaw 0 at x=0 and 16 at x=100 (y=50), eyes centred at
    (30, 40) and (70, 40), nose tip (30) at (nose_x, 60); optionally rotated and scaled."""
    p = np.zeros((68, 2))
    t = np.linspace(0, np.pi, 17)
    p[0:17] = np.c_[50 - 50 * np.cos(t), 50 + 40 * np.sin(t)]  # jaw: 0 -> (0, 50), 8 -> (50, 90), 16 -> (100, 50)
    p[17:27] = np.c_[np.linspace(15, 85, 10), np.full(10, 28.0)]  # brows
    p[27:36] = np.c_[np.full(9, 50.0), np.linspace(42, 66, 9)]  # nose
    p[30] = (nose_x, 60.0)
    ring = np.c_[np.cos(np.linspace(0, 2 * np.pi, 6, endpoint=False)), np.sin(np.linspace(0, 2 * np.pi, 6, endpoint=False))]
    p[36:42] = (30, 40) + 6 * ring
    p[42:48] = (70, 40) + 6 * ring
    p[48:68] = np.c_[50 + 12 * np.cos(np.linspace(0, 2 * np.pi, 20)), 75 + 4 * np.sin(np.linspace(0, 2 * np.pi, 20))]
    p -= (50.0, 50.0)
    a = np.radians(angle_deg)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (p @ R.T) * scale + np.asarray(centre)


def test_inter_eye_distance_and_roll_are_hand_computable():
    lm = synthetic_landmarks()
    assert Q.inter_eye_distance(lm) == pytest.approx(40.0)
    assert Q.inter_eye_distance(synthetic_landmarks(scale=2.5)) == pytest.approx(100.0)
    yaw, roll = Q.pose(synthetic_landmarks(angle_deg=12.0))
    assert roll == pytest.approx(12.0, abs=1e-9)
    assert yaw == pytest.approx(0.0, abs=1e-9)


def test_yaw_estimate_from_nose_position():
    # nose at x=75 between jaw edges at 0 and 100: dl=75, dr=25 -> asin(0.5) = 30 degrees
    yaw, roll = Q.pose(synthetic_landmarks(nose_x=75.0))
    assert yaw == pytest.approx(30.0) and roll == pytest.approx(0.0, abs=1e-9)
    yaw_l, _ = Q.pose(synthetic_landmarks(nose_x=25.0))
    assert yaw_l == pytest.approx(-30.0)
    # in-plane rotation does not change the yaw estimate
    assert Q.pose(synthetic_landmarks(nose_x=75.0, angle_deg=20))[0] == pytest.approx(30.0)


def test_blurred_image_is_less_sharp(rng):
    import cv2

    lm = synthetic_landmarks(scale=2.0)
    img = rng.integers(0, 256, size=(200, 200, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 1.0)  # natural-ish texture
    blurred = cv2.GaussianBlur(img, (0, 0), 3.0)
    s_sharp, s_blur = Q.sharpness(img, lm), Q.sharpness(blurred, lm)
    assert s_sharp > 5 * s_blur > 0
    # resolution normalisation: the same face at twice the size gives a similar value
    big = cv2.resize(img, (400, 400), interpolation=cv2.INTER_CUBIC)
    lm_big = (lm - 0) * 2.0
    assert Q.sharpness(big, lm_big) == pytest.approx(s_sharp, rel=0.35)


def test_exposure_mean_and_clipping():
    lm = synthetic_landmarks()
    assert Q.exposure(np.full((200, 200, 3), 128, np.uint8), lm) == (pytest.approx(128.0, abs=1e-3), 0.0)
    mean, clipped = Q.exposure(np.full((200, 200, 3), 255, np.uint8), lm)
    assert mean == pytest.approx(255.0, abs=1e-3) and clipped == 1.0
    # luminance weights (Rec. 601): pure green 200 -> 0.587 * 200
    g = np.zeros((200, 200, 3), np.uint8)
    g[..., 1] = 200
    assert Q.exposure(g, lm)[0] == pytest.approx(117.4, abs=1e-3)


def test_uniform_background_scores_higher(rng):
    lm = synthetic_landmarks(scale=1.0, centre=(100, 120))
    box = np.r_[lm.min(0), lm.max(0)]
    noisy = rng.integers(0, 256, size=(200, 200, 3), dtype=np.uint8)
    plain = noisy.copy()
    region = Q.background_region(plain.shape[:2], box)
    assert region[2, 2] and not region[int(box[1]) + 5, int(lm[:, 0].mean())]  # corner yes, face no
    assert not region[199, 2]  # below the chin (shoulders/clothes) is not sampled
    plain[region] = 230
    s_plain = Q.background_std(plain, box=box)
    s_noisy = Q.background_std(noisy, box=box)
    assert s_plain == pytest.approx(0.0, abs=1e-3) and s_noisy > 40  # luma of uniform RGB noise: ~49
    c_plain = Q.quality_components(Q.measure_quality(plain, lm))
    c_noisy = Q.quality_components(Q.measure_quality(noisy, lm))
    assert c_plain["q_background_uniformity"] == pytest.approx(100.0, abs=1e-3)
    assert c_noisy["q_background_uniformity"] < 25
    # with a matte, the background is where the matte < 0.5
    matte = np.ones((200, 200), np.float32)
    matte[:, :50] = 0
    img = np.zeros((200, 200, 3), np.uint8)
    img[:, :25] = 100
    img[:, 25:50] = 200  # two halves of luminance 100 and 200 -> std 50
    assert Q.background_std(img, matte=matte) == pytest.approx(50.0, abs=1e-3)
    # robust spread: median 150, every |y - 150| = 50 -> 1.4826 * 50
    assert Q.background_spread(img, matte=matte) == pytest.approx(1.4826 * 50, abs=1e-3)
    # a few outlier pixels (stray hair on a plain background) raise the std, not the robust spread
    img[:10, :10] = 0
    assert Q.background_std(img, matte=matte) > 50 and Q.background_spread(img, matte=matte) == pytest.approx(74.13, abs=0.01)


def test_component_mappings_hand_values():
    m = Q.QualityMeasures(sharpness=100.0, exposure_mean=64.0, exposure_clipped=0.5, background_std=99.0,
                          background_spread=32.0, inter_eye_distance=45.0, yaw=10.0, roll=-5.0)
    c = Q.quality_components(m)
    assert c["q_sharpness"] == pytest.approx(100 * (1 - math.exp(-1)))
    assert c["q_exposure"] == pytest.approx(100 * 0.5 * 0.5)
    assert c["q_background_uniformity"] == pytest.approx(100 * math.exp(-1))
    assert c["q_face_size"] == pytest.approx(50.0)
    assert c["q_pose"] == pytest.approx(100 * (1 - 15 / 45))


def test_recognition_utility_and_bad_input():
    assert Q.recognition_utility([1, 0], [1, 1]) == pytest.approx(1 / math.sqrt(2))
    assert math.isnan(Q.recognition_utility([np.nan, 0], [1, 1]))
    with pytest.raises(ValueError, match="sizes differ"):
        Q.recognition_utility([1, 0, 0], [1, 1])
    with pytest.raises(ValueError, match="68"):
        Q.pose(np.zeros((5, 2)))

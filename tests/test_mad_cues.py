"""Differential cues beyond one FR distance (madpad.mad.cues): landmark displacement, the
upper-face (expression-robust) FR comparison, single-image region cues and the cue detectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from madpad.errors import UsageError
from madpad.mad import NotFittedError, Pair, get_detector, load_detector
from madpad.mad.cues import (
    CUE_BLOCKS,
    LANDMARK_NAMES,
    LOWER_FACE_POLYGON,
    RIGID_POINTS,
    CueExtractor,
    eye_distance,
    fit_similarity,
    landmark_displacement,
    mask_lower_face,
    region_cues,
)

FAST = {"detector": {"name": "dlib_hog", "upsample": 0, "max_side": 400}}


def _small(image, side=400):
    import cv2

    f = side / max(image.shape[:2])
    return cv2.resize(image, (round(image.shape[1] * f), round(image.shape[0] * f)), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def faces(sample_dir):
    """Neutral and smiling photos of three bundled FRLL subjects (400 px) and their dlib68 landmarks."""
    from madpad.face import analyze_face
    from madpad.io import read_image

    out = {}
    for s in ("001", "004", "007"):
        for kind, tag in (("neutral", "03"), ("smiling", "08")):
            img = _small(read_image(sample_dir / kind / f"{s}_{tag}.jpg"))
            a = analyze_face(img, detector=FAST["detector"], landmarker="dlib68").raise_for_status()
            out[s, kind] = (img, np.asarray(a.landmarks, dtype=np.float64))
    return out


def _similarity(points, angle_deg=12.0, scale=0.7, shift=(31.0, -17.0)):
    a = np.deg2rad(angle_deg)
    A = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return points @ A.T + np.asarray(shift), A, np.asarray(shift)


# --------------------------------------------------------------------------- landmark displacement
def test_fit_similarity_recovers_a_known_transform(rng):
    src = rng.normal(size=(10, 2)) * 50
    dst, A, t = _similarity(src)
    A2, t2 = fit_similarity(src, dst)
    np.testing.assert_allclose(A2, A, atol=1e-9)
    np.testing.assert_allclose(t2, t, atol=1e-7)


def test_landmark_displacement_is_zero_for_the_same_face_and_its_similarity_copies(faces):
    lm = faces["001", "neutral"][1]
    assert landmark_displacement(lm, lm).tolist() == [0.0] * len(LANDMARK_NAMES)
    moved, _, _ = _similarity(lm)
    np.testing.assert_allclose(landmark_displacement(lm, moved), 0.0, atol=1e-9)
    np.testing.assert_allclose(landmark_displacement(moved, lm), 0.0, atol=1e-9)


def test_mouth_and_lower_cheeks_do_not_count_but_the_nose_does(faces):
    lm = faces["001", "neutral"][1]
    iod = eye_distance(lm)
    smile = lm.copy()
    smile[48:68] += [[0.0, -0.2 * iod]]          # lips raised
    smile[[5, 6, 7, 8, 9, 10, 11]] += [[0.0, 0.1 * iod]]  # chin and lower jaw lowered
    np.testing.assert_allclose(landmark_displacement(lm, smile)[:6], 0.0, atol=1e-12)
    longer = lm.copy()
    longer[33] += [0.0, 0.1 * iod]               # nose tip (not a stable point) 0.1 IOD lower
    f = dict(zip(LANDMARK_NAMES, landmark_displacement(lm, longer)))
    assert f["displacement:nose"] == pytest.approx(0.1 / 9)
    assert f["displacement:eyes"] == f["displacement:brows"] == f["displacement:jaw_upper"] == 0.0
    assert f["displacement:rms"] == pytest.approx(np.sqrt(0.01 / len(RIGID_POINTS)))
    nose_len = lambda p: np.hypot(*(p[33] - p[27]))
    assert f["|log ratio change|:eye_distance/nose_length"] == pytest.approx(abs(np.log(nose_len(longer) / nose_len(lm))))


def test_landmark_displacement_on_images_sees_a_geometric_warp_not_a_similarity(faces):
    import cv2

    from madpad.face import analyze_face

    img, lm = faces["001", "neutral"]
    h, w = img.shape[:2]
    rot = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), 8, 0.85), (w, h), borderMode=cv2.BORDER_REFLECT)
    # a non-rigid warp: the face stretched vertically by 12 % about the eyes (eyes stay, nose and jaw move)
    ey = lm[36:48, 1].mean()
    ys, xs = np.indices((h, w), dtype=np.float32)
    warped = cv2.remap(img, xs, (ey + (ys - ey) / 1.12).astype(np.float32), cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REFLECT)

    def lms(x):
        return analyze_face(x, detector=FAST["detector"], landmarker="dlib68").raise_for_status().landmarks

    d_rot = landmark_displacement(lm, lms(rot))[4]
    d_warp = landmark_displacement(lm, lms(warped))[4]
    assert d_rot < 0.02 and d_warp > 2 * d_rot and d_warp > 0.03, (d_rot, d_warp)


def test_landmark_displacement_rejects_other_landmark_sets():
    with pytest.raises(ValueError, match="live landmarks: expected 68"):
        landmark_displacement(np.zeros((68, 2)) + np.arange(68)[:, None], np.zeros((5, 2)))


# --------------------------------------------------------------------------- upper-face comparison
def test_mask_lower_face_fills_only_below_the_nose(faces):
    img, lm = faces["004", "neutral"]
    out = mask_lower_face(img, lm)
    changed = np.any(out != img, axis=2)
    iod = eye_distance(lm)
    assert not changed[:int(lm[27:31, 1].min())].any()       # nothing above the nose bridge
    mouth = np.rint(lm[48:68].mean(0)).astype(int)
    assert changed[mouth[1], mouth[0]]                         # the mouth is filled ...
    assert len(np.unique(out[changed], axis=0)) == 1           # ... with one flat colour
    assert changed.sum() < 2.5 * iod * iod                     # and not the whole face
    assert np.array_equal(mask_lower_face(img, lm), out)


def test_upper_face_embedding_is_moved_less_by_a_mouth_change_than_the_full_face(faces):
    import cv2

    img, lm = faces["007", "neutral"]
    poly = np.rint(lm[list(LOWER_FACE_POLYGON)]).astype(np.int32)
    mouth = img.copy()   # a synthetic expression change: open dark mouth with teeth, inside the lower face
    c = np.rint(lm[60:68].mean(0)).astype(int)
    iod = eye_distance(lm)
    cv2.ellipse(mouth, tuple(int(v) for v in c), (int(0.35 * iod), int(0.15 * iod)), 0, 0, 360, (40, 10, 10), -1)
    cv2.rectangle(mouth, (int(c[0] - 0.25 * iod), int(c[1] - 0.15 * iod)), (int(c[0] + 0.25 * iod), int(c[1] - 0.05 * iod)),
                  (235, 235, 225), -1)
    inside = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(inside, [poly], 1)
    assert not np.any((mouth != img).any(2) & (inside == 0))  # the change is confined to the masked region
    fx = CueExtractor(embedder_params=FAST)
    r = fx.many([img, mouth])
    assert r.status == ["ok", "ok"]
    lay = fx.layout()
    e, u = r.features[:, lay["embedding"]], r.features[:, lay["upper"]]
    full = 1 - float(e[0] @ e[1])
    upper = 1 - float(u[0] @ u[1])
    assert full > 0.004 and upper < full / 2, (full, upper)


# --------------------------------------------------------------------------- single-image cues
@pytest.fixture(scope="module")
def canonical_face(faces):
    """Landmarks of a real face scaled to an inter-ocular distance of 64 px on a 300 px canvas."""
    lm = faces["001", "neutral"][1]
    lm = (lm - lm.mean(0)) * (64.0 / eye_distance(lm)) + 150.0
    from madpad.mad.cues import face_regions

    return lm, face_regions((300, 300), lm, iod=64.0)


def _grey(a):
    return np.repeat(np.clip(np.rint(a), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def test_region_cues_compare_the_face_with_its_surroundings(canonical_face, rng):
    lm, reg = canonical_face
    assert not (reg["inside"] & reg["outside"]).any() and reg["inside"].sum() > 1000 and reg["outside"].sum() > 1000
    noise = rng.normal(0, 8, (300, 300))
    even = region_cues(_grey(128 + noise), lm)
    assert abs(even[1]) < 0.1 and abs(even[0]) < 0.1  # the same noise everywhere: ratios ~ log 1
    smooth = noise.copy()
    hull = reg["inside"] | reg["band"]
    smooth[hull] *= 0.25                               # a face 4 times less noisy than its surroundings
    cues = region_cues(_grey(128 + smooth), lm)
    assert cues[1] == pytest.approx(np.log(0.25), abs=0.25) and cues[0] < -0.8
    # a global change of the whole file (brightness, contrast) leaves the ratios where they were
    np.testing.assert_allclose(region_cues(_grey(100 + 1.0 * smooth), lm)[:3], cues[:3], atol=0.05)


def test_region_cues_see_a_blending_ghost(canonical_face, rng):
    import cv2

    lm, reg = canonical_face
    tex = cv2.GaussianBlur(rng.normal(0, 30, (300, 300)), (0, 0), 1.0)
    ghost = tex.copy()
    ghost[reg["inside"]] = 0.5 * (tex + np.roll(tex, 5, axis=1))[reg["inside"]]  # double edges 5 px apart
    plain, doubled = region_cues(_grey(128 + tex), lm), region_cues(_grey(128 + ghost), lm)
    assert plain[5] < 0.15 and doubled[5] > 0.3 and doubled[5] > plain[5] + 0.25, (plain[5], doubled[5])
    assert abs(doubled[6] - plain[6]) < 0.1  # no vertical ghost


def test_region_cues_are_measured_at_a_fixed_scale(canonical_face, rng):
    import cv2

    from madpad.mad.cues import face_regions

    lm, _ = canonical_face
    big_lm = lm * 2 + 0.5
    big_reg = face_regions((600, 600), big_lm, iod=128.0)
    fine = cv2.GaussianBlur(rng.normal(0, 40, (600, 600)), (0, 0), 0.8)    # fine detail in the face
    coarse = cv2.GaussianBlur(rng.normal(0, 90, (600, 600)), (0, 0), 3.0)  # coarser texture around it
    big = _grey(128 + np.where(big_reg["inside"] | big_reg["band"], fine, coarse))
    small = cv2.resize(big, (300, 300), interpolation=cv2.INTER_AREA)       # the same photo at half the size
    a, b = region_cues(small, lm), region_cues(big, big_lm)
    assert a[0] > 0.5  # more detail inside than outside
    np.testing.assert_allclose(a[:3], b[:3], rtol=0.15, atol=0.05)


def test_a_face_too_small_for_the_cues_is_a_per_image_status(faces):
    from madpad.face.types import FaceAnalysis

    img, lm = faces["001", "neutral"]
    tiny = (lm - lm.mean(0)) * (5.0 / eye_distance(lm)) + 100.0  # 5 px between the eyes

    class TinyFaces:  # an embedder whose face analysis finds a 5 px face
        id, dim = "tiny", 4

        def analyze(self, image):
            return FaceAnalysis("ok", landmarks=tiny, landmarks5=None, image=np.asarray(image))

    fx = CueExtractor()
    fx._emb = TinyFaces()
    r = fx.many([img, img[:, ::-1].copy()])
    assert r.status == ["no_face", "no_face"] and "too small for the cue features (5.0 px" in r.error[0]
    assert np.isnan(r.features).all()
    with pytest.raises(ValueError, match="too small"):
        region_cues(img, tiny)


# --------------------------------------------------------------------------- detectors
@pytest.fixture(scope="module")
def pairs(faces):
    """Bona fide: neutral vs smiling of the same subject; attack: a crude blend vs the smiling photo."""
    out = []
    subs = ("001", "004", "007")
    for i, s in enumerate(subs):
        a, b = faces[s, "neutral"][0], faces[subs[(i + 1) % 3], "neutral"][0]
        blend = ((a.astype(np.float64) + b) / 2).astype(np.uint8)
        out.append(Pair(f"b{s}", a, faces[s, "smiling"][0], "bona_fide", "", (s,)))
        out.append(Pair(f"a{s}", blend, faces[s, "smiling"][0], "attack", "blend", (s,)))
    return out


@pytest.fixture(scope="module")
def cache():
    from madpad.mad.cache import FeatureCache

    return FeatureCache()


def test_cue_blocks_are_switchable_and_hand_checkable(pairs, cache):
    det = get_detector("dmad_cues", embedder_params=FAST, features=["cos", "upper_cos", "landmarks", "smad"])
    s, l, status, _ = det._image_features(pairs, cache)
    assert status == ["ok"] * len(pairs)
    X = det.pair_matrix(s, l)
    lay = det._extractor().layout()
    e_s, e_l = s[:, lay["embedding"]].astype(np.float64), l[:, lay["embedding"]].astype(np.float64)
    np.testing.assert_allclose(X[:, 0], 1 - (e_s * e_l).sum(1))
    lm_s, lm_l = s[:, lay["landmarks"]].reshape(-1, 68, 2), l[:, lay["landmarks"]].reshape(-1, 68, 2)
    np.testing.assert_allclose(X[:, 2:2 + len(LANDMARK_NAMES)], [landmark_displacement(a, b) for a, b in zip(lm_s, lm_l)])
    assert X.shape[1] == len(det.feature_names()) == 2 + len(LANDMARK_NAMES) + 7
    only_lm = get_detector("landmark_displacement", embedder_params=FAST)  # lean rows: embedding + landmarks
    s2, l2, _, _ = only_lm._image_features(pairs, cache)
    np.testing.assert_allclose(only_lm.pair_matrix(s2, l2), X[:, 2:2 + len(LANDMARK_NAMES)])


def test_cue_detector_round_trip_and_no_face_status(pairs, cache, tmp_path):
    det = get_detector("dmad_cues", embedder_params=FAST, C=1.0)
    with pytest.raises(NotFittedError):
        det.score(pairs, cache=cache)
    det.fit(pairs, cache=cache)
    blank = np.full((200, 200, 3), 90, np.uint8)
    scored = pairs + [Pair("noface", blank, pairs[0].live)]
    r = det.score_pairs(scored, cache=cache)
    assert np.isfinite(r.scores[:-1]).all() and np.isnan(r.scores[-1])
    assert r.status[-1] == "no_face" and r.error[-1].startswith("suspect:")
    assert r.scores[1::2][:3].mean() > r.scores[0::2][:3].mean()  # attacks above bona fide on the training pairs
    det.save(tmp_path / "ck")
    head = json.loads((tmp_path / "ck" / "detector.json").read_text())
    assert head["detector"] == "dmad_cues" and head["config"]["features"] == ["diff", "landmarks", "upper_cos", "smad"]
    back = load_detector(tmp_path / "ck")
    assert type(back) is type(det)
    np.testing.assert_array_equal(back.score(scored, cache=cache), r.scores)


def test_single_image_cues_do_not_need_the_live_capture(pairs, cache):
    det = get_detector("smad_cues", embedder_params=FAST, C=1.0).fit(pairs, cache=cache)
    blank = np.full((200, 200, 3), 90, np.uint8)
    r = det.score_pairs([Pair("x", pairs[1].suspect, blank)], cache=cache)
    assert r.status == ["ok"] and np.isfinite(r.scores).all()


def test_upper_face_distance_is_untrained_and_round_trips(pairs, cache, tmp_path):
    det = get_detector("upper_face_distance", embedder_params=FAST)
    s = det.fit(pairs).score(pairs, cache=cache)
    assert s.shape == (6,) and (s >= 0).all() and s[1::2].mean() > s[0::2].mean()
    fx = det._extractor()
    u = lambda im: fx.many([im], cache=cache).features[0, fx.layout()["upper"]].astype(np.float64)
    np.testing.assert_allclose(s, [1 - u(p.suspect) @ u(p.live) for p in pairs], atol=1e-6)
    det.save(tmp_path / "u")
    np.testing.assert_array_equal(load_detector(tmp_path / "u").score(pairs, cache=cache), s)


def test_bad_cue_options_name_the_valid_choices():
    with pytest.raises(UsageError) as exc:
        get_detector("dmad_cues", features=["diff", "landmark"])
    msg = str(exc.value)
    assert "\n" not in msg and "'landmark'" in msg and all(b in msg for b in CUE_BLOCKS)
    with pytest.raises(UsageError, match="classifier must be one of"):
        get_detector("landmark_displacement", classifier="forest")

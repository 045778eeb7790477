"""Demorphing (madpad.mad.demorph) and the detectors built on it (demorph_distance, demorph_svm)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from madpad.mad import Pair, get_detector, load_detector
from madpad.mad.cache import FeatureCache
from madpad.mad.cues import face_hull_mask
from madpad.mad.demorph import (
    DemorphFeatures,
    analysis_from_landmarks,
    check_alpha,
    demorph_image,
    demorph_images,
    live_in_suspect_frame,
    low_res_factor,
)

FAST = {"detector": {"name": "dlib_hog", "upsample": 0, "max_side": 400}}
H, W = 160, 140


def _landmarks(rng) -> np.ndarray:
    """A synthetic 68-point set: eyes and nose bridge where dlib puts them, the rest scattered over the face."""
    lm = np.column_stack([rng.uniform(35, 105, 68), rng.uniform(45, 135, 68)])
    for i, a in enumerate(np.linspace(0, 2 * np.pi, 6, endpoint=False)):
        lm[36 + i] = (50 + 9 * np.cos(a), 62 + 4 * np.sin(a))
        lm[42 + i] = (90 + 9 * np.cos(a), 62 + 4 * np.sin(a))
    lm[27:31] = [(70, 60), (70, 70), (70, 80), (70, 90)]
    return lm


def _smooth_image(rng, scale=12.0) -> np.ndarray:
    import cv2

    noise = rng.normal(0, 1, (H, W, 3)).astype(np.float32)
    img = cv2.GaussianBlur(noise, (0, 0), scale)
    img = (img - img.min()) / (img.max() - img.min())
    return np.clip(40 + 170 * img, 0, 255).astype(np.uint8)


def test_demorphing_a_blend_with_one_contributor_gives_back_the_other(rng):
    lm = _landmarks(rng)
    a_img, b_img = _smooth_image(rng), _smooth_image(rng)
    for alpha in (0.3, 0.5):
        morph = np.rint(alpha * a_img.astype(np.float64) + (1 - alpha) * b_img).astype(np.uint8)
        d = demorph_image(morph, a_img, lm, lm, alpha=alpha, colour_match=False)
        # same geometry: the warp is the identity, so D = (M - alpha A) / (1 - alpha) = B up to rounding
        assert np.abs(d.astype(int) - b_img).max() <= 2
    # one warp, several blend factors: the same images as one call per factor
    two = demorph_images(morph, a_img, lm, lm, alphas=(0.3, 0.5), colour_match=False)
    np.testing.assert_array_equal(two[1], demorph_image(morph, a_img, lm, lm, alpha=0.5, colour_match=False))


def test_a_bona_fide_pair_demorphs_back_to_the_suspect_despite_pose_and_exposure(rng):
    import cv2

    lm = _landmarks(rng)
    s = _smooth_image(rng, scale=6.0)
    angle, scale, shift = np.deg2rad(8.0), 1.15, np.array([9.0, -6.0])
    A = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    M = np.hstack([A, shift[:, None]])
    live = cv2.warpAffine(s, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    live = np.clip(0.6 * live.astype(np.float64) + 12, 0, 255).astype(np.uint8)  # a darker gate capture
    live_lm = lm @ A.T + shift
    face = face_hull_mask(s.shape, lm)
    # the live capture is put back into the suspect's geometry ...
    lw = live_in_suspect_frame(s, live, lm, live_lm)
    assert np.abs(lw[face] - s[face]).mean() < 3.0
    # ... so D ~ S; without the colour match the darker capture is amplified by 1 / (1 - alpha)
    d = demorph_image(s, live, lm, live_lm, alpha=0.5)
    d_raw = demorph_image(s, live, lm, live_lm, alpha=0.5, colour_match=False)
    err, err_raw = np.abs(d[face].astype(int) - s[face]).mean(), np.abs(d_raw[face].astype(int) - s[face]).mean()
    assert err < 5.0 and err_raw > 30.0


def test_a_tightly_cropped_live_capture_leaves_the_suspect_where_it_does_not_reach(rng):
    """Where the live capture does not cover the suspect's frame, L_w takes the suspect's pixels, so
    D = S there (not a mirrored copy of the live capture's border); the covered face is unchanged."""
    import cv2

    lm = _landmarks(rng)
    s = _smooth_image(rng, scale=4.0)
    y0, y1, x0, x1, f = 35, 150, 30, 112, 1.5  # the gate crops the face tightly and enlarges it
    live = cv2.resize(s[y0:y1, x0:x1], (round((x1 - x0) * f), round((y1 - y0) * f)), interpolation=cv2.INTER_CUBIC)
    live_lm = (lm - [x0, y0]) * f
    out = np.zeros(s.shape[:2], bool)
    out[:y0 - 8], out[:, :x0 - 8] = True, True  # well outside the crop
    inside = np.zeros(s.shape[:2], bool)
    inside[y0 + 8:y1 - 8, x0 + 8:x1 - 8] = True
    lw = live_in_suspect_frame(s, live, lm, live_lm, colour_match=False)
    np.testing.assert_array_equal(lw[out], s[out].astype(np.float32))
    d = demorph_image(s, live, lm, live_lm, alpha=0.5, colour_match=False)
    np.testing.assert_array_equal(d[out], s[out])
    mirrored = live_in_suspect_frame(s, live, lm, live_lm, colour_match=False, fill_uncovered=False)
    assert np.abs(mirrored[out] - s[out]).mean() > 10.0  # the old behaviour: the border reflected
    np.testing.assert_allclose(lw[inside], mirrored[inside])
    assert np.abs(lw[inside] - s[inside]).mean() < 3.0
    # the fill is part of the cached demorph features' identity
    from madpad.mad.demorph import DemorphFeatures

    assert DemorphFeatures(None, "x").id(0.5) == "x|demorph-v1|alpha=0.5|colour=1|fill=1"
    assert DemorphFeatures(None, "x", fill_uncovered=False).id(0.5) == "x|demorph-v1|alpha=0.5|colour=1"


def test_low_res_factor_hand_cases():
    def eyes(iod):  # 68 points whose eye centres (means of 36-41 and 42-47) are iod apart
        lm = np.zeros((68, 2))
        lm[36:42], lm[42:48] = (0.0, 0.0), (iod, 0.0)
        return lm

    assert low_res_factor(eyes(100), eyes(30)) == pytest.approx(0.3)  # compared at the live capture's scale
    assert low_res_factor(eyes(100), eyes(48)) == 1.0  # at or above the threshold: as it is
    assert low_res_factor(eyes(100), eyes(47.9), threshold=48) == pytest.approx(0.479)
    assert low_res_factor(eyes(30), eyes(40)) == 1.0  # not below the suspect's resolution
    assert low_res_factor(eyes(100), eyes(30), threshold=None) == 1.0
    assert low_res_factor(eyes(100), eyes(30), threshold=20) == 1.0


def test_a_low_resolution_live_capture_is_compared_at_its_own_resolution(rng):
    """A bona fide pair whose live capture is the suspect at 0.3 of its size: D - S must not be the
    suspect's fine detail (an unsharp mask that reads as another face), as it was before."""
    import cv2

    lm = _landmarks(rng)  # inter-ocular distance 40 px
    s = _smooth_image(rng, scale=1.2)  # fine detail that a low-resolution camera loses
    f = 0.3
    live = cv2.resize(s, (round(W * f), round(H * f)), interpolation=cv2.INTER_AREA)
    live_lm = (lm + 0.5) * f - 0.5  # pixel centres of the smaller image; inter-ocular distance 12 px < 48 and < 40
    assert low_res_factor(lm, live_lm) == pytest.approx(f, rel=0.01)
    face = face_hull_mask(s.shape, lm)
    d = demorph_image(s, live, lm, live_lm, alpha=0.5, colour_match=False)
    d_old = demorph_image(s, live, lm, live_lm, alpha=0.5, colour_match=False, low_res_iod=None)
    err = np.abs(d[face].astype(int) - s[face]).mean()
    err_old = np.abs(d_old[face].astype(int) - s[face]).mean()
    assert err < 1.0 and err_old > 5.0, (err, err_old)
    # a full-resolution live capture is demorphed exactly as before (same formula, same rounding)
    np.testing.assert_array_equal(demorph_image(s, s, lm, lm, alpha=0.3),
                                  demorph_image(s, s, lm, lm, alpha=0.3, low_res_iod=None))
    # the cached rows of such pairs get their own id; the others keep theirs
    fx = DemorphFeatures(_MeanColourEmbedder(), "m", colour_match=False)
    assert fx.id(0.5, True) == "m|demorph-v1|alpha=0.5|colour=0|fill=1|lowres<48"
    cache = FeatureCache()
    fx.many([Pair("lo", s, live), Pair("hi", s, s)], np.stack([lm, lm]), np.stack([live_lm, lm]), alphas=(0.5,),
            cache=cache)
    ids = {k[0] for k in cache._mem}
    assert ids == {"m|demorph-v1|alpha=0.5|colour=0|fill=1|lowres<48", "m|demorph-v1|alpha=0.5|colour=0|fill=1"}


def test_demorphing_warps_the_expression_away(rng):
    """Landmarks of the live capture moved (a smile) are moved back onto the suspect's."""
    from madpad.face.warp import RemapWarpPlan, border_points, delaunay_triangles

    lm = _landmarks(rng)
    s = _smooth_image(rng, scale=3.0)
    moved = lm.copy()
    # a smile: the mouth points are stretched sideways and lifted (a smooth change), the eyes stay
    moved[48:68] += np.column_stack([0.12 * (lm[48:68, 0] - 70), np.full(20, -3.0)])
    frame = border_points((W, H), per_side=5)
    src, dst = np.vstack([lm, frame]), np.vstack([moved, frame])
    # the suspect with the moved points (on the triangles of the suspect's points, so the warp is invertible)
    live = RemapWarpPlan(dst, delaunay_triangles(src), (W, H))(s, src)
    face = face_hull_mask(s.shape, lm)
    before = np.abs(live[face].astype(int) - s[face]).mean()
    after = np.abs(live_in_suspect_frame(s, live, lm, moved, colour_match=False)[face] - s[face]).mean()
    assert before > 2.0 and after < before / 3


def test_bad_alphas_and_landmarks_are_clear_errors(rng):
    s = _smooth_image(rng)
    lm = _landmarks(rng)
    for bad in (0, 1, 1.5, -0.2):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            check_alpha(bad)
    with pytest.raises(ValueError, match="suspect landmarks: expected 68"):
        demorph_image(s, s, lm[:5], lm)
    with pytest.raises(ValueError, match="live landmarks: expected 68"):
        demorph_image(s, s, lm, np.full((68, 2), np.nan))
    collapsed = lm.copy()
    collapsed[36:48] = collapsed[36]
    with pytest.raises(ValueError, match="eye centres"):
        demorph_image(s, s, lm, collapsed)


def test_a_failed_triangulation_is_a_value_error_not_a_crash(rng, monkeypatch):
    from scipy.spatial import QhullError

    import madpad.face.warp

    def qhull_fails(points, **kw):
        raise QhullError("QH6154 Qhull precision error: initial simplex is flat\nmore text")

    monkeypatch.setattr(madpad.face.warp, "delaunay_triangles", qhull_fails)
    s, lm = _smooth_image(rng), _landmarks(rng)
    with pytest.raises(ValueError, match="cannot triangulate the suspect's landmarks \\(QH6154 Qhull precision error"):
        demorph_image(s, s, lm, lm)


class _MeanColourEmbedder:
    """A stand-in FR embedder: the unit vector of the mean colour inside the landmarks' box."""

    dim = 3

    def __init__(self):
        self.calls = 0

    def _embed_face(self, image, analysis):
        self.calls += 1
        x0, y0, x1, y1 = np.rint(analysis.detection.box).astype(int)
        v = np.asarray(image, dtype=np.float64)[y0:y1, x0:x1].reshape(-1, 3).mean(0) + 1.0
        return v / np.linalg.norm(v)


def test_demorph_features_are_cached_per_pair_and_report_failures(rng):
    lm = _landmarks(rng)
    a_img, b_img = _smooth_image(rng), _smooth_image(rng)
    morph = np.rint(0.5 * a_img.astype(np.float64) + 0.5 * b_img).astype(np.uint8)
    emb = _MeanColourEmbedder()
    fx = DemorphFeatures(emb, "test-model", colour_match=False)
    pairs = [Pair("m", morph, a_img), Pair("b", a_img, a_img), Pair("x", b_img, a_img)]
    lms = np.stack([lm, lm, lm])
    collapsed = lm.copy()
    collapsed[36:48] = collapsed[36]
    live_lms = np.stack([lm, lm, collapsed])
    cache = FeatureCache()
    r = fx.many(pairs, lms, live_lms, alphas=(0.3, 0.5), cache=cache, ok=[True, True, True])
    assert r.features.shape == (3, 6) and r.status[:2] == ["ok", "ok"]
    assert r.status[2] == "failed" and "pair x: demorphing failed" in r.error[2] and np.isnan(r.features[2]).all()
    # hand check: the morph demorphed at alpha 0.5 is B; a bona fide pair demorphs to itself
    box = analysis_from_landmarks(lm).detection.box.round().astype(int)
    mean_b = b_img[box[1]:box[3], box[0]:box[2]].reshape(-1, 3).mean(0) + 1
    np.testing.assert_allclose(r.features[0, 3:], mean_b / np.linalg.norm(mean_b), atol=2e-3)
    calls, misses = emb.calls, cache.misses
    again = fx.many(pairs, lms, live_lms, alphas=(0.3, 0.5), cache=cache)
    assert again.status == r.status
    assert emb.calls == calls and cache.misses == misses  # every pair from the cache, failures included
    np.testing.assert_array_equal(again.features, r.features)
    skipped = fx.many(pairs[:1], lms[:1], live_lms[:1], cache=FeatureCache(), ok=[False])
    assert skipped.status == ["skipped"] and np.isnan(skipped.features).all()
    gone = fx.many([Pair("g", "no/such/file.jpg", a_img)], lms[:1], live_lms[:1], cache=FeatureCache())
    assert gone.status == ["unreadable"] and "pair g:" in gone.error[0] and np.isnan(gone.features).all()


# --------------------------------------------------------------------------- detectors on real faces
@pytest.fixture(scope="module")
def real_pairs(sample_dir):
    """Bona fide: neutral vs smiling photo of one subject; attack: a landmark morph of two subjects
    (alpha 0.5) vs the smiling photo of each contributor. Bundled FRLL sample (CC BY 4.0), 400 px."""
    import cv2

    from madpad.io import read_image
    from madpad.morph import get_morph_method

    def small(p):
        img = read_image(p)
        f = 400 / max(img.shape[:2])
        return cv2.resize(img, (round(img.shape[1] * f), round(img.shape[0] * f)), interpolation=cv2.INTER_AREA)

    subs = ("001", "004", "007")
    neutral = {s: small(sample_dir / "neutral" / f"{s}_03.jpg") for s in subs}
    smiling = {s: small(sample_dir / "smiling" / f"{s}_08.jpg") for s in subs}
    morpher = get_morph_method("landmark")
    out = [Pair(f"b{s}", neutral[s], smiling[s], "bona_fide", "", (s,)) for s in subs]
    for a, b in (("001", "004"), ("004", "007")):
        m = morpher.morph(neutral[a], neutral[b], alpha=0.5)
        out += [Pair(f"m{a}{b}_{x}", m, smiling[x], "attack", "landmark", (a, b)) for x in (a, b)]
    return out


def test_demorph_distance_separates_morphs_from_a_smiling_traveller(real_pairs, tmp_path):
    cache = FeatureCache()
    det = get_detector("demorph_distance", embedder_params=FAST)
    r = det.fit(real_pairs).score_pairs(real_pairs, cache=cache)
    assert r.status == ["ok"] * len(real_pairs)
    y = np.array([p.label == "attack" for p in real_pairs])
    assert r.scores[y].min() > r.scores[~y].max()
    plain = get_detector("embedding_distance", embedder_params=FAST).score(real_pairs, cache=cache)
    # the demorphed comparison pushes the morphs further from the bona fide pairs than the plain one
    assert r.scores[y].mean() - r.scores[~y].mean() > plain[y].mean() - plain[~y].mean()
    det.save(tmp_path / "d")
    head = json.loads((tmp_path / "d" / "detector.json").read_text())
    assert head["detector"] == "demorph_distance" and head["config"]["alpha"] == 0.5
    np.testing.assert_array_equal(load_detector(tmp_path / "d").score(real_pairs, cache=cache), r.scores)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        get_detector("demorph_distance", alpha=1.0)


def test_demorph_blocks_are_hand_checkable_and_the_svm_round_trips(real_pairs, tmp_path, caplog):
    cache = FeatureCache()
    det = get_detector("dmad_cues", embedder_params=FAST, features=["demorph_cos", "demorph_diff"], C=1.0)
    X, ok, _, _ = det._features(real_pairs, cache)
    assert ok.all() and X.shape[1] == len(det.feature_names()) == 2 + 2 * 128
    dist = get_detector("demorph_distance", embedder_params=FAST).score(real_pairs, cache=cache)
    np.testing.assert_allclose(X[:, 1], dist, atol=1e-6)  # demorph_cos at alpha 0.5 = the untrained score
    _, l, _, _ = det._image_features(real_pairs, cache)
    el = l[:, det._extractor().layout()["embedding"]].astype(np.float64)
    diff5 = X[:, 2 + 128:]
    np.testing.assert_allclose(1 - ((diff5 + el) * el).sum(1), X[:, 1], atol=1e-5)  # FR(D) - FR(live), alpha 0.5
    svm = get_detector("demorph_svm", embedder_params=FAST, C=1.0).fit(real_pairs, cache=cache)
    assert svm.features == ["diff", "demorph_diff"] and len(svm.feature_names()) == 3 * 128
    scores = svm.score(real_pairs, cache=cache)
    svm.save(tmp_path / "s")
    head = json.loads((tmp_path / "s" / "detector.json").read_text())
    # the demorphing the features were computed with is recorded, so a later change is noticed
    assert head["demorph"] == {"version": "demorph-v1", "colour_match": True, "fill_uncovered": True,
                               "low_res_iod": 48.0}
    with caplog.at_level(logging.WARNING, logger="madpad.mad.cues"):
        np.testing.assert_array_equal(load_detector(tmp_path / "s").score(real_pairs, cache=cache), scores)
    assert not caplog.records
    del head["demorph"]  # a checkpoint from before the record (and the uncovered-frame fill)
    (tmp_path / "s" / "detector.json").write_text(json.dumps(head))
    with caplog.at_level(logging.WARNING, logger="madpad.mad.cues"):
        load_detector(tmp_path / "s")
    assert len(caplog.records) == 1 and "not recorded, so possibly without the uncovered-frame fill" in caplog.text
    assert "retrain it" in caplog.text
    embedding_only = get_detector("embedding_svm", embedder_params=FAST, C=1.0).fit(real_pairs, cache=cache)
    embedding_only.save(tmp_path / "e")  # no demorphing, nothing recorded
    assert "demorph" not in json.loads((tmp_path / "e" / "detector.json").read_text())
    blank = np.full((200, 200, 3), 90, np.uint8)
    r = svm.score_pairs([Pair("noface", real_pairs[0].suspect, blank)], cache=cache)
    assert r.status == ["no_face"] and np.isnan(r.scores).all()


def test_demorph_distance_computes_only_embedding_and_landmarks_and_shares_the_cue_detectors_rows(
        real_pairs, monkeypatch):
    """The untrained detector's per-image rows are the FR embedding and the 68 landmarks of the cue
    extractor's rows (cut from them when cached, else computed without the upper-face embedding,
    region cues or texture); its demorphed suspects are the demorph_* blocks' cache entries."""
    from madpad.mad import cues
    from madpad.mad.cues import CueExtractor, DemorphExtractor

    images = [p.suspect for p in real_pairs[:3]] + [p.live for p in real_pairs[:3]]
    lean, full = DemorphExtractor(embedder_params=FAST), CueExtractor(embedder_params=FAST)
    fresh = lean.many(images, cache=FeatureCache()).features
    rows = full.many(images, cache=FeatureCache()).features
    lay = full.layout()
    np.testing.assert_array_equal(fresh, np.hstack([rows[:, lay["embedding"]], rows[:, lay["landmarks"]]]))
    assert lean.layout()["landmarks"] == slice(128, 128 + 136) and lean.id != full.id
    assert lean.demorph_id == full.demorph_id == full.id

    # scoring does none of the cue extractor's extra work ...
    def forbidden(*a, **k):
        raise AssertionError("demorph_distance computed a cue it does not use")

    with monkeypatch.context() as m:
        m.setattr(cues, "region_cues", forbidden)
        m.setattr(cues, "mask_lower_face", forbidden)
        m.setattr(cues, "texture_features", forbidden)
        alone = get_detector("demorph_distance", embedder_params=FAST).score(real_pairs, cache=FeatureCache())
    # ... and after demorph_svm's features, it computes nothing: cut rows, shared demorphed suspects
    cache = FeatureCache()
    get_detector("demorph_svm", embedder_params=FAST)._features(real_pairs, cache)
    misses = cache.misses
    shared = get_detector("demorph_distance", embedder_params=FAST).score(real_pairs, cache=cache)
    assert cache.misses == misses
    np.testing.assert_array_equal(shared, alone)


def test_cue_detectors_that_need_only_embedding_and_landmarks_use_the_lean_extractor(real_pairs, monkeypatch):
    """demorph_svm and any dmad_cues feature set within LEAN_BLOCKS compute one FR embedding and 68
    landmarks per image, and get the same pair features as from the whole cue vector."""
    from madpad.mad import cues

    assert isinstance(get_detector("dmad_cues", embedder_params=FAST)._extractor(), cues.CueExtractor)
    assert isinstance(get_detector("dmad_cues", embedder_params=FAST, features=["diff", "smad"])._extractor(),
                      cues.CueExtractor)

    def forbidden(*a, **k):
        raise AssertionError("a lean cue detector computed a cue it does not use")

    for name, extra in (("demorph_svm", {}), ("dmad_cues", {"features": ["cos", "landmarks", "demorph_diff"]})):
        lean = get_detector(name, embedder_params=FAST, **extra)
        assert isinstance(lean._extractor(), cues.DemorphExtractor)
        with monkeypatch.context() as m:
            for f in ("region_cues", "mask_lower_face", "texture_features"):
                m.setattr(cues, f, forbidden)
            X, ok, _, _ = lean._features(real_pairs, FeatureCache())
        whole = get_detector(name, embedder_params=FAST, **extra)
        whole._fx = cues.CueExtractor(embedder_params=FAST)
        X_whole, ok_whole, _, _ = whole._features(real_pairs, FeatureCache())
        assert ok.all() and np.array_equal(ok, ok_whole)
        np.testing.assert_array_equal(X, X_whole)


# ------------------------------------------------------------------ demorphing at the live capture's sharpness
def test_sharpness_sigma_recovers_the_blur_of_the_live_capture_and_ignores_exposure(rng):
    import cv2

    from madpad.mad.demorph import SHARPNESS_SIGMAS, band_ratio, sharpness_sigma

    lm = _landmarks(rng)  # inter-ocular distance 40 px: the sigmas tried are 0.4 ... 5.2 px
    s = _smooth_image(rng, scale=0.8)
    face = face_hull_mask(s.shape, lm)
    assert sharpness_sigma(s, s.astype(np.float32), lm) == 0.0  # as sharp as the suspect: nothing to match
    darker = np.clip(0.5 * s.astype(np.float64) + 60, 0, 255).astype(np.uint8)  # exposure and contrast only
    assert band_ratio(darker.mean(2), face, 40.0) == pytest.approx(band_ratio(s.mean(2), face, 40.0), rel=0.05)
    assert sharpness_sigma(s, darker.astype(np.float32), lm) == 0.0
    found = []
    for true in (1.0, 2.0, 4.0):
        live = cv2.GaussianBlur(s, (0, 0), true).astype(np.float32)
        sigma = sharpness_sigma(s, live, lm)
        # the largest grid sigma that leaves the suspect at least as sharp: at most the true blur, not far below
        assert 0.55 * true <= sigma <= 1.05 * true, (true, sigma)
        assert min(abs(sigma / 40.0 - g) for g in SHARPNESS_SIGMAS) < 1e-9  # a grid value x IOD
        found.append(sigma)
    assert found == sorted(found) and len(set(found)) == 3
    # only where the live capture reaches counts: a blurred live capture that covers nothing of the face
    assert sharpness_sigma(s, cv2.GaussianBlur(s, (0, 0), 4.0).astype(np.float32), lm,
                           cover=np.zeros(s.shape[:2], np.float32)) == 0.0


def test_a_blurred_live_capture_takes_out_the_suspects_coarse_content_only(rng):
    """Bona fide: live = blur(S). Plain demorphing gives D = 2S - blur(S), an unsharp mask of the
    suspect; at the live capture's sharpness D ~ S. Morph of A and B with live = blur(A): plain
    D = B + (A - blur(A)) keeps all of A's fine detail, matched D only half of it."""
    import cv2

    lm = _landmarks(rng)
    face = face_hull_mask((H, W), lm)
    s = _smooth_image(rng, scale=0.8)
    live = cv2.GaussianBlur(s, (0, 0), 2.0)
    plain = demorph_image(s, live, lm, lm, alpha=0.5, colour_match=False)
    matched = demorph_image(s, live, lm, lm, alpha=0.5, colour_match=False, match_sharpness=True)
    err_plain = np.abs(plain[face].astype(int) - s[face]).mean()
    err = np.abs(matched[face].astype(int) - s[face]).mean()
    assert err < err_plain / 3, (err, err_plain)
    # where a tightly cropped, blurred live capture does not reach, D = S (the fill takes the blurred reference)
    y0, y1, x0, x1 = 35, 150, 30, 112
    out = np.zeros(s.shape[:2], bool)
    out[:y0 - 8], out[:, :x0 - 8] = True, True
    cropped = demorph_image(s, live[y0:y1, x0:x1], lm, lm - [x0, y0], alpha=0.5, colour_match=False,
                            match_sharpness=True)
    assert np.abs(cropped[out].astype(int) - s[out]).max() <= 1
    # a live capture as sharp as the suspect: the same image as without the option, bit for bit
    np.testing.assert_array_equal(demorph_image(s, s, lm, lm, alpha=0.3, match_sharpness=True),
                                  demorph_image(s, s, lm, lm, alpha=0.3))

    a, b = _smooth_image(rng, scale=0.8).astype(np.float64), _smooth_image(rng, scale=0.8).astype(np.float64)
    morph = np.rint(0.5 * a + 0.5 * b).astype(np.uint8)
    live_a = cv2.GaussianBlur(a.astype(np.uint8), (0, 0), 2.0)
    detail_a = (a - cv2.GaussianBlur(a, (0, 0), 2.0))[face]

    def share_of_a(d):  # regression coefficient of D - B on A's fine detail, inside the face
        return float(((d.astype(np.float64)[face] - b[face]) * detail_a).sum() / (detail_a ** 2).sum())

    kw = {"alpha": 0.5, "colour_match": False}
    assert share_of_a(demorph_image(morph, live_a, lm, lm, **kw)) > 0.85
    assert share_of_a(demorph_image(morph, live_a, lm, lm, match_sharpness=True, **kw)) < 0.65


def test_whole_demorphed_image_at_the_live_capture_level(rng):
    """demorph_sharpness "whole": D = (S_low - alpha L_w) / (1 - alpha). Bona fide with live =
    blur(S): D ~ the live capture itself (True keeps the suspect's fine detail: D ~ S). Morph of A and
    B with live = blur(A): D ~ blur(B), none of A's fine detail. Low-resolution live capture of S:
    D ~ S at the live capture's resolution. A live capture as sharp as the suspect: unchanged."""
    import cv2

    from madpad.mad.demorph import at_scale

    lm = _landmarks(rng)
    face = face_hull_mask((H, W), lm)
    s = _smooth_image(rng, scale=0.8)
    live = cv2.GaussianBlur(s, (0, 0), 2.0)
    kw = {"alpha": 0.5, "colour_match": False}

    def err(d, ref):
        return np.abs(d[face].astype(float) - ref[face]).mean()

    whole = demorph_image(s, live, lm, lm, match_sharpness="whole", **kw)
    diff = demorph_image(s, live, lm, lm, match_sharpness=True, **kw)
    assert err(whole, live) < 0.35 * err(diff, live) and err(diff, s) < err(whole, s), (err(whole, live), err(diff, live))
    a, b = _smooth_image(rng, scale=0.8).astype(np.float64), _smooth_image(rng, scale=0.8).astype(np.float64)
    morph = np.rint(0.5 * a + 0.5 * b).astype(np.uint8)
    live_a = cv2.GaussianBlur(a.astype(np.uint8), (0, 0), 2.0)
    blur_b = cv2.GaussianBlur(b, (0, 0), 2.0)
    d_whole = demorph_image(morph, live_a, lm, lm, match_sharpness="whole", **kw)
    d_diff = demorph_image(morph, live_a, lm, lm, match_sharpness=True, **kw)
    assert err(d_whole, blur_b) < 0.5 * err(d_diff, blur_b), (err(d_whole, blur_b), err(d_diff, blur_b))
    # low resolution, not blurred further: the suspect at the live capture's resolution
    s2 = _smooth_image(rng, scale=1.2)
    f = 0.3
    small = cv2.resize(s2, (round(W * f), round(H * f)), interpolation=cv2.INTER_AREA)
    small_lm = (lm + 0.5) * f - 0.5
    low = demorph_image(s2, small, lm, small_lm, match_sharpness="whole", **kw)
    low_diff = demorph_image(s2, small, lm, small_lm, match_sharpness=True, **kw)
    ref = at_scale(s2, low_res_factor(lm, small_lm))
    assert err(low, ref) < 1.5 and err(low_diff, ref) > 2 * err(low, ref), (err(low, ref), err(low_diff, ref))
    # as sharp as the suspect, full resolution: the plain formula, bit for bit
    np.testing.assert_array_equal(demorph_image(s, s, lm, lm, alpha=0.3, match_sharpness="whole"),
                                  demorph_image(s, s, lm, lm, alpha=0.3))
    fx = DemorphFeatures(_MeanColourEmbedder(), "m", colour_match=False, match_sharpness="whole")
    assert fx.id(0.5) == "m|demorph-v1|alpha=0.5|colour=0|fill=1|sharp=whole"
    assert fx.settings["match_sharpness"] == "whole"


def test_sharpness_matching_has_its_own_cache_rows_and_checkpoint_record(rng):
    import cv2

    from madpad.mad.demorph import demorph_settings

    assert DemorphFeatures(None, "x", match_sharpness=True).id(0.5) == "x|demorph-v1|alpha=0.5|colour=1|fill=1|sharp=1"
    assert demorph_settings(True) == {**demorph_settings(), "match_sharpness": True}
    assert "match_sharpness" not in demorph_settings()  # earlier checkpoints' records read the same
    lm = _landmarks(rng)
    s = _smooth_image(rng, scale=0.8)
    pairs = [Pair("p", s, cv2.GaussianBlur(s, (0, 0), 2.0))]
    cache = FeatureCache()
    rows = [DemorphFeatures(_MeanColourEmbedder(), "m", colour_match=False, match_sharpness=m).many(
        pairs, lm[None], lm[None], alphas=(0.5,), cache=cache).features for m in (False, True)]
    assert {k[0] for k in cache._mem} == {"m|demorph-v1|alpha=0.5|colour=0|fill=1",
                                          "m|demorph-v1|alpha=0.5|colour=0|fill=1|sharp=1"}
    assert not np.allclose(rows[0], rows[1])  # the option reaches the demorphed image


def test_demorph_sharpness_option_of_the_detectors(real_pairs, tmp_path, caplog):
    import cv2

    from madpad.errors import UsageError

    cache = FeatureCache()
    bona = real_pairs[0]
    blurred = [Pair("blurred", bona.suspect, cv2.GaussianBlur(np.asarray(bona.live), (0, 0), 2.5), "bona_fide")]
    plain = get_detector("demorph_distance", embedder_params=FAST).score(blurred, cache=cache)
    det = get_detector("demorph_distance", embedder_params=FAST, demorph_sharpness=True)
    matched = det.score(blurred, cache=cache)
    assert matched[0] < plain[0]  # the blurred capture of the traveller no longer leaves a halo that reads as another face
    cos = get_detector("dmad_cues", embedder_params=FAST, features=["demorph_cos"], demorph_sharpness=True)
    np.testing.assert_allclose(cos._features(blurred, cache)[0][0, 1], matched[0], atol=1e-6)  # alpha 0.5 column
    det.save(tmp_path / "d")
    assert load_detector(tmp_path / "d").get_config()["demorph_sharpness"] is True
    svm = get_detector("dmad_cues", embedder_params=FAST, features=["demorph_diff"], C=1.0,
                       demorph_sharpness=True).fit(real_pairs, cache=cache)
    scores = svm.score(real_pairs, cache=cache)
    svm.save(tmp_path / "s")
    head = json.loads((tmp_path / "s" / "detector.json").read_text())
    assert head["config"]["demorph_sharpness"] is True and head["demorph"]["match_sharpness"] is True
    with caplog.at_level(logging.WARNING, logger="madpad.mad.cues"):
        np.testing.assert_array_equal(load_detector(tmp_path / "s").score(real_pairs, cache=cache), scores)
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="madpad.mad.cues"):  # loaded without the option: noticed
        load_detector(tmp_path / "s", demorph_sharpness=False)
    assert "trained with other demorphing settings" in caplog.text
    whole = get_detector("dmad_cues", embedder_params=FAST, features=["demorph_diff"], C=1.0,
                         demorph_sharpness="whole").fit(real_pairs, cache=cache)
    whole.save(tmp_path / "w")
    head = json.loads((tmp_path / "w" / "detector.json").read_text())
    assert head["config"]["demorph_sharpness"] == "whole" and head["demorph"]["match_sharpness"] == "whole"
    np.testing.assert_array_equal(load_detector(tmp_path / "w").score(real_pairs, cache=cache),
                                  whole.score(real_pairs, cache=cache))
    assert get_detector("demorph_distance", embedder_params=FAST, demorph_sharpness="whole").score(
        blurred, cache=cache)[0] < matched[0]  # the blurred traveller: closer still
    assert "demorph_sharpness" not in get_detector("dmad_cues").get_config()
    for name in ("dmad_cues", "demorph_distance", "demorph_svm"):
        with pytest.raises(UsageError, match="demorph_sharpness must be true, false or whole; got 'yes'"):
            get_detector(name, demorph_sharpness="yes")
        demorph_only = {"features": ["demorph_diff"]} if name == "dmad_cues" else {}
        assert get_detector(name, demorph_sharpness="whole", **demorph_only).get_config()["demorph_sharpness"] == "whole"
    for name, extra in (("embedding_svm", {}), ("dmad_cues", {"features": ["diff", "landmarks"]})):
        with pytest.raises(UsageError, match=r"demorph_sharpness needs a demorphing feature block .* features "
                                             r"\['diff'.*\] have none"):
            get_detector(name, demorph_sharpness=True, **extra)

"""Spatial-consistency rules of the T-shirt PAD on hand-made detections (no models)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from madpad.pad.learned import LearnedScorer, fit_scorer
from madpad.pad.persons import PersonDetection
from madpad.pad.spatial import (
    FEATURE_NAMES,
    RULES,
    RuleConfig,
    assess,
    associate,
    containment,
    silhouette_features,
)

SHAPE = (1000, 600)  # H, W


def person(box=(100, 50, 500, 1000), *, shoulders_y=None, head=None, mask=None, score=0.9):
    kps = None
    if shoulders_y is not None:
        kps = {"left_shoulder": (450, shoulders_y, 0.99), "right_shoulder": (150, shoulders_y, 0.99)}
        if head is not None:
            kps.update({"nose": (head[0], head[1], 0.99), "left_eye": (head[0] + 25, head[1] - 30, 0.99),
                        "right_eye": (head[0] - 25, head[1] - 30, 0.99)})
    return PersonDetection(box=box, score=score, keypoints=kps, mask=mask)


HEAD_FACE = np.array([240, 130, 360, 270])    # centre (300, 200): head region
TORSO_FACE = np.array([240, 480, 360, 620])   # centre (300, 550): chest


def test_face_in_head_region_is_bona_fide():
    res = assess([HEAD_FACE], [person(shoulders_y=380, head=(300, 210))], image_shape=SHAPE)
    assert res.status == "ok" and res.fired == []
    # hand-computed: shoulder offset = (200 - 380) / 300 = -0.6; torso = sigmoid(6 * -0.6)
    fa = res.faces[0]
    assert fa.shoulder_offset == pytest.approx(-0.6)
    assert fa.strengths["torso"] == pytest.approx(1 / (1 + math.exp(3.6)))
    assert fa.pose_head_mismatch == 0.0
    assert res.score == pytest.approx(1 / (1 + math.exp(3.6)))
    assert res.score < 0.5


def test_face_on_torso_is_attack_with_explanation():
    res = assess([TORSO_FACE], [person(shoulders_y=380, head=(300, 210))], image_shape=SHAPE)
    fa = res.faces[0]
    assert fa.shoulder_offset == pytest.approx((550 - 380) / 300)
    assert "torso" in res.fired and "pose_head" in res.fired  # nose/eyes are not in the chest face
    assert res.score >= 0.9
    assert "torso" in res.explanation
    row = res.row()
    assert row["rule_torso"] == 1 and row["rule_multi_face"] == 0 and row["n_faces"] == 1


def test_box_only_person_uses_relative_height():
    p = person()  # no keypoints: rel_y rule, head region = top 35% of the box
    head = assess([HEAD_FACE], [p], image_shape=SHAPE)
    torso = assess([TORSO_FACE], [p], image_shape=SHAPE)
    assert head.faces[0].rel_y == pytest.approx((200 - 50) / 950)
    assert head.score < 0.5 <= torso.score
    assert torso.fired == ["torso"]


def test_silhouette_without_keypoints_is_judged_by_the_mask_not_by_rel_y():
    """A head-and-shoulders silhouette puts a real face half-way down its box (rel_y ~ 0.5), as a
    chest print puts its face in a body box: without keypoints only the silhouette rules judge it."""
    m = np.zeros(SHAPE, np.float32)
    m[100:300, 230:370] = 1.0   # head
    m[300:380, 270:330] = 1.0   # neck
    m[380:, 100:500] = 1.0      # shoulders down to the image bottom
    sil = PersonDetection(box=(100, 100, 500, 1000), score=0.9, mask=m)
    face = np.array([250, 380, 350, 500])  # rel_y = (440 - 100) / 900 = 0.38 -> torso would fire
    real = assess([np.array([250, 150, 350, 270])], [sil], image_shape=SHAPE)
    assert real.faces[0].strengths["torso"] == 0.0 and real.score < 0.5
    chest = assess([face + [0, 200, 0, 200]], [sil], image_shape=SHAPE)  # a face on the chest
    assert chest.faces[0].strengths["torso"] == 0.0 and {"body_above", "body_width"} <= set(chest.fired)
    boxed = assess([face], [PersonDetection(box=(100, 100, 500, 1000), score=0.9)], image_shape=SHAPE)
    assert boxed.faces[0].strengths["torso"] > 0.5  # no silhouette: the box's rel_y rule
    holed = m.copy()
    holed[380:520, 200:400] = 0.0  # the silhouette misses the face (the print cut out, open at the side)
    holed[380:520, 100:200] = 0.0
    off = assess([face], [PersonDetection(box=(100, 100, 500, 1000), score=0.9, mask=holed)], image_shape=SHAPE)
    assert np.isnan(off.faces[0].head_room) and off.faces[0].strengths["torso"] > 0.5  # back to rel_y


def test_two_faces_in_one_person_is_attack_and_the_head_face_is_kept():
    res = assess([HEAD_FACE, TORSO_FACE], [person(shoulders_y=380, head=(300, 210))], image_shape=SHAPE)
    assert "multi_face" in res.fired
    assert res.faces[0].strengths["multi_face"] == 0.0  # the head-region face is the person's own
    assert res.faces[1].strengths["multi_face"] == pytest.approx(RuleConfig().multi_face_weight)
    feats = dict(zip(FEATURE_NAMES, res.features))
    assert feats["max_faces_per_person"] == 2 and feats["n_faces"] == 2


def test_no_person_and_no_face_outcomes_are_documented_values():
    lone = assess([HEAD_FACE], [], image_shape=SHAPE)
    assert lone.fired == ["no_person"] and lone.score == pytest.approx(0.75)
    assert lone.faces[0].person is None
    # a person but no face: a failure to acquire (NaN score by default), not bona fide
    fta = assess([], [person()], image_shape=SHAPE)
    assert fta.status == "person_no_face" and math.isnan(fta.score) and fta.fired == []
    assert "failure to acquire" in fta.explanation and fta.row()["status"] == "person_no_face"
    assert assess([], [person()], image_shape=SHAPE, config=RuleConfig(person_no_face_score=0.0)).score == 0.0
    # neither face nor person: no_face, scored by no_face_score (0 = bona fide by default)
    empty = assess([], [], image_shape=SHAPE)
    assert empty.status == "no_face" and empty.score == 0.0 and empty.fired == []
    nan_cfg = assess([], [], image_shape=SHAPE, config=RuleConfig(no_face_score=float("nan")))
    assert math.isnan(nan_cfg.score)


def test_several_people_each_face_judged_against_its_own_person():
    left = person(box=(0, 0, 280, 1000), score=0.8)
    right = person(box=(320, 0, 600, 1000), score=0.8)
    faces = [np.array([80, 60, 200, 200]), np.array([400, 60, 520, 200])]
    res = assess(faces, [left, right], image_shape=SHAPE)
    assert [f.person for f in res.faces] == [0, 1]
    assert res.fired == [] and res.score < 0.5


def test_association_prefers_containment_then_score():
    a = person(box=(0, 0, 400, 1000), score=0.5)
    b = person(box=(250, 0, 600, 1000), score=0.9)
    face = np.array([260, 100, 380, 220])  # fully inside both
    assert associate([face], [a, b]) == [(1, 1.0)]  # tie on containment -> higher score
    assert containment(np.array([0, 0, 10, 10]), np.array([5, 0, 20, 10])) == pytest.approx(0.5)


def _silhouette(shape=SHAPE):
    """A head (x 230..370, y 100..300), a neck and a wide torso (x 100..500, y 380..)."""
    m = np.zeros(shape, bool)
    m[100:300, 230:370] = True
    m[300:380, 270:330] = True
    m[380:, 100:500] = True
    return m


def test_silhouette_features_hand_computed():
    m = _silhouette()
    hr, wr, clipped = silhouette_features(m, np.array([250, 140, 350, 260]))  # face on the head
    assert hr == pytest.approx((140 - 100) / 120) and wr == pytest.approx(140 / 100) and clipped == 0.0
    hr2, wr2, _ = silhouette_features(m, np.array([250, 480, 350, 600]))  # printed face on the chest
    assert hr2 == pytest.approx((480 - 100) / 120) and wr2 == pytest.approx(400 / 100)


def test_silhouette_holes_are_filled_and_small_gaps_bridged():
    from madpad.pad.spatial import fill_holes

    m = _silhouette()
    m[440:470, 200:400] = False  # a hole in the torso above a chest face (a print's own background)
    face = np.array([250, 480, 350, 600])
    hr_raw, _, _ = silhouette_features(m, face)
    assert hr_raw == pytest.approx((480 - 470) / 120)  # the walk stops at the hole
    hr_filled, _, _ = silhouette_features(fill_holes(m), face)
    assert hr_filled == pytest.approx((480 - 100) / 120)
    hr_gap, _, _ = silhouette_features(m, face, max_gap=0.35)  # 30 px gap < 0.35 * 120 px
    assert hr_gap == pytest.approx((480 - 100) / 120)
    hr_small_gap, _, _ = silhouette_features(m, face, max_gap=0.2)  # 24 px < 30 px: not bridged
    assert hr_small_gap == pytest.approx(hr_raw)


def test_pose_without_visible_shoulders_rel_y_rule_is_a_switch():
    # only head keypoints visible: the pose box covers the head, the face centre sits low in it
    kps = {"nose": (300, 200, 0.99), "left_eye": (325, 170, 0.99), "right_eye": (275, 170, 0.99),
           "left_shoulder": (450, 990, 0.2), "right_shoulder": (150, 990, 0.2)}
    p = PersonDetection(box=(230, 60, 370, 240), score=0.9, keypoints=kps)
    on = assess([HEAD_FACE], [p], image_shape=SHAPE)
    rel_y = (200 - 60) / 180
    assert on.faces[0].rel_y == pytest.approx(rel_y)
    assert on.faces[0].strengths["torso"] == pytest.approx(1 / (1 + math.exp(-20 * (rel_y - 0.35))))
    off = assess([HEAD_FACE], [p], image_shape=SHAPE, config=RuleConfig(rel_y_without_shoulders=0.0))
    assert off.faces[0].strengths["torso"] == 0.0 and off.score < 0.5


def test_mask_rules_catch_a_chest_face_even_when_the_pose_follows_it():
    # the pose model anchored on the printed face: its shoulders are below it, keypoints agree with it
    m = _silhouette().astype(np.float32)
    p = person(box=(100, 400, 500, 1000), shoulders_y=700, head=(300, 550), mask=m)
    res = assess([TORSO_FACE], [p], image_shape=SHAPE)
    assert res.faces[0].strengths["torso"] < 0.5 and res.faces[0].strengths["pose_head"] == 0.0
    assert {"body_above", "body_width"} <= set(res.fired)
    assert res.score > 0.99
    real = assess([np.array([250, 140, 350, 260])], [person(shoulders_y=390, head=(300, 215), mask=m)],
                  image_shape=SHAPE)
    assert real.score < 0.5


def test_rule_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="head_region_mx"):
        RuleConfig.from_dict({"head_region_mx": 0.3})
    assert RuleConfig.from_dict({"head_region_max": 0.3}).head_region_max == 0.3
    assert set(RULES) == {"torso", "face_size", "face_roll", "pose_head", "body_above", "body_width", "no_body_below",
                          "multi_face", "no_person", "nested_person"}


def test_head_cropped_print_whose_wearer_the_segmenter_missed_keeps_the_rel_y_rule():
    """Regression (demo, tshirt_head_cropped): the pose model found nobody, the selfie mask found only
    the printed photo, a face-sized island with nothing under it. Such a silhouette says nothing about
    where a head is: the rel_y rule still judges the face, and no_body_below fires. A real
    head-and-shoulders silhouette (neck and shoulders under the face) is left to the silhouette rules."""
    m = np.zeros(SHAPE, np.float32)
    m[300:520, 240:360] = 1.0                  # the print only: the wearer's shirt is not segmented
    island = PersonDetection(box=(240, 300, 360, 520), score=0.9, mask=m)
    face = np.array([245, 350, 355, 510])      # face centre y 430: rel_y = 130 / 220 = 0.59
    res = assess([face], [island], image_shape=SHAPE)
    fa = res.faces[0]
    assert fa.rel_y == pytest.approx(130 / 220)
    assert fa.body_below == pytest.approx((519 - 510) / 160) and fa.body_below_clipped == 0.0
    assert fa.strengths["torso"] == pytest.approx(1 / (1 + math.exp(-20 * (130 / 220 - 0.35))))
    assert fa.strengths["no_body_below"] == pytest.approx(1 / (1 + math.exp(-6 * (0.5 - 9 / 160))))
    assert {"torso", "no_body_below"} <= set(res.fired) and res.score > 0.9
    # the same face on a head-and-shoulders silhouette that runs to the bottom edge: bona fide
    body = m.copy()
    body[520:540, 270:330] = 1.0               # neck
    body[540:, 120:480] = 1.0                  # shoulders and chest down to the image bottom
    real = assess([face], [PersonDetection(box=(120, 300, 480, 1000), score=0.9, mask=body)], image_shape=SHAPE)
    assert real.faces[0].body_below_clipped == 1.0
    assert real.faces[0].strengths["torso"] == 0.0 and real.faces[0].strengths["no_body_below"] == 0.0
    assert real.score < 0.5


def test_body_below_uses_every_persons_silhouette_when_the_mask_is_split_between_boxes():
    """A person detector's weak box on the torso takes the lower share of the selfie mask: the head's
    share ends under the chin, but the body is still there, under the face. Not a floating face."""
    head_part = np.zeros(SHAPE, np.float32)
    head_part[100:310, 230:370] = 1.0          # head and chin: this person's share ends at row 309
    torso_part = np.zeros(SHAPE, np.float32)
    torso_part[310:, 100:500] = 1.0            # neck and torso: another box's share, to the bottom edge
    head = PersonDetection(box=(230, 100, 370, 310), score=0.95, mask=head_part)
    torso = PersonDetection(box=(100, 310, 500, 1000), score=0.4, mask=torso_part)
    face = np.array([245, 150, 355, 290])
    res = assess([face], [head, torso], image_shape=SHAPE)
    fa = res.faces[0]
    assert fa.person == 0 and fa.body_below_clipped == 1.0
    assert fa.body_below == pytest.approx((999 - 290) / 140)
    assert fa.strengths["no_body_below"] == 0.0 and fa.strengths["torso"] == 0.0 and res.score < 0.5
    alone = assess([face], [head], image_shape=SHAPE)  # without the torso's share: a floating face
    assert alone.faces[0].body_below == pytest.approx((309 - 290) / 140) and "no_body_below" in alone.fired


def test_silhouette_below_hand_computed():
    from madpad.pad.spatial import silhouette_below

    m = _silhouette()                          # head 100-300, neck 300-380, torso 380 to the bottom
    below, clipped = silhouette_below(m, np.array([250, 140, 350, 260]))
    assert below == pytest.approx((999 - 260) / 120) and clipped == 1.0
    cut = m.copy()
    cut[700:] = False                          # the body ends at row 699 inside the frame
    below, clipped = silhouette_below(cut, np.array([250, 140, 350, 260]))
    assert below == pytest.approx((699 - 260) / 120) and clipped == 0.0
    gap = m.copy()
    gap[320:340] = False                       # a 20 px gap under the chin: bridged at max_gap=0.35
    assert silhouette_below(gap, np.array([250, 140, 350, 260]))[0] == pytest.approx((319 - 260) / 120)
    assert silhouette_below(gap, np.array([250, 140, 350, 260]), max_gap=0.35)[1] == 1.0
    assert all(np.isnan(silhouette_below(m, np.array([0, 0, 40, 40]))))  # face centre off the mask


def test_face_too_large_for_the_shoulders_fires_face_size():
    """A print larger than a head, with the wearer's shoulders in the frame: the face box is as wide
    as 0.9 of the shoulder distance, where an adult's face is about 0.4-0.7 of it."""
    big = np.array([165, 100, 435, 370])       # 270 px wide; shoulders 300 px apart
    res = assess([big], [person(shoulders_y=520, head=(300, 250))], image_shape=SHAPE)
    fa = res.faces[0]
    assert fa.face_shoulder_ratio == pytest.approx(0.9)
    assert fa.strengths["face_size"] == pytest.approx(1 / (1 + math.exp(-25 * (0.9 - 0.8))))
    assert "face_size" in res.fired and res.score > 0.9
    normal = assess([HEAD_FACE], [person(shoulders_y=380, head=(300, 210))], image_shape=SHAPE)
    assert normal.faces[0].face_shoulder_ratio == pytest.approx(0.4) and normal.faces[0].strengths["face_size"] < 0.01
    # shoulders the frame cuts off (within shoulder_margin face heights of the bottom edge) are not used
    cut = assess([big], [person(shoulders_y=990, head=(300, 250))], image_shape=SHAPE)
    assert np.isnan(cut.faces[0].face_shoulder_ratio) and cut.faces[0].strengths["face_size"] == 0.0
    feats = dict(zip(FEATURE_NAMES, res.features))
    assert feats["max_face_shoulder_ratio"] == pytest.approx(0.9)


def test_learned_scorer_fits_and_round_trips_without_pickle(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    X = rng.normal(size=(n, len(FEATURE_NAMES)))
    y = (X[:, FEATURE_NAMES.index("max_rel_y")] > 0).astype(int)
    X[::7, 3] = np.nan  # missing values are imputed
    model = fit_scorer(X, y)
    s = model.score(X)
    assert s.shape == (n,) and np.all((s >= 0) & (s <= 1))
    assert s[y == 1].mean() > s[y == 0].mean() + 0.3  # higher = attack
    path = model.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as z:  # plain arrays only
        assert z["coef"].dtype == np.float64
    again = LearnedScorer.load(path)
    np.testing.assert_allclose(again.score(X), s)
    with pytest.raises(ValueError, match="both bona fide"):
        fit_scorer(X, np.ones(n))
    with pytest.raises(ValueError, match="features"):
        model.score(X[:, :3])


def test_a_person_nested_in_another_owns_no_face():
    """A COCO detector finds the printed photo on a shirt as a person of its own; its face goes to
    the wearer around it and is judged there (here: low in the wearer's box)."""
    wearer = person(box=(100, 50, 500, 1000), score=0.8)
    printed = person(box=(220, 440, 380, 800), score=0.9)  # inside the wearer, well below its top
    res = assess([TORSO_FACE], [wearer, printed], image_shape=SHAPE)
    assert res.faces[0].person == 0 and {"torso", "nested_person"} <= set(res.fired)
    assert res.faces[0].strengths["nested_person"] == pytest.approx(RuleConfig().nested_weight)
    assert dict(zip(FEATURE_NAMES, res.features))["n_nested_persons"] == 1
    # the wearer's own face, outside the nested box, is not touched by the rule
    both = assess([HEAD_FACE, TORSO_FACE], [wearer, printed], image_shape=SHAPE)
    assert both.faces[0].strengths["nested_person"] == 0.0
    off = assess([TORSO_FACE], [wearer, printed], image_shape=SHAPE, config=RuleConfig(drop_nested=0.0))
    assert off.faces[0].person == 1 and off.score < 0.5  # the printed "person" would vouch for its face


def test_two_people_in_one_silhouette_mask_versus_a_mask_per_person():
    """The reported false alarm: one person box and mask for two people puts both faces in one
    person (multi_face); a box and a share of the mask per person judges each face on its own body."""
    from madpad.pad.person_onnx import split_mask

    m = np.zeros(SHAPE, np.float32)
    for x0 in (40, 340):                      # two people: head 120 wide, torso 220 wide
        m[60:260, x0 + 50:x0 + 170] = 1.0
        m[260:300, x0 + 85:x0 + 135] = 1.0
        m[300:, x0:x0 + 220] = 1.0
    faces = [np.array([95, 100, 205, 230]), np.array([395, 100, 505, 230])]
    one = PersonDetection(box=(40, 60, 560, 1000), score=0.9, mask=m)
    merged = assess(faces, [one], image_shape=SHAPE, config=RuleConfig(split_side_by_side=0.0))
    assert "multi_face" in merged.fired and merged.score >= 0.5
    boxes = [(40, 60, 260, 420), (340, 60, 560, 420)]  # head-and-shoulders boxes, as COCO detectors give
    people = [PersonDetection(box=b, score=0.8, mask=mk) for b, mk in zip(boxes, split_mask(m, boxes))]
    res = assess(faces, people, image_shape=SHAPE)
    assert [f.person for f in res.faces] == [0, 1] and res.fired == [] and res.score < 0.5
    assert all(f.body_width_ratio == pytest.approx(120 / 110) for f in res.faces)


def test_face_roll_relative_to_the_shoulder_line():
    from madpad.face import FaceDetection

    def face(angle_deg):
        t = np.radians(angle_deg)
        c = np.array([300.0, 200.0])
        lm = np.array([c + [-30 * np.cos(t), -30 * np.sin(t)], c + [30 * np.cos(t), 30 * np.sin(t)],
                       c, c + [-20, 30], c + [20, 30]])
        return FaceDetection(HEAD_FACE, 0.9, lm)

    level = person(shoulders_y=380, head=(300, 210))
    res = assess([face(20.0)], [level], image_shape=SHAPE)
    assert res.faces[0].roll == pytest.approx(20.0)
    assert dict(zip(FEATURE_NAMES, res.features))["max_face_roll"] == pytest.approx(20.0)
    tilted = PersonDetection(box=(100, 50, 500, 1000), score=0.9, keypoints={
        "left_shoulder": (450, 380 + 300 * np.tan(np.radians(20)), 0.99), "right_shoulder": (150, 380, 0.99)})
    assert assess([face(20.0)], [tilted], image_shape=SHAPE).faces[0].roll == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(assess([HEAD_FACE], [level], image_shape=SHAPE).faces[0].roll)  # no landmarks: undefined


def _tilted_face(angle_deg, centre=(300.0, 200.0), box=HEAD_FACE):
    from madpad.face import FaceDetection

    t = np.radians(angle_deg)
    c = np.array(centre)
    lm = np.array([c + [-30 * np.cos(t), -30 * np.sin(t)], c + [30 * np.cos(t), 30 * np.sin(t)],
                   c, c + [-20, 30], c + [20, 30]])
    return FaceDetection(np.asarray(box, dtype=np.float64), 0.9, lm)


def test_face_roll_fires_on_a_face_rolled_against_the_upright_camera():
    """A large print turned on the chest: the pose model anchors on the print and tilts its shoulders
    with it, so the roll relative to the shoulders stays small; against the image horizontal (an
    upright capture camera) the face is rolled far more than a person standing for a photo rolls
    the head."""
    cfg = RuleConfig()
    anchored = PersonDetection(box=(100, 50, 500, 1000), score=0.9, keypoints={  # shoulders tilted by 22 degrees
        "left_shoulder": (450, 380 + 300 * np.tan(np.radians(22)), 0.99), "right_shoulder": (150, 380, 0.99)})
    res = assess([_tilted_face(25.0)], [anchored], image_shape=SHAPE)
    fa = res.faces[0]
    assert fa.roll == pytest.approx(3.0) and fa.tilt == pytest.approx(25.0)
    # hand-computed: 0.8 * sigmoid(0.4 * (25 - 15))
    assert fa.strengths["face_roll"] == pytest.approx(0.8 / (1 + math.exp(-4.0)))
    assert "face_roll" in res.fired and res.score >= 0.5
    upright = assess([_tilted_face(-5.0)], [person(shoulders_y=380, head=(300, 210))], image_shape=SHAPE)
    assert upright.faces[0].strengths["face_roll"] == pytest.approx(0.8 / (1 + math.exp(4.0)))
    assert "face_roll" not in upright.fired and upright.score < 0.5
    off = assess([_tilted_face(25.0)], [anchored], image_shape=SHAPE, config=RuleConfig(tilt_weight=0.0))
    assert off.faces[0].strengths["face_roll"] == 0.0 and off.score < 0.5
    assert cfg.tilt_max == 15.0


def test_side_by_side_cuts_pair_heads_not_a_head_and_its_print():
    from madpad.pad.spatial import side_by_side_cuts

    a, b, c = [100, 100, 200, 220], [300, 110, 400, 230], [500, 90, 600, 210]
    assert side_by_side_cuts([a, b]) == [250.0]
    assert side_by_side_cuts([c, a, b]) == [250.0, 450.0]  # three in a row: the a-c cut crosses b, dropped
    below = [110, 330, 190, 430]                      # a print under head a (its chest): not beside it
    assert side_by_side_cuts([a, below]) == []
    assert side_by_side_cuts([a, [300, 100, 500, 350]]) == []  # 2.1 times a's height: not a pair of heads
    assert side_by_side_cuts([a, [150, 100, 260, 220]]) == []  # overlapping columns


def test_a_person_owning_two_heads_side_by_side_is_split_into_two():
    """NanoDet can miss two people standing close together; their touching silhouettes then make one
    box-only person owning both faces (multi_face). Split between the two heads, each face is judged
    on its own strip of the silhouette; a print under one of the heads is still a second face there."""
    m = np.zeros(SHAPE, np.float32)
    for x0 in (40, 260):                      # touching: the torsos meet at x = 260
        m[60:260, x0 + 50:x0 + 170] = 1.0
        m[260:300, x0 + 85:x0 + 135] = 1.0
        m[300:, x0:x0 + 220] = 1.0
    faces = [np.array([95, 100, 205, 230]), np.array([315, 100, 425, 230])]
    one = PersonDetection(box=(40, 60, 480, 1000), score=0.9, mask=m, detector="nanodet/selfie")
    res = assess(faces, [one], image_shape=SHAPE)
    assert res.n_persons == 2 and [f.person for f in res.faces] == [0, 1]
    assert res.persons[0].box[2] == pytest.approx(260.0) and res.persons[1].box[0] == pytest.approx(260.0)
    assert res.fired == [] and res.score < 0.5
    # the mask is cut at the split: each strip's silhouette is one person's
    assert res.persons[0].mask[:, 260:].sum() == 0 and res.persons[1].mask[:, :260].sum() == 0
    old = assess(faces, [one], image_shape=SHAPE, config=RuleConfig(split_side_by_side=0.0))
    assert "multi_face" in old.fired and old.score >= 0.5
    # a print on the right person's chest: still a second face of that person
    printed = np.array([320, 420, 420, 540])
    attack = assess([*faces, printed], [one], image_shape=SHAPE)
    assert attack.faces[2].person == attack.faces[1].person and "multi_face" in attack.fired


def test_split_gives_the_pose_to_the_strip_holding_its_head():
    from madpad.pad.spatial import split_person

    p = person(box=(0, 50, 600, 1000), shoulders_y=380, head=(450, 210))
    left, right = split_person(p, [300.0])
    assert left.keypoints is None and right.keypoints == p.keypoints and right.detector == "split"
    assert tuple(left.box) == (0, 50, 300, 1000) and tuple(right.box) == (300, 50, 600, 1000)
    assert split_person(p, [700.0]) == [p]  # a cut outside the box leaves the person whole

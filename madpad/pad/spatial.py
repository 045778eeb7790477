"""Spatial consistency of faces and persons: features and the rule-based PAD score.

A genuine face sits in the head region of a detected person: the top of the person box, above the
shoulder line, where the pose model puts the nose and eyes. A T-shirt attack shows a face on the
torso, a face that no person owns, or two faces inside one person. This module turns face and
person detections into per-face features, image-level features and a PAD score in [0, 1]
(**higher = more likely a presentation attack**; an image is classified attack when
``score >= threshold``).

Association: each face goes to the person whose box contains the largest share of the face box
(``containment >= min_containment``) with the face centre inside the box; ties go to the
higher-scoring person. Several faces may belong to one person.

Rule strengths (each in [0, 1], per face) and the image score::

    torso      = sigmoid(slope * (face_cy - shoulder_y) / shoulder_width)       (shoulders visible)
               = sigmoid(slope_rel * (rel_y - head_region_max))                  (body box, no keypoints)
                 (for a pose whose shoulders are not visible the box covers the visible keypoints
                 only; the rel_y rule still applies unless rel_y_without_shoulders=0; a person
                 without keypoints whose silhouette continues under the face (body_below >=
                 body_below_min, or to the image's bottom edge) is left to the silhouette rules)
    face_size  = sigmoid(slope_size * (face_width / shoulder_width - face_shoulder_max))
                 (shoulders visible and inside the frame by >= shoulder_margin face heights: a
                 shoulder the frame cuts off is a guess of the pose model). An adult's face is
                 about 0.4-0.7 of the distance between the shoulder joints, seen from the front; a
                 print larger than a head, on a chest, is 0.8 and more
    face_roll  = tilt_weight * sigmoid(slope_tilt * (tilt - tilt_max))
                 tilt: |angle of the eye line against the image horizontal|, degrees (faces with eye
                 landmarks). People standing for a photo keep the head nearly upright (ICAO: 8
                 degrees); a print turned on a chest is rolled up to 30. Measured against the camera,
                 not the shoulders: the pose model anchors on a large print and tilts its shoulder
                 line with it. Assumes an upright camera (tilt_weight=0 switches the rule off)
    pose_head  = 1 - share of the person's visible head keypoints (nose, eyes) inside the face box
                 (0 when the person has no visible head keypoints)
    body_above = sigmoid(slope_mask * (head_room - head_room_max))                (person mask)
                 head_room: how far the person silhouette continues above the face box top, in face
                 heights (walking up the face's central columns); a real face has only hair above
                 it (~0.5), a printed chest face has neck and head above it (> 1.5)
    body_width = sigmoid(slope_mask * (width_ratio - width_ratio_max))            (person mask)
                 width_ratio: silhouette width on the face centre's row / face box width; a head is
                 ~1.2-1.5 face widths wide, a chest >= 2
                 (the mask's holes are filled first: a printed photo's own background is often
                 segmented as a hole in the wearer's silhouette)
    no_body_below = sigmoid(slope_mask * (body_below_min - body_below))           (person mask)
                 body_below: how far the silhouette continues below the face box bottom, in face
                 heights (walking down the face's central columns, on the union of every person's
                 mask: a mask split between overlapping person boxes may give the body under a face
                 to another box); a real face has a neck and
                 shoulders under it (the walk usually reaches the image's bottom edge), a printed
                 face whose wearer the segmenter does not see is a face-sized island (~0). 0 when
                 the walk reaches the image's bottom edge (the frame cut the body off)
    multi_face = multi_face_weight for every face of a person with >= 2 faces that is not the
                 person's most head-like face
    no_person  = no_person_weight for a face that no person owns
    nested_person = nested_weight for a face whose centre lies in a nested person's box (a person
                 detected inside another person's body: a worn picture of a person)
    face score = max(torso, face_size, face_roll, pose_head * pose_head_weight, body_above, body_width,
                     no_body_below, multi_face, no_person, nested_person)
    image score = max over faces

A rule "fires" when its strength is >= 0.5; the explanation lists the fired rules.

Defined outcomes:

* an image with **a person but no face** (status ``person_no_face``): the face detectors found
  nothing that face recognition could match, yet someone is there, so the image was not acquired
  rather than judged. Its score is ``RuleConfig.person_no_face_score``, default NaN: a **failure to
  acquire** (the CLI writes an empty score with the status, and ``madpad.report pad`` counts the row
  as a failure to acquire, not as bona fide or attack);
* an image with **no face and no person** (status ``no_face``): its score is
  ``RuleConfig.no_face_score`` (default 0.0 = treated as bona fide, which counts undetected attacks
  against the detector: the conservative choice). Set it to ``nan`` to exclude such images (the
  CLI's ``--no-face exclude``);
* faces with no person at all (detector found nothing) get ``no_person_weight`` (default 0.75).

Several people: every face is judged against its own person. A person owning two faces side by
side at head height (two people whom the detector merged into one box or whose silhouettes touch)
is first split between them (``split_side_by_side``; :func:`split_side_by_side`). A person whose box lies inside a
larger person's body, well below its top (:func:`madpad.pad.person_onnx.nested_persons`; a COCO
detector finds the printed photo on a shirt as a person too) owns no face when ``drop_nested`` is
1: its faces go to the person around it, and the ``nested_person`` rule flags them. Images of any
size work the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from itertools import pairwise
from typing import Any

import numpy as np

from madpad.face.types import box_of
from madpad.pad.persons import PersonDetection

RULES = ("torso", "face_size", "face_roll", "pose_head", "body_above", "body_width", "no_body_below", "multi_face",
         "no_person", "nested_person")
#: per-image statuses: judged, no face and no person, a person but no face (failure to acquire)
STATUSES = ("ok", "no_face", "person_no_face")

#: image-level feature names (fixed order) used by the learned scorer; see :func:`image_features`.
FEATURE_NAMES = (
    "n_faces", "n_persons", "n_faces_no_person", "max_faces_per_person",
    "max_rel_y", "min_rel_y", "max_shoulder_offset", "has_shoulders",
    "max_pose_head_mismatch", "has_head_keypoints", "min_size_ratio", "max_size_ratio",
    "max_rel_x_offset", "lowest_face_rel_image_y", "max_head_room", "max_body_width_ratio", "has_mask",
    "any_head_room_clipped", "n_nested_persons", "max_face_roll", "min_body_below", "max_face_shoulder_ratio",
    "rule_score",
)


@dataclass
class RuleConfig:
    """Parameters of the rule-based scorer (see the module docstring for the formulas)."""

    min_containment: float = 0.5
    head_region_max: float = 0.35      # rel_y (face centre, 0 = person top, 1 = bottom) above which = torso
    rel_y_without_shoulders: float = 1.0  # 1: apply the rel_y rule to poses without visible shoulders too
    slope_rel: float = 20.0
    slope_shoulder: float = 6.0
    face_shoulder_max: float = 0.8     # face box width / shoulder width above which a face is too large
    slope_size: float = 25.0
    shoulder_margin: float = 0.2       # shoulders closer than this (face heights) to the frame edge: cut off
    tilt_max: float = 15.0             # |eye line vs the image horizontal|, degrees, above which a face is rolled
    slope_tilt: float = 0.4            # per degree
    tilt_weight: float = 0.8           # 0 switches the face_roll rule off (e.g. a camera that is not upright)
    split_side_by_side: float = 1.0    # 1: a person owning faces side by side at head height is split
    side_by_side_dy: float = 0.5       # max |centre y difference| of such faces, in face heights
    side_by_side_size: float = 1.5     # max ratio of their face heights
    shoulder_min_visibility: float = 0.5
    head_keypoint_margin: float = 0.15  # face box grown by this share before the keypoint test
    pose_head_weight: float = 0.9
    mask_threshold: float = 0.5
    head_room_max: float = 1.3
    width_ratio_max: float = 1.8
    body_below_min: float = 0.5        # silhouette under the chin, face heights: less = no neck/shoulders
    slope_mask: float = 6.0
    max_gap: float = 0.35               # silhouette gaps up to this many face heights are bridged
    multi_face_weight: float = 0.9
    no_person_weight: float = 0.75
    no_face_score: float = 0.0
    person_no_face_score: float = float("nan")
    drop_nested: float = 1.0           # 1: persons nested in a larger person's body own no face
    nested_weight: float = 0.8
    fire_at: float = 0.5

    @classmethod
    def from_dict(cls, d: dict | None) -> RuleConfig:
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        bad = sorted(set(d) - names)
        if bad:
            import difflib

            hints = {b: difflib.get_close_matches(b, sorted(names), n=1) for b in bad}
            raise ValueError(f"unknown rule parameter(s) {bad}; valid: {sorted(names)}; close: {hints}")
        return cls(**{k: float(v) for k, v in d.items()})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FaceAssessment:
    """Per-face features and rule strengths."""

    box: np.ndarray
    score: float
    person: int | None              # index into the person list, None = no person
    containment: float = 0.0
    rel_y: float = float("nan")     # face centre y in the person box, 0 = top, 1 = bottom
    rel_x_offset: float = float("nan")  # |face cx - person cx| / person width
    size_ratio: float = float("nan")    # face height / person box height
    shoulder_offset: float = float("nan")  # (face cy - shoulder y) / shoulder width; > 0 = below
    face_shoulder_ratio: float = float("nan")  # face box width / shoulder width (shoulders inside the frame)
    pose_head_mismatch: float = float("nan")  # 1 - share of visible head keypoints in the face box
    head_room: float = float("nan")     # silhouette above the face top, in face heights
    head_room_clipped: float = float("nan")  # 1 when the silhouette runs out of the image's top edge
    body_width_ratio: float = float("nan")  # silhouette width at the face centre row / face width
    body_below: float = float("nan")    # silhouette below the face box bottom, in face heights
    body_below_clipped: float = float("nan")  # 1 when the silhouette runs out of the image's bottom edge
    roll: float = float("nan")          # |in-plane face angle| (eye line, degrees) relative to the
                                        # person's shoulder line when visible, else to the horizontal
    tilt: float = float("nan")          # |in-plane face angle| relative to the image horizontal, degrees
    strengths: dict = field(default_factory=dict)
    face_score: float = 0.0


@dataclass
class SpatialResult:
    """Outcome for one image: PAD score (higher = attack), status, explanation and features."""

    score: float
    status: str                     # "ok" | "no_face" | "person_no_face" (see STATUSES)
    fired: list[str]
    faces: list[FaceAssessment]
    persons: list[PersonDetection]
    image_shape: tuple[int, int]
    features: np.ndarray            # FEATURE_NAMES order
    explanation: str = ""

    @property
    def n_faces(self) -> int:
        return len(self.faces)

    @property
    def n_persons(self) -> int:
        return len(self.persons)

    def row(self) -> dict:
        """Explanation columns for the score CSV (rule flags 0/1, counts, features)."""
        out: dict[str, Any] = {"status": self.status, "n_faces": self.n_faces, "n_persons": self.n_persons,
                               "fired": ";".join(self.fired), "explanation": self.explanation}
        for r in RULES:
            out[f"rule_{r}"] = int(r in self.fired)
        for name, v in zip(FEATURE_NAMES, self.features):
            out[f"f_{name}"] = "" if not np.isfinite(v) else round(float(v), 6)
        return out


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def containment(inner: np.ndarray, outer: np.ndarray) -> float:
    """Share of box ``inner``'s area that lies inside box ``outer`` (0 for an empty inner box)."""
    x0, y0 = max(inner[0], outer[0]), max(inner[1], outer[1])
    x1, y1 = min(inner[2], outer[2]), min(inner[3], outer[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = max(0.0, inner[2] - inner[0]) * max(0.0, inner[3] - inner[1])
    return inter / area if area > 0 else 0.0


def associate(face_boxes: Sequence[np.ndarray], persons: Sequence[PersonDetection], *,
              min_containment: float = 0.5, mask_threshold: float = 0.5) -> list[tuple[int | None, float]]:
    """For each face: (index of its person or None, containment in that person).

    A person owns a face when the face centre lies inside its box, or inside its mask when it has
    one, and the face box's share inside the box (or mask) is >= ``min_containment``; the person
    with the largest share wins, ties to the higher score.
    """
    out: list[tuple[int | None, float]] = []
    for fb in face_boxes:
        cx, cy = (fb[0] + fb[2]) / 2, (fb[1] + fb[3]) / 2
        best, best_key = None, (-1.0, -math.inf)
        for j, p in enumerate(persons):
            b = p.box
            cands = []
            if b[0] <= cx <= b[2] and b[1] <= cy <= b[3]:
                cands.append(containment(fb, b))
            if p.mask is not None:
                mh, mw = p.mask.shape
                ix, iy = int(np.clip(cx, 0, mw - 1)), int(np.clip(cy, 0, mh - 1))
                if p.mask[iy, ix] > mask_threshold:
                    x0, y0 = int(np.clip(fb[0], 0, mw - 1)), int(np.clip(fb[1], 0, mh - 1))
                    x1, y1 = int(np.clip(fb[2], x0 + 1, mw)), int(np.clip(fb[3], y0 + 1, mh))
                    cands.append(float((p.mask[y0:y1, x0:x1] > mask_threshold).mean()))
            if not cands:
                continue
            c = max(cands)
            if c >= min_containment and (c, p.score) > best_key:
                best, best_key = j, (c, p.score)
        out.append((best, max(best_key[0], 0.0)))
    return out


def _wrap180(a: float) -> float:
    return (a + 180.0) % 360.0 - 180.0


def eye_line_angle(landmarks5) -> float:
    """Angle of the line from the image-left eye to the image-right eye, degrees (positive = the
    right eye lower in the image); NaN without landmarks."""
    if landmarks5 is None:
        return float("nan")
    lm = np.asarray(landmarks5, dtype=np.float64).reshape(-1, 2)
    if len(lm) < 2 or not np.isfinite(lm[:2]).all():
        return float("nan")
    a, b = (lm[0], lm[1]) if lm[0, 0] <= lm[1, 0] else (lm[1], lm[0])
    return math.degrees(math.atan2(b[1] - a[1], b[0] - a[0]))


def _shoulders(p: PersonDetection, min_vis: float):
    ls, rs = p.keypoint("left_shoulder", min_visibility=min_vis), p.keypoint("right_shoulder", min_visibility=min_vis)
    if ls is None or rs is None:
        return None
    width = abs(ls[0] - rs[0])
    if width < 1.0:
        return None
    return (ls[1] + rs[1]) / 2.0, width


def assess(faces: Sequence[Any], persons: Sequence[PersonDetection], *, image_shape: tuple[int, int],
           config: RuleConfig | None = None) -> SpatialResult:
    """Score one image from its face detections (objects with ``.box``/``.score`` or 4-element boxes)
    and person detections. Returns a :class:`SpatialResult`; ``score`` is higher for attacks."""
    cfg = config or RuleConfig()
    h, w = int(image_shape[0]), int(image_shape[1])
    persons = list(persons)
    boxes = [box_of(f, what="face box") for f in faces]
    scores = [float(getattr(f, "score", 1.0)) for f in faces]
    rolls = [eye_line_angle(getattr(f, "landmarks5", None)) for f in faces]

    def link(persons):
        nested: set[int] = set()
        if cfg.drop_nested and len(persons) > 1:
            from madpad.pad.person_onnx import nested_persons

            nested = set(nested_persons([p.box for p in persons]))
        owners = [i for i in range(len(persons)) if i not in nested]
        links = [(None if pi is None else owners[pi], c) for pi, c in
                 associate(boxes, [persons[i] for i in owners], min_containment=cfg.min_containment,
                           mask_threshold=cfg.mask_threshold)]
        return nested, links

    nested, links = link(persons)
    if cfg.split_side_by_side and len(boxes) > 1:
        split = split_side_by_side(boxes, persons, [pi for pi, _ in links], max_dy=cfg.side_by_side_dy,
                                   max_size_ratio=cfg.side_by_side_size)
        if len(split) != len(persons):
            persons = split
            nested, links = link(persons)
    assessed: list[FaceAssessment] = []
    filled: dict = {}
    for fb, fs, roll, (pi, cont) in zip(boxes, scores, rolls, links):
        fa = FaceAssessment(box=fb, score=fs, person=pi, containment=cont, roll=abs(roll), tilt=abs(roll))
        cx, cy = (fb[0] + fb[2]) / 2, (fb[1] + fb[3]) / 2
        st = {r: 0.0 for r in RULES}
        if np.isfinite(fa.tilt) and cfg.tilt_weight > 0:
            st["face_roll"] = cfg.tilt_weight * _sigmoid(cfg.slope_tilt * (fa.tilt - cfg.tilt_max))
        rel_y_rule = False
        if any(persons[k].box[0] <= cx <= persons[k].box[2] and persons[k].box[1] <= cy <= persons[k].box[3]
               for k in nested):
            st["nested_person"] = cfg.nested_weight
        if pi is None:
            st["no_person"] = cfg.no_person_weight
        else:
            p = persons[pi]
            fa.rel_y = (cy - p.box[1]) / max(p.height, 1e-9)
            fa.rel_x_offset = abs(cx - (p.box[0] + p.box[2]) / 2) / max(p.width, 1e-9)
            fa.size_ratio = (fb[3] - fb[1]) / max(p.height, 1e-9)
            sh = _shoulders(p, cfg.shoulder_min_visibility)
            if sh is not None:
                fa.shoulder_offset = (cy - sh[0]) / sh[1]
                ls, rs = p.keypoint("left_shoulder", min_visibility=cfg.shoulder_min_visibility), \
                    p.keypoint("right_shoulder", min_visibility=cfg.shoulder_min_visibility)
                a, b = (ls, rs) if ls[0] <= rs[0] else (rs, ls)
                fa.roll = abs(_wrap180(roll - math.degrees(math.atan2(b[1] - a[1], b[0] - a[0]))))
                st["torso"] = _sigmoid(cfg.slope_shoulder * fa.shoulder_offset)
                m = cfg.shoulder_margin * (fb[3] - fb[1])
                if all(m <= k[0] <= w - m and k[1] <= h - m for k in (ls, rs)):
                    fa.face_shoulder_ratio = (fb[2] - fb[0]) / sh[1]
                    st["face_size"] = _sigmoid(cfg.slope_size * (fa.face_shoulder_ratio - cfg.face_shoulder_max))
            elif p.keypoints is None or cfg.rel_y_without_shoulders:
                # a body box (hog, yolo, silhouette): the head is its top part. A pose whose shoulders
                # are not visible has a box around the visible keypoints only (often the head), so
                # there rel_y mostly says "no body seen below this face"; rel_y_without_shoulders=0
                # switches the rule off for such poses. Decided below, once the silhouette is known
                rel_y_rule = True
            head = [p.keypoint(n, min_visibility=cfg.shoulder_min_visibility) for n in ("nose", "left_eye", "right_eye")]
            head = [k for k in head if k is not None]
            if head:
                mx = cfg.head_keypoint_margin * (fb[2] - fb[0])
                my = cfg.head_keypoint_margin * (fb[3] - fb[1])
                inside = sum(1 for x, y in head if fb[0] - mx <= x <= fb[2] + mx and fb[1] - my <= y <= fb[3] + my)
                fa.pose_head_mismatch = 1.0 - inside / len(head)
                st["pose_head"] = cfg.pose_head_weight * fa.pose_head_mismatch
            if p.mask is not None and p.mask.shape == (h, w):
                if id(p) not in filled:
                    filled[id(p)] = fill_holes(p.mask > cfg.mask_threshold)
                fa.head_room, fa.body_width_ratio, fa.head_room_clipped = silhouette_features(
                    filled[id(p)], fb, max_gap=cfg.max_gap)
                if np.isfinite(fa.head_room):
                    st["body_above"] = _sigmoid(cfg.slope_mask * (fa.head_room - cfg.head_room_max))
                if np.isfinite(fa.body_width_ratio):
                    st["body_width"] = _sigmoid(cfg.slope_mask * (fa.body_width_ratio - cfg.width_ratio_max))
                if "all" not in filled:  # every person's silhouette: a mask split between overlapping
                    # person boxes may give the body under a face to another box
                    masked = [q for q in persons if q.mask is not None and q.mask.shape == (h, w)]
                    if len(masked) == 1:
                        filled["all"] = filled[id(p)]
                    else:
                        union = np.zeros((h, w), bool)
                        for q in masked:
                            union |= q.mask > cfg.mask_threshold
                        filled["all"] = fill_holes(union)
                fa.body_below, fa.body_below_clipped = silhouette_below(filled["all"], fb, max_gap=cfg.max_gap)
                if np.isfinite(fa.body_below) and fa.body_below_clipped == 0.0:
                    st["no_body_below"] = _sigmoid(cfg.slope_mask * (cfg.body_below_min - fa.body_below))
            # a person with a silhouette under the face but no keypoints (a mask component, a box whose
            # pose failed) is judged by the silhouette rules alone: the real face of a head-and-shoulders
            # framing sits half-way down such a box, as a print does on a chest in a body box. Only when
            # that silhouette has a neck and shoulders under the face: a face-sized island of mask (a
            # print whose wearer the segmenter missed) says nothing about heads and keeps the rel_y rule
            body_under = fa.body_below_clipped == 1.0 or fa.body_below >= cfg.body_below_min
            if rel_y_rule and not (p.keypoints is None and np.isfinite(fa.head_room) and body_under):
                st["torso"] = _sigmoid(cfg.slope_rel * (fa.rel_y - cfg.head_region_max))
        fa.strengths = st
        assessed.append(fa)
    # several faces in one person: all but the most head-like (highest, then pose-consistent) are suspect
    by_person: dict[int, list[int]] = {}
    for i, fa in enumerate(assessed):
        if fa.person is not None:
            by_person.setdefault(fa.person, []).append(i)
    for idx in by_person.values():
        if len(idx) < 2:
            continue
        keep = min(idx, key=lambda i: (assessed[i].strengths["pose_head"],
                                       max(assessed[i].strengths["torso"], assessed[i].strengths["body_above"],
                                           assessed[i].strengths["body_width"], assessed[i].strengths["no_body_below"],
                                           assessed[i].strengths["face_size"], assessed[i].strengths["face_roll"]),
                                       assessed[i].box[1]))
        for i in idx:
            if i != keep:
                assessed[i].strengths["multi_face"] = cfg.multi_face_weight
    for fa in assessed:
        fa.face_score = float(max(fa.strengths.values())) if fa.strengths else 0.0
    if not assessed and persons:
        score, status = float(cfg.person_no_face_score), "person_no_face"
    elif not assessed:
        score, status = float(cfg.no_face_score), "no_face"
    else:
        score, status = float(max(fa.face_score for fa in assessed)), "ok"
    fired = [r for r in RULES if any(fa.strengths.get(r, 0.0) >= cfg.fire_at for fa in assessed)]
    res = SpatialResult(score=score, status=status, fired=fired, faces=assessed, persons=persons,
                        image_shape=(h, w), features=np.zeros(len(FEATURE_NAMES)))
    res.features = image_features(res, n_nested=len(nested))
    res.explanation = explain(res)
    return res


def side_by_side_cuts(face_boxes: Sequence[np.ndarray], *, max_dy: float = 0.5,
                      max_size_ratio: float = 1.5) -> list[float]:
    """x positions between faces that sit side by side at head height: two heads, not a head and a
    print. Two faces qualify when their centres are at most ``max_dy`` face heights (the larger face)
    apart vertically, their heights differ by at most ``max_size_ratio`` and their boxes do not
    overlap horizontally; the cut is half-way across the gap. A printed face lies on the torso, below
    its wearer's head, so it never forms such a pair with that head. Cuts that cross a face box
    (three heads in a row: the outer pair's cut) are dropped. Sorted, without repeats."""
    b = [np.asarray(x, dtype=np.float64) for x in face_boxes]
    cuts: set[float] = set()
    for i, a in enumerate(b):
        for c in b[i + 1:]:
            left, right = (a, c) if a[0] <= c[0] else (c, a)
            ha, hc = left[3] - left[1], right[3] - right[1]
            if min(ha, hc) <= 0 or max(ha, hc) / min(ha, hc) > max_size_ratio:
                continue
            if abs((left[1] + left[3]) - (right[1] + right[3])) / 2 > max_dy * max(ha, hc) or left[2] > right[0]:
                continue
            x = round(float(left[2] + right[0]) / 2, 3)
            if not any(f[0] < x < f[2] for f in b):
                cuts.add(x)
    return sorted(cuts)


def split_person(p: PersonDetection, cuts: Sequence[float]) -> list[PersonDetection]:
    """``p`` cut into vertical strips at the x positions ``cuts`` (inside its box). Each strip keeps
    the box's rows and its columns of the mask (the outer strips keep the mask beyond the box too).
    The pose goes to the strip holding its head (nose, else the eyes' or shoulders' midpoint); the
    other strips have no keypoints."""
    xs = [float(p.box[0]), *[c for c in sorted(cuts) if p.box[0] < c < p.box[2]], float(p.box[2])]
    if len(xs) <= 2:
        return [p]
    anchor = None
    for names in (("nose",), ("left_eye", "right_eye"), ("left_shoulder", "right_shoulder")):
        pts = [p.keypoint(n) for n in names]
        if all(q is not None for q in pts):
            anchor = float(np.mean([q[0] for q in pts]))
            break
    out = []
    for k, (a, b) in enumerate(pairwise(xs)):
        mask = None
        if p.mask is not None:
            mask = p.mask.copy()
            W = mask.shape[1]
            lo = 0 if k == 0 else int(np.clip(round(a), 0, W))
            hi = W if k == len(xs) - 2 else int(np.clip(round(b), 0, W))
            mask[:, :lo] = 0
            mask[:, hi:] = 0
        first, last = k == 0, k == len(xs) - 2
        own = anchor is not None and (first or anchor >= a) and (last or anchor < b)
        out.append(PersonDetection(box=np.array([a, p.box[1], b, p.box[3]]), score=p.score,
                                   keypoints=p.keypoints if own else None,
                                   detector=f"{p.detector}/split" if p.detector else "split", mask=mask))
    return out


def split_side_by_side(face_boxes: Sequence[np.ndarray], persons: Sequence[PersonDetection],
                       owner_of: Sequence[int | None], *, max_dy: float = 0.5,
                       max_size_ratio: float = 1.5) -> list[PersonDetection]:
    """Persons that own two or more faces side by side at head height split between those faces
    (:func:`side_by_side_cuts`, :func:`split_person`): a person detector or a silhouette can merge two
    people standing close together into one box, and both real faces would then look like one
    person's head and a second face. ``owner_of[i]`` is the index of face ``i``'s person (None: no
    person). Returns the new person list (the input list when nothing is split)."""
    out: list[PersonDetection] = []
    for j, p in enumerate(persons):
        own = [face_boxes[i] for i, o in enumerate(owner_of) if o == j]
        cuts = side_by_side_cuts(own, max_dy=max_dy, max_size_ratio=max_size_ratio) if len(own) > 1 else []
        out.extend(split_person(p, cuts) if cuts else [p])
    return out if len(out) != len(persons) else list(persons)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill holes of a boolean person mask (regions not connected to the image border). A printed
    photo's own background on a shirt is often segmented as a hole in the wearer's silhouette."""
    from scipy import ndimage

    return ndimage.binary_fill_holes(mask)


def silhouette_features(mask: np.ndarray, face_box: np.ndarray, *, max_gap: float = 0.0) -> tuple[float, float, float]:
    """(head_room, width_ratio, clipped) of a face box against a boolean person mask (see module docstring).

    head_room: starting at the face centre row, walk up the face's central columns (middle half of
    the box) while at least half of them are inside the mask (gaps of up to ``max_gap`` face heights
    are bridged); the distance from the face box top to
    where the walk stops, in face heights (negative when it stops inside the box; it stops at row 0
    when the silhouette leaves the image). width_ratio: the run of mask pixels on the face centre
    row that contains the face centre (or its nearest run within the box), divided by the face
    width. clipped: 1.0 when the walk reached the image's top row. NaNs when the face centre row has
    no mask pixels within the face box.
    """
    H, W = mask.shape
    x0, y0, x1, y1 = (float(v) for v in face_box)
    fw, fh = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    cy = int(np.clip(round((y0 + y1) / 2), 0, H - 1))
    cx = int(np.clip(round((x0 + x1) / 2), 0, W - 1))
    row = mask[cy]
    xs = np.flatnonzero(row[int(max(x0, 0)):int(min(x1, W)) + 1]) + int(max(x0, 0))
    if xs.size == 0:
        return float("nan"), float("nan"), float("nan")
    start = cx if row[cx] else int(xs[np.argmin(np.abs(xs - cx))])
    left = start
    while left > 0 and row[left - 1]:
        left -= 1
    right = start
    while right < W - 1 and row[right + 1]:
        right += 1
    width_ratio = (right - left + 1) / fw
    b0, b1 = int(np.clip(x0 + 0.25 * fw, 0, W - 1)), int(np.clip(x1 - 0.25 * fw, 1, W))
    inside = mask[:, b0:max(b1, b0 + 1)].mean(axis=1) >= 0.5
    gap = round(max_gap * fh)
    y = cy
    while y > 0:
        if inside[y - 1]:
            y -= 1
            continue
        above = np.flatnonzero(inside[max(0, y - 1 - gap):y - 1])  # the silhouette resumes within the gap?
        if gap <= 0 or above.size == 0:
            break
        y = max(0, y - 1 - gap) + int(above[-1])
    head_room = (y0 - y) / fh
    return float(head_room), float(width_ratio), float(y == 0)


def silhouette_below(mask: np.ndarray, face_box: np.ndarray, *, max_gap: float = 0.0) -> tuple[float, float]:
    """(body_below, clipped) of a face box against a boolean person mask.

    Starting at the face centre row, walk down the face's central columns (middle half of the box)
    while at least half of them are inside the mask, bridging gaps of up to ``max_gap`` face heights;
    body_below = distance from the face box bottom to where the walk stops, in face heights
    (negative when it stops inside the box). clipped = 1.0 when the walk reached the image's bottom
    row (the frame cuts the body off). NaNs when the face centre is outside the mask's columns test.
    """
    H, W = mask.shape
    x0, y0, x1, y1 = (float(v) for v in face_box)
    fw, fh = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    cy = int(np.clip(round((y0 + y1) / 2), 0, H - 1))
    b0, b1 = int(np.clip(x0 + 0.25 * fw, 0, W - 1)), int(np.clip(x1 - 0.25 * fw, 1, W))
    inside = mask[:, b0:max(b1, b0 + 1)].mean(axis=1) >= 0.5
    if not inside[cy]:
        return float("nan"), float("nan")
    gap = round(max_gap * fh)
    y = cy
    while y < H - 1:
        if inside[y + 1]:
            y += 1
            continue
        below = np.flatnonzero(inside[y + 2:min(H, y + 2 + gap)])  # the silhouette resumes within the gap?
        if gap <= 0 or below.size == 0:
            break
        y = y + 2 + int(below[0])
    return float((y - y1) / fh), float(y >= H - 1)


def image_features(res: SpatialResult, *, n_nested: int = 0) -> np.ndarray:
    """Fixed-length feature vector (:data:`FEATURE_NAMES`); NaN where a feature is undefined."""
    f = res.faces
    h = max(res.image_shape[0], 1)

    def agg(fn, vals):
        vals = [v for v in vals if np.isfinite(v)]
        return float(fn(vals)) if vals else float("nan")

    counts: dict[int, int] = {}
    for fa in f:
        if fa.person is not None:
            counts[fa.person] = counts.get(fa.person, 0) + 1
    vals = {
        "n_faces": len(f),
        "n_persons": len(res.persons),
        "n_faces_no_person": sum(1 for fa in f if fa.person is None),
        "max_faces_per_person": max(counts.values()) if counts else 0,
        "max_rel_y": agg(max, [fa.rel_y for fa in f]),
        "min_rel_y": agg(min, [fa.rel_y for fa in f]),
        "max_shoulder_offset": agg(max, [fa.shoulder_offset for fa in f]),
        "has_shoulders": float(any(np.isfinite(fa.shoulder_offset) for fa in f)),
        "max_pose_head_mismatch": agg(max, [fa.pose_head_mismatch for fa in f]),
        "has_head_keypoints": float(any(np.isfinite(fa.pose_head_mismatch) for fa in f)),
        "min_size_ratio": agg(min, [fa.size_ratio for fa in f]),
        "max_size_ratio": agg(max, [fa.size_ratio for fa in f]),
        "max_rel_x_offset": agg(max, [fa.rel_x_offset for fa in f]),
        "lowest_face_rel_image_y": agg(max, [((fa.box[1] + fa.box[3]) / 2) / h for fa in f]),
        "max_head_room": agg(max, [fa.head_room for fa in f]),
        "max_body_width_ratio": agg(max, [fa.body_width_ratio for fa in f]),
        "has_mask": float(any(np.isfinite(fa.body_width_ratio) for fa in f)),
        "any_head_room_clipped": float(any(fa.head_room_clipped == 1.0 for fa in f)),
        "n_nested_persons": float(n_nested),
        "max_face_roll": agg(max, [fa.roll for fa in f]),
        "max_face_shoulder_ratio": agg(max, [fa.face_shoulder_ratio for fa in f]),
        "min_body_below": agg(min, [fa.body_below if fa.body_below_clipped == 0.0 else float("nan") for fa in f]),
        "rule_score": res.score,
    }
    return np.array([vals[n] for n in FEATURE_NAMES], dtype=np.float64)


def explain(res: SpatialResult) -> str:
    if res.status == "no_face":
        return "no face and no person detected; score set by no_face_score"
    if res.status == "person_no_face":
        return (f"{res.n_persons} person(s) but no face detected: failure to acquire; score set by "
                "person_no_face_score")
    parts = []
    for i, fa in enumerate(res.faces):
        fired = [f"{r}={v:.2f}" for r, v in fa.strengths.items() if v >= 0.5]
        where = "no person" if fa.person is None else f"person {fa.person} rel_y={fa.rel_y:.2f}"
        if np.isfinite(fa.shoulder_offset):
            where += f" shoulder_offset={fa.shoulder_offset:+.2f}"
        if np.isfinite(fa.head_room):
            where += f" head_room={fa.head_room:.2f} width_ratio={fa.body_width_ratio:.2f}"
        if np.isfinite(fa.body_below):
            where += f" body_below={fa.body_below:.2f}" + (" (to the bottom edge)" if fa.body_below_clipped == 1.0 else "")
        parts.append(f"face {i} ({where}): " + (", ".join(fired) if fired else "consistent"))
    return "; ".join(parts)

"""Find every face that some face recognition pipeline would find: several detectors, rotated passes.

A presentation attack only has to fool the face detector of the victim's pipeline, and that can be
any of dlib HOG, BlazeFace (mediapipe), MTCNN, ... with or without a search over in-plane rotation.
A detector that checks an image for suspicious faces must therefore look at the **union** of what
those detectors find: :class:`FaceFinder` runs each detector in ``detectors`` on the upright image,
and the detectors in ``rotated`` on copies of the image rotated by ``±angle_step, ±2·angle_step, ...``
up to ``max_angle`` degrees (a face tilted by that much is upright in one of the copies), maps
every detection back into the original image and merges detections of one face.

Merging: two detections are the same face when their boxes overlap with IoU >= ``merge_iou``, or
when the centre of each lies inside the other and their heights differ by less than a factor 2.
A merged face keeps the box of its upright detection from the earliest detector in ``detectors``
(else of its first rotated one), the first available five landmarks (mapped back from a rotated
pass), and records who found it in ``detector`` (``"dlib_hog+mtcnn+mediapipe@-30/15"``: names, with
``@angles`` for rotated passes). Its ``score`` is the share of the passes (detector x angle) that
found it: 1.0 when everything found it, higher = more detectors agree.

A rotated detection's box is the detector's box (the face's own size) centred on the mapped-back
box centre, so it stays axis-aligned and roughly face-sized in the original image.

>>> finder = FaceFinder(detectors="dlib_hog+mediapipe", rotated="mediapipe", max_angle=30)  # doctest: +SKIP
>>> faces = finder.detect(rgb)       # list[FaceDetection], best first                          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from madpad.errors import UsageError
from madpad.face.detectors import FaceDetector, sort_detections
from madpad.face.types import FaceDetection, clip_box
from madpad.io import as_rgb_uint8

#: default detectors of :class:`FaceFinder` (upright pass) and of its rotated passes
DEFAULT_DETECTORS = ("dlib_hog", "mediapipe", "mtcnn")
DEFAULT_ROTATED = ("mediapipe",)
DEFAULT_DETECTORS_SPEC = "+".join(DEFAULT_DETECTORS)
DEFAULT_ROTATED_SPEC = "+".join(DEFAULT_ROTATED)


def parse_names(value, *, what: str) -> tuple[str, ...]:
    """``"a+b"``, ``"a|b"``, ``["a", "b"]`` -> ``("a", "b")``; ``""``/None -> ``()``."""
    if value is None:
        return ()
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace("|", "+").split("+")]
    elif isinstance(value, Sequence):
        parts = [str(p).strip() for p in value]
    else:
        raise UsageError(f"{what}: expected detector names joined by '+', e.g. dlib_hog+mediapipe; got {value!r}")
    return tuple(p for p in parts if p)


def rotation_angles(max_angle: float, step: float) -> tuple[float, ...]:
    """``(-max, ..., -step, step, ..., max)`` (0 excluded: that is the upright pass)."""
    if max_angle <= 0 or step <= 0:
        return ()
    n = int(np.floor(max_angle / step + 1e-9))
    pos = [step * k for k in range(1, n + 1)]
    return tuple(sorted([-a for a in pos] + pos))


def rotate_image(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` rotated by ``angle`` degrees (counter-clockwise, OpenCV convention) on a canvas
    large enough to hold all of it (borders replicated), and the 2x3 affine that maps original
    pixel coordinates into the rotated image."""
    import cv2

    h, w = image.shape[:2]
    M = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), float(angle), 1.0)
    c, s = abs(M[0, 0]), abs(M[0, 1])
    nw, nh = int(np.ceil(h * s + w * c)), int(np.ceil(h * c + w * s))
    M[0, 2] += nw / 2.0 - w / 2.0
    M[1, 2] += nh / 2.0 - h / 2.0
    out = cv2.warpAffine(image, M, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, M


def _inverse_affine(M: np.ndarray) -> np.ndarray:
    A = np.vstack([M, [0.0, 0.0, 1.0]])
    return np.linalg.inv(A)[:2]


def _map_points(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    return pts @ M[:, :2].T + M[:, 2]


def unrotate_detection(d: FaceDetection, M: np.ndarray, shape, *, tag: str) -> FaceDetection:
    """A detection made in a rotated image (``M``: original -> rotated) back in original coordinates:
    the same box size around the mapped-back centre, landmarks and keypoints mapped back."""
    inv = _inverse_affine(M)
    cx, cy = _map_points(inv, d.center)[0]
    hw, hh = d.width / 2.0, d.height / 2.0
    box = clip_box([cx - hw, cy - hh, cx + hw, cy + hh], shape)
    lm5 = None
    if d.landmarks5 is not None:
        lm5 = _map_points(inv, d.landmarks5)
        # keep "left eye" = the image-left one in the original frame
        if lm5[0, 0] > lm5[1, 0]:
            lm5[[0, 1]] = lm5[[1, 0]]
        if lm5[3, 0] > lm5[4, 0]:
            lm5[[3, 4]] = lm5[[4, 3]]
    kp = None if d.keypoints is None else _map_points(inv, d.keypoints)
    return FaceDetection(box, d.score, lm5, kp, d.landmarks5_estimated, detector=tag)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


def same_face(a: FaceDetection, b: FaceDetection, *, merge_iou: float = 0.3) -> bool:
    """Two detections of one face: IoU >= ``merge_iou``, or each centre inside the other box with
    heights within a factor 2 (detectors disagree on how much forehead and chin a box holds)."""
    if _iou(a.box, b.box) >= merge_iou:
        return True

    def inside(p, box):
        return box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3]

    ratio = max(a.height, 1e-9) / max(b.height, 1e-9)
    return inside(a.center, b.box) and inside(b.center, a.box) and 0.5 <= ratio <= 2.0


def merge_detections(found: list[tuple[FaceDetection, str, float]], *, n_passes: int,
                     merge_iou: float = 0.3) -> list[FaceDetection]:
    """Group ``(detection, detector name, angle)`` triples (in pass order) into faces; see the module
    docstring for the box, landmarks, ``detector`` and ``score`` of a merged face."""
    groups: list[list[tuple[FaceDetection, str, float]]] = []
    for item in found:
        for g in groups:
            if any(same_face(item[0], other[0], merge_iou=merge_iou) for other in g):
                g.append(item)
                break
        else:
            groups.append([item])
    out = []
    for g in groups:
        upright = [it for it in g if it[2] == 0.0]
        lead = (upright or g)[0][0]
        lm5 = next((it[0].landmarks5 for it in (upright + g) if it[0].landmarks5 is not None), None)
        est = next((it[0].landmarks5_estimated for it in (upright + g) if it[0].landmarks5 is not None), ())
        passes = list(dict.fromkeys((name, angle) for _, name, angle in g))
        upright_names = [n for n, a in passes if a == 0.0]
        rotated: dict[str, list[str]] = {}
        for n, a in passes:
            if a != 0.0:
                rotated.setdefault(n, []).append(f"{a:g}")
        tags = upright_names + [f"{n}@{'/'.join(sorted(v, key=float))}" for n, v in rotated.items()]
        out.append(FaceDetection(lead.box, len(passes) / max(n_passes, 1), lm5, lead.keypoints, est,
                                 detector="+".join(tags)))
    return sort_detections(out)


class FaceFinder(FaceDetector):
    """Union of several face detectors over upright and rotated passes (see the module docstring).

    ``detectors``: names from :data:`madpad.face.FACE_DETECTORS` run on the upright image, joined by
    ``+`` (default ``dlib_hog+mediapipe+mtcnn``); ``rotated``: the detectors also run on the rotated
    copies (default ``mediapipe``, the fast one: a few ms per pass where MTCNN takes about 0.4 s of
    CPU; ``""`` for none); ``max_angle``/``angle_step``:
    the rotations in degrees (default ±15, ±30); ``merge_iou``: see :func:`same_face`;
    ``max_side``: passed to the detectors that downscale large images (dlib, MTCNN; default 640).
    Detectors whose package is missing raise on first use, naming the pip extra.
    """

    name = "union"

    def __init__(self, *, detectors=DEFAULT_DETECTORS_SPEC, rotated=DEFAULT_ROTATED_SPEC,
                 max_angle: float = 30.0, angle_step: float = 15.0, merge_iou: float = 0.3,
                 max_side: int | None = 640):
        from madpad.face.detectors import FACE_DETECTORS

        self.detectors = parse_names(detectors, what="union detectors")
        self.rotated = parse_names(rotated, what="union rotated")
        if not self.detectors:
            raise UsageError("face detector 'union': detectors= names no detector (e.g. detectors=dlib_hog+mediapipe)")
        for n in self.detectors + self.rotated:
            if n == self.name:
                raise UsageError("face detector 'union' cannot contain itself")
            FACE_DETECTORS.get(n)  # an unknown name fails here, with the close match
        unknown = [n for n in self.rotated if n not in self.detectors]
        if unknown:
            raise UsageError(f"face detector 'union': rotated={'+'.join(unknown)} must also be in detectors=")
        if float(max_angle) < 0 or float(angle_step) <= 0:
            raise UsageError(f"face detector 'union': need max_angle >= 0 and angle_step > 0; "
                             f"got {max_angle}, {angle_step}")
        self.max_angle = float(max_angle)
        self.angle_step = float(angle_step)
        self.merge_iou = float(merge_iou)
        self.max_side = None if max_side is None else int(max_side)
        self._built: dict[str, FaceDetector] = {}

    @property
    def angles(self) -> tuple[float, ...]:
        return rotation_angles(self.max_angle, self.angle_step) if self.rotated else ()

    @property
    def n_passes(self) -> int:
        return len(self.detectors) + len(self.rotated) * len(self.angles)

    def _detector(self, name: str) -> FaceDetector:
        if name not in self._built:
            from madpad.face.detectors import FACE_DETECTORS

            accepts = FACE_DETECTORS.parameters(name)
            params = {"max_side": self.max_side} if accepts is not None and "max_side" in accepts else {}
            self._built[name] = FACE_DETECTORS.create(name, **params)
        return self._built[name]

    def passes(self, image) -> list[tuple[FaceDetection, str, float]]:
        """Every detection of every pass, in original coordinates: ``(detection, name, angle)``."""
        img = as_rgb_uint8(image)
        found: list[tuple[FaceDetection, str, float]] = []
        for n in self.detectors:
            found += [(d, n, 0.0) for d in self._detector(n).detect(img)]
        for angle in self.angles:
            rot, M = rotate_image(img, angle)
            for n in self.rotated:
                for d in self._detector(n).detect(rot):
                    found.append((unrotate_detection(d, M, img.shape, tag=f"{n}@{angle:g}"), n, angle))
        return found

    def detect(self, image) -> list[FaceDetection]:
        return merge_detections(self.passes(image), n_passes=self.n_passes, merge_iou=self.merge_iou)

    def close(self) -> None:
        for d in self._built.values():
            c = getattr(d, "close", None)
            if c is not None:
                c()
        self._built.clear()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_built"] = {}
        return state

"""Person detectors behind one small interface and a registry.

Every backend is built by :func:`get_person_detector` (registry :data:`PERSON_DETECTORS`, interface
:class:`PersonDetector`) and has ``detect(image) -> list[PersonDetection]``
(image: RGB uint8 (H, W, 3), any size), sorted by score (highest first). Backends:

``nanodet``, ``centernet`` (the T-shirt PAD's default is ``nanodet``)
    COCO person detectors run with onnxruntime, every person in the scene, with BlazePose per
    person box and a per-person share of the selfie mask: :mod:`madpad.pad.person_onnx`.
``mediapipe_pose`` (real weights shipped in ``mediapipe==0.10.14``)
    BlazePose, 33 named keypoints, **one person per image** (the legacy solution is single-person).
    Works on upper-body shots. The person box is the hull of the keypoints that are visible
    (visibility >= ``min_visibility``), extended upwards to the top of the head, clipped to the image.
    Only ``model_complexity=1`` runs offline (the 0 and 2 models are downloaded at first use).
    With ``segment=True`` (default) mediapipe's selfie segmentation (shipped model) also runs on the
    whole image and its person mask is attached, for the silhouette rules.
``mediapipe_selfie``
    Person silhouettes only: mediapipe selfie segmentation, one person per connected mask component
    (no keypoints). Independent of faces, so a printed face cannot move it.
``hog``
    OpenCV's Dalal-Triggs HOG people detector (model compiled into OpenCV 4.x). Trained on
    full-body pedestrians at 64x128: it rarely fires on head-and-shoulders framings.
``yolo``
    Ultralytics YOLO, COCO class 0 ``person``; needs ``weights=`` (a ``.pt`` checkpoint path or a
    model ``.yaml`` for a random-init model in tests). No weights ship here.

Scores are the backends' own confidences (higher = more confident; scales differ).
"""

from __future__ import annotations

import abc
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from madpad.face.selfie import MediapipeSelfie
from madpad.face.types import BoxGeometry, as_box, clip_box
from madpad.io import as_rgb_uint8, downscale, optional_import
from madpad.errors import UsageError
from madpad.registry import Component, Registry

#: mediapipe pose keypoint names (BlazePose order), lower case.
POSE_KEYPOINT_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)
HEAD_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "mouth_left", "mouth_right")


@dataclass
class PersonDetection(BoxGeometry):
    """One detected person.

    ``box`` = (x0, y0, x1, y1) pixels; ``score`` the backend's confidence; ``keypoints`` maps a
    keypoint name (see :data:`POSE_KEYPOINT_NAMES`) to ``(x, y, visibility)`` in pixels and [0, 1],
    or is None when the backend gives no keypoints (``hog``, ``yolo``). ``mask`` is an optional
    person segmentation (float32 (H, W) in [0, 1], image size) for the silhouette rules.
    """

    box: np.ndarray
    score: float
    keypoints: dict[str, tuple[float, float, float]] | None = None
    detector: str = ""
    mask: np.ndarray | None = None

    def __post_init__(self):
        self.box = as_box(self.box, what="person box")
        self.score = float(self.score)
        if self.keypoints is not None:
            self.keypoints = {str(k): (float(v[0]), float(v[1]), float(v[2])) for k, v in self.keypoints.items()}
        if self.mask is not None:
            m = np.asarray(self.mask, dtype=np.float32)
            if m.ndim != 2:
                raise ValueError(f"person mask must be (H, W); got shape {m.shape}")
            self.mask = m

    def keypoint(self, name: str, *, min_visibility: float = 0.5) -> np.ndarray | None:
        """(x, y) of keypoint ``name`` when present with visibility >= ``min_visibility``, else None."""
        if not self.keypoints or name not in self.keypoints:
            return None
        x, y, v = self.keypoints[name]
        return np.array([x, y]) if v >= min_visibility else None


class PersonDetector(Component, abc.ABC):
    """Interface of the person detectors (registry :data:`PERSON_DETECTORS`).

    Constructor parameters are keyword-only settings (models load on first use);
    ``detect(image) -> list[PersonDetection]`` for an RGB uint8 image (H, W, 3), best first,
    each detection's ``detector`` set to the backend's ``name``.
    """

    @abc.abstractmethod
    def detect(self, image) -> list[PersonDetection]:
        """Persons in ``image``, sorted by score (highest first)."""


PERSON_DETECTORS = Registry("person detector", PersonDetector)


def list_person_detectors() -> list[str]:
    return PERSON_DETECTORS.names()


def get_person_detector(name: str = "mediapipe_pose", **params: Any):
    """Build the person detector ``name`` (see :data:`PERSON_DETECTORS`) with ``params``."""
    return PERSON_DETECTORS.create(name, **params)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order = list(np.argsort(-scores))
    keep: list[int] = []
    while order:
        i = order.pop(0)
        keep.append(i)
        rest = []
        for j in order:
            x0 = max(boxes[i, 0], boxes[j, 0]); y0 = max(boxes[i, 1], boxes[j, 1])
            x1 = min(boxes[i, 2], boxes[j, 2]); y1 = min(boxes[i, 3], boxes[j, 3])
            inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
            a_i = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            a_j = (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1])
            if inter / max(a_i + a_j - inter, 1e-9) <= iou:
                rest.append(j)
        order = rest
    return keep


# --------------------------------------------------------------------------- mediapipe pose
@dataclass
class MediapipePoseDetector(PersonDetector):
    """BlazePose (mediapipe 0.10.14 ``solutions.pose``), single person, 33 keypoints.

    ``min_detection_confidence``: detector threshold; ``min_visibility``: keypoints below it do
    not shape the box; ``head_extension``: the box top is the highest visible head keypoint minus
    this many eye-to-mouth heights (to include the top of the head); ``max_side``: images are
    downscaled to this longest side before inference (coordinates are mapped back).
    """

    min_detection_confidence: float = 0.5
    min_visibility: float = 0.5
    head_extension: float = 2.0
    max_side: int = 1024
    model_complexity: int = 1
    segment: bool = True
    name: str = "mediapipe_pose"
    _pose: Any = field(default=None, init=False, repr=False)
    _seg: Any = field(default=None, init=False, repr=False)

    def _model(self):
        if self._pose is None:
            mp = optional_import("mediapipe", extra="mediapipe", purpose="the mediapipe_pose person detector")
            if self.model_complexity != 1:
                raise ValueError("mediapipe_pose: only model_complexity=1 ships inside mediapipe 0.10.14 "
                                 f"(0 and 2 are downloaded at first use); got {self.model_complexity}")
            self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                                enable_segmentation=False,
                                                min_detection_confidence=float(self.min_detection_confidence))
        return self._pose

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None
        if self._seg is not None:
            self._seg.close()
            self._seg = None

    def detect(self, image) -> list[PersonDetection]:
        img = as_rgb_uint8(image)
        h, w = img.shape[:2]
        small, _ = downscale(img, self.max_side)
        res = self._model().process(small)
        if res.pose_landmarks is None:
            if not self.segment:
                return []
            # no pose: fall back to silhouettes so a face can still be judged against a body
            if self._seg is None:
                self._seg = MediapipeSelfie()
            return _mask_persons(self._seg.mask(img), threshold=0.5, min_area=0.01, name=self.name + "/selfie")
        kps = {}
        for nm, lm in zip(POSE_KEYPOINT_NAMES, res.pose_landmarks.landmark):
            kps[nm] = (lm.x * w, lm.y * h, float(lm.visibility))  # mediapipe gives [0, 1] image coordinates
        box = keypoint_box(kps, (h, w), min_visibility=self.min_visibility, head_extension=self.head_extension)
        if box is None:
            return []
        upper = [kps[n][2] for n in ("nose", "left_eye", "right_eye", "left_shoulder", "right_shoulder")]
        mask = None
        if self.segment:
            if self._seg is None:
                self._seg = MediapipeSelfie()
            mask = self._seg.mask(img)
        return [PersonDetection(box=box, score=float(np.mean(upper)), keypoints=kps, detector=self.name, mask=mask)]


def keypoint_box(kps: dict, shape: tuple[int, int], *, min_visibility: float = 0.5,
                 head_extension: float = 2.0) -> np.ndarray | None:
    """Person box from pose keypoints: hull of the visible ones, head top added, clipped to the image."""
    h, w = shape
    pts = np.array([(x, y) for x, y, v in kps.values() if v >= min_visibility], dtype=np.float64)
    if len(pts) < 2:
        return None
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    head = [kps[n] for n in HEAD_KEYPOINTS if n in kps and kps[n][2] >= min_visibility]
    eyes = [kps[n] for n in ("left_eye", "right_eye") if n in kps and kps[n][2] >= min_visibility]
    mouth = [kps[n] for n in ("mouth_left", "mouth_right") if n in kps and kps[n][2] >= min_visibility]
    if head:
        if eyes and mouth:
            unit = abs(np.mean([m[1] for m in mouth]) - np.mean([e[1] for e in eyes]))
        else:
            unit = 0.1 * max(y1 - y0, 1.0)
        top = min(p[1] for p in head) - head_extension * unit
        y0 = min(y0, top)
        if eyes and len(eyes) == 2:  # head is about 2.5 eye distances wide
            cx = np.mean([e[0] for e in eyes])
            half = 1.25 * abs(eyes[0][0] - eyes[1][0])
            x0, x1 = min(x0, cx - half), max(x1, cx + half)
    x0, x1 = np.clip([x0, x1], 0, w)
    y0, y1 = np.clip([y0, y1], 0, h)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return np.array([x0, y0, x1, y1])


# --------------------------------------------------------------------------- mediapipe selfie segmentation
@dataclass
class MediapipeSelfieDetector(PersonDetector):
    """Persons as connected components of mediapipe's selfie segmentation mask (> ``threshold``),
    components smaller than ``min_area`` of the image dropped; score = mean mask value inside."""

    threshold: float = 0.5
    min_area: float = 0.01
    model_selection: int = 0
    name: str = "mediapipe_selfie"
    _seg: Any = field(default=None, init=False, repr=False)

    def detect(self, image) -> list[PersonDetection]:
        img = as_rgb_uint8(image)
        if self._seg is None:
            self._seg = MediapipeSelfie(model_selection=self.model_selection)
        return _mask_persons(self._seg.mask(img), threshold=self.threshold, min_area=self.min_area, name=self.name)


def _mask_persons(m: np.ndarray, *, threshold: float, min_area: float, name: str) -> list[PersonDetection]:
    import cv2

    n, lab, stats, _ = cv2.connectedComponentsWithStats((m > threshold).astype(np.uint8), connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        if area < min_area * m.size:
            continue
        comp = np.where(lab == i, m, 0.0).astype(np.float32)
        out.append(PersonDetection(box=[x, y, x + w, y + h], score=float(m[lab == i].mean()), detector=name, mask=comp))
    return sorted(out, key=lambda d: -d.score)


# --------------------------------------------------------------------------- OpenCV HOG
@dataclass
class HogPeopleDetector(PersonDetector):
    """OpenCV's HOG + linear SVM people detector (``HOGDescriptor_getDefaultPeopleDetector``).

    ``max_side``: images are downscaled to this longest side (the window is 64x128, so a person must
    be at least ~128 px tall after scaling); ``min_score``: SVM margin threshold; ``nms_iou``.
    """

    max_side: int = 640
    min_score: float = 0.0
    win_stride: int = 8
    scale: float = 1.05
    nms_iou: float = 0.45
    name: str = "hog"
    _hog: Any = field(default=None, init=False, repr=False)

    def detect(self, image) -> list[PersonDetection]:
        cv2 = optional_import("cv2", extra="core", purpose="the HOG people detector")
        img = as_rgb_uint8(image)
        if self._hog is None:
            self._hog = cv2.HOGDescriptor()
            self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        small, f = downscale(img, self.max_side)
        if min(small.shape[:2]) < 128:  # pad tiny images so the 64x128 window fits
            ph, pw = max(0, 130 - small.shape[0]), max(0, 66 - small.shape[1])
            small = np.pad(small, ((0, ph), (0, pw), (0, 0)), mode="edge")
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        rects, weights = self._hog.detectMultiScale(gray, winStride=(self.win_stride, self.win_stride),
                                                    padding=(8, 8), scale=self.scale)
        if len(rects) == 0:
            return []
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(weights, dtype=np.float64).reshape(-1)
        boxes = np.column_stack([rects[:, 0], rects[:, 1], rects[:, 0] + rects[:, 2], rects[:, 1] + rects[:, 3]]) / f
        boxes = clip_box(boxes, img.shape)
        out = [PersonDetection(box=boxes[i], score=scores[i], detector=self.name)
               for i in _nms(boxes, scores, self.nms_iou) if scores[i] >= self.min_score]
        return sorted(out, key=lambda d: -d.score)


# --------------------------------------------------------------------------- ultralytics YOLO
@contextlib.contextmanager
def _undo_ultralytics_side_effects() -> Iterator[None]:
    """Restore what ultralytics changes process-wide while it imports, builds or runs a model:
    torch's thread count (``select_device`` resets it), ``OMP_NUM_THREADS`` and the functions it
    monkey-patches (``PIL.Image.open`` -- which on an undecodable file tries to pip-install pi-heif
    --, ``torch.save``/``torch.load``, ``cv2.imread``/``imwrite``/``imshow``)."""
    import cv2
    import torch
    from PIL import Image

    saved = [(Image, "open", Image.open), (torch, "save", torch.save), (torch, "load", torch.load),
             (cv2, "imread", cv2.imread), (cv2, "imwrite", cv2.imwrite), (cv2, "imshow", cv2.imshow)]
    threads = torch.get_num_threads()
    omp = os.environ.get("OMP_NUM_THREADS")
    try:
        yield
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)
        torch.set_num_threads(threads)
        if omp is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = omp


@dataclass
class YoloPersonDetector(PersonDetector):
    """Ultralytics YOLO person detector (COCO class ``person_class`` = 0).

    ``weights``: a checkpoint path (``.pt``) or a model ``.yaml`` name/path (random-init, for tests);
    ``conf``, ``iou``: ultralytics' thresholds; ``imgsz``; ``device`` ("cpu", "cuda:0");
    ``config_dir``: ultralytics' settings folder (else ``$YOLO_CONFIG_DIR``, else a folder under the
    system temp dir: nothing is written to the home directory). ultralytics' process-wide changes
    (environment, thread counts, monkey-patched ``PIL.Image.open``/``torch.load``/``cv2.imread``) are
    undone after every load and predict call.
    """

    weights: str | None = None
    conf: float = 0.25
    iou: float = 0.7
    imgsz: int = 640
    device: str = "cpu"
    person_class: int = 0
    config_dir: str | None = None
    name: str = "yolo"
    _model: Any = field(default=None, init=False, repr=False)
    required_files = ("weights",)

    def __post_init__(self):
        if not self.weights:
            raise UsageError("person detector 'yolo' needs weights= (a YOLO .pt checkpoint path, e.g. "
                             "yolo:weights=/models/yolov8n.pt); no weights ship with madpad")

    def load(self):
        if self._model is None:
            optional_import("torch", extra="yolo", purpose="the yolo person detector")
            from madpad.face.detectors import (
                import_ultralytics,  # env-preserving import (madpad.face)
            )
            from madpad.face.yolo_weights import load_yolo  # scans the file; ultralytics' restricted loader

            w = str(self.weights)
            if not w.endswith((".yaml", ".yml")) and not Path(w).is_file():
                raise FileNotFoundError(f"yolo weights file not found: {w}")
            with _undo_ultralytics_side_effects():
                ul = import_ultralytics(config_dir=self.config_dir)
                self._model = load_yolo(ul, w, task="detect")
        return self._model

    def detect(self, image) -> list[PersonDetection]:
        img = as_rgb_uint8(image)
        model = self.load()
        with _undo_ultralytics_side_effects():  # select_device resets torch's thread count, ...
            # ultralytics takes numpy input as BGR (OpenCV order)
            res = model.predict(np.ascontiguousarray(img[:, :, ::-1]), conf=self.conf, iou=self.iou,
                                imgsz=self.imgsz, device=self.device, classes=[self.person_class], verbose=False)
        out: list[PersonDetection] = []
        for r in res:
            if r.boxes is None or len(r.boxes) == 0:
                continue
            xyxy = r.boxes.xyxy.cpu().numpy().astype(np.float64)
            scores = r.boxes.conf.cpu().numpy().astype(np.float64)
            cls = r.boxes.cls.cpu().numpy().astype(int)
            for b, s, c in zip(xyxy, scores, cls):
                if c == self.person_class:
                    out.append(PersonDetection(box=b, score=s, detector=self.name))
        return sorted(out, key=lambda d: -d.score)


PERSON_DETECTORS.register("mediapipe_pose", MediapipePoseDetector, extra="mediapipe",
                          description="BlazePose 33 keypoints, single person, + selfie person mask "
                                      "(mediapipe 0.10.14 shipped models)")
PERSON_DETECTORS.register("mediapipe_selfie", MediapipeSelfieDetector, extra="mediapipe",
                          description="mediapipe selfie segmentation, one person per mask component (no keypoints)")
PERSON_DETECTORS.register("hog", HogPeopleDetector, extra="core",
                          description="OpenCV HOG people detector (full-body pedestrians, 64x128 window)")
PERSON_DETECTORS.register("yolo", YoloPersonDetector, extra="yolo",
                          description="Ultralytics YOLO, COCO class 0 'person'; needs weights=PATH",
                          test_params={"weights": "yolov8n.yaml", "conf": 1e-4, "imgsz": 64})  # random init
PERSON_DETECTORS.register("centernet", "madpad.pad.person_onnx:CenterNetPersonDetector", extra="face",
                          description="MobileNetV3 CenterNet (COCO persons, ONNX; every person in the scene) "
                                      "+ BlazePose per person box + selfie mask; model from $MADPAD_SHARED/models/person",
                          test_params={"pose": False, "segment": False}, shared_model="centernet_mbv3_coco.onnx")
PERSON_DETECTORS.register("nanodet", "madpad.pad.person_onnx:NanoDetPersonDetector", extra="face",
                          description="NanoDet (COCO persons, ONNX; every person in the scene) + BlazePose per "
                                      "person box + selfie mask; model from $MADPAD_SHARED/models/person",
                          test_params={"pose": False, "segment": False}, shared_model="nanodet_coco.onnx")

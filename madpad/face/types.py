"""Plain data types of the face toolkit: detections and per-image analyses."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from madpad.errors import FaceNotFoundError, MadpadError

#: Names of the five points of :attr:`FaceDetection.landmarks5`, in order (image coordinates;
#: "left" means the left side of the *image*). This is the order of the ArcFace template.
LANDMARKS5_NAMES = ("left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right")

#: Per-image statuses used by :func:`madpad.face.analyze_face` and :func:`madpad.face.embed_batch`.
STATUSES = ("ok", "no_face", "multiple_faces", "unreadable", "failed")


class DropLoadedModels:
    """Mixin: pickling drops lazily loaded models (listed in ``_lazy_attrs``), so components
    can be sent to worker processes (process pools, Ray); each worker reloads on first use."""

    _lazy_attrs: tuple[str, ...] = ()

    def __getstate__(self):
        state = dict(self.__dict__)
        for k in self._lazy_attrs:
            if k in state:
                state[k] = None
        return state


class MultipleFacesError(FaceNotFoundError):
    """Several faces were found and the selection policy is ``"error_if_multiple"``."""


def as_box(box, *, what: str = "box") -> np.ndarray:
    """Validate a box ``(x0, y0, x1, y1)`` and return it as float64; ``what`` names it in errors."""
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.shape != (4,) or not np.all(np.isfinite(b)):
        raise ValueError(f"{what} must be 4 finite numbers (x0, y0, x1, y1); got {box!r}")
    if b[2] < b[0] or b[3] < b[1]:
        raise ValueError(f"{what} must have x1 >= x0 and y1 >= y0; got {b.tolist()}")
    return b


def box_of(obj, *, what: str = "box") -> np.ndarray:
    """The box of a detection (anything with ``.box``) or a box itself, validated by :func:`as_box`."""
    return as_box(getattr(obj, "box", obj), what=what)


def clip_box(box, shape) -> np.ndarray:
    """Box(es) ``(x0, y0, x1, y1)`` (shape (4,) or (N, 4)) clipped to an image of ``shape`` (H, W[, C])."""
    h, w = shape[:2]
    b = np.array(box, dtype=np.float64)
    b[..., [0, 2]] = np.clip(b[..., [0, 2]], 0, w)
    b[..., [1, 3]] = np.clip(b[..., [1, 3]], 0, h)
    return b


class BoxGeometry:
    """Width, height, area and centre of ``self.box`` = ``(x0, y0, x1, y1)`` in pixels (face and
    person detections)."""

    __slots__ = ()

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0])


@dataclass
class FaceDetection(BoxGeometry):
    """One detected face.

    ``box`` is ``(x0, y0, x1, y1)`` in pixels of the image given to the detector, ``score``
    the detector's confidence (higher = more confident; scales differ between detectors),
    ``landmarks5`` the five points in :data:`LANDMARKS5_NAMES` order or None when the
    detector gives none. ``keypoints`` holds the detector's raw keypoints when they differ
    from ``landmarks5`` (e.g. mediapipe's six), ``landmarks5_estimated`` lists indices of
    ``landmarks5`` that were estimated rather than detected.
    """

    box: np.ndarray
    score: float
    landmarks5: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    landmarks5_estimated: tuple[int, ...] = ()
    detector: str = ""

    def __post_init__(self):
        self.box = as_box(self.box)
        self.score = float(self.score)
        if self.landmarks5 is not None:
            lm = np.asarray(self.landmarks5, dtype=np.float64)
            if lm.shape != (5, 2):
                raise ValueError(f"landmarks5 must have shape (5, 2); got {lm.shape}")
            self.landmarks5 = lm
        if self.keypoints is not None:
            self.keypoints = np.asarray(self.keypoints, dtype=np.float64)

    def scaled(self, factor: float) -> FaceDetection:
        """The same detection in an image resized by ``factor`` (coordinates multiplied)."""
        f = float(factor)
        return FaceDetection(
            self.box * f, self.score,
            None if self.landmarks5 is None else self.landmarks5 * f,
            None if self.keypoints is None else self.keypoints * f,
            self.landmarks5_estimated, self.detector,
        )


@dataclass
class FaceAnalysis:
    """Result of :func:`madpad.face.analyze_face` for one image.

    ``status`` is one of ``"ok"``, ``"no_face"``, ``"multiple_faces"`` (only with the
    ``"error_if_multiple"`` policy), ``"unreadable"`` or ``"failed"``; ``error`` says why when
    it is not ``"ok"``. ``landmarks`` are the landmarker's points (68 for ``dlib68``, 5 for
    ``dlib5`` in dlib's own order, 478 for ``mediapipe_mesh``); ``landmarks5`` always follow
    :data:`LANDMARKS5_NAMES`. ``n_faces`` counts all detections before selection.
    """

    status: str
    detection: FaceDetection | None = None
    landmarks: np.ndarray | None = None
    landmarks5: np.ndarray | None = None
    error: str = ""
    n_faces: int = 0
    image_shape: tuple[int, ...] | None = None
    image: np.ndarray | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def raise_for_status(self) -> FaceAnalysis:
        """Raise the matching :class:`~madpad.errors.MadpadError` unless the status is ``"ok"``."""
        if self.status == "ok":
            return self
        if self.status == "multiple_faces":
            raise MultipleFacesError(self.error)
        if self.status == "no_face":
            raise FaceNotFoundError(self.error)
        from madpad.errors import ImageReadError

        if self.status == "unreadable":
            raise ImageReadError(self.error)
        raise MadpadError(self.error)

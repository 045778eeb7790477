"""The segmenter interface and shared pieces: face hints, matte validation, resizing helpers.

A *matte* is float32 (H, W) in [0, 1] with **1 = person (foreground)** and 0 = background,
at the resolution of the input image. Segmenters that need to know where the face is
(GrabCut, landmark hull) take a ``face=`` hint; without one they run
:func:`madpad.face.analyze_face` themselves.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from madpad.errors import FaceNotFoundError, MadpadError
from madpad.io import downscale  # noqa: F401  (segmenters and the segmentation study use it from here)
from madpad.registry import Component


class Segmenter(Component, abc.ABC):
    """Interface of the segmenters (registry :data:`madpad.segment.SEGMENTERS`).

    Constructor parameters are keyword-only settings (models load on first use, and are not
    pickled: workers build their own). ``segment(image, *, face=None)`` returns the matte of an
    RGB uint8 image (H, W, 3): float32 (H, W) in [0, 1], 1 = person. ``needs_face``: the segmenter
    uses the ``face`` hint (a :class:`FaceHint`, a FaceAnalysis or a dict) and finds the face
    itself when none is given. ``params()`` returns the settings recorded in study outputs.
    """

    needs_face: ClassVar[bool] = False

    @abc.abstractmethod
    def segment(self, image, *, face: Any = None) -> np.ndarray:
        """Float32 matte (H, W) in [0, 1], 1 = person (foreground)."""

    def params(self) -> dict:
        return {}


class ModelFileNotFoundError(MadpadError, FileNotFoundError):
    """A segmentation model file is not where the configuration says it is."""


@dataclass(frozen=True)
class FaceHint:
    """Where the face is: ``box`` (x0, y0, x1, y1) in pixels and, when known, the 68
    dlib-order ``landmarks`` (68, 2) in pixels of the same image."""

    box: np.ndarray
    landmarks: np.ndarray | None = None

    @classmethod
    def from_any(cls, face: Any) -> FaceHint:
        """Accept a FaceHint, a :class:`madpad.face.FaceAnalysis`, a ``FaceDetection``
        or a mapping ``{"box": [...], "landmarks": [[x, y], ...]}``."""
        if isinstance(face, FaceHint):
            return face
        if isinstance(face, dict):
            box, lm = face.get("box"), face.get("landmarks")
        elif hasattr(face, "detection") and hasattr(face, "status"):  # FaceAnalysis
            if face.status != "ok" or face.detection is None:
                raise FaceNotFoundError(f"face analysis status {face.status!r}: {getattr(face, 'error', '')}")
            box, lm = face.detection.box, face.landmarks
        elif hasattr(face, "box"):  # FaceDetection
            box, lm = face.box, None
        else:
            raise TypeError(f"face hint must be a FaceHint, FaceAnalysis, FaceDetection or dict; got {type(face).__name__}")
        if box is None:
            raise ValueError("face hint has no 'box'")
        b = np.asarray(box, dtype=np.float64).reshape(-1)
        if b.shape != (4,) or not np.all(np.isfinite(b)) or b[2] <= b[0] or b[3] <= b[1]:
            raise ValueError(f"face box must be 4 finite numbers x0 < x1, y0 < y1; got {box!r}")
        pts = None
        if lm is not None:
            pts = np.asarray(lm, dtype=np.float64)
            if pts.ndim != 2 or pts.shape[1] != 2:
                raise ValueError(f"face landmarks must have shape (K, 2); got {pts.shape}")
        return cls(b, pts)

    def scaled(self, factor: float) -> FaceHint:
        return FaceHint(self.box * factor, None if self.landmarks is None else self.landmarks * factor)

    def to_dict(self) -> dict:
        return {"box": [float(v) for v in self.box],
                "landmarks": None if self.landmarks is None else np.round(self.landmarks, 2).tolist()}


def analyze_face_hint(image: np.ndarray, *, detector: str = "dlib_hog", landmarker: str | None = "dlib68",
                      detector_params: dict | None = None) -> FaceHint:
    """Run madpad.face on ``image`` (largest face) and return its hint.

    Raises :class:`FaceNotFoundError` when no face is found.
    """
    from madpad import face as mface

    det = mface.get_detector(detector, **(detector_params or {}))
    lmk = mface.get_landmarker(landmarker) if landmarker else None
    kwargs = {"detector": det}
    if lmk is not None:
        kwargs["landmarker"] = lmk
    analysis = mface.analyze_face(image, **kwargs)
    return FaceHint.from_any(analysis)


def resolve_face(image: np.ndarray, face: Any, *, need_landmarks: bool, detector: str = "dlib_hog",
                 detector_params: dict | None = None) -> FaceHint:
    """The face hint for ``image``: the given one, or one computed with madpad.face."""
    if face is not None:
        hint = FaceHint.from_any(face)
        if need_landmarks and (hint.landmarks is None or len(hint.landmarks) != 68):
            raise ValueError("this segmenter needs the 68 dlib-order landmarks in the face hint "
                             f"(got {None if hint.landmarks is None else len(hint.landmarks)} points)")
        return hint
    return analyze_face_hint(image, detector=detector, landmarker="dlib68" if need_landmarks else None,
                             detector_params=detector_params)


def check_image(image: Any) -> np.ndarray:
    from madpad.io import as_rgb_uint8

    img = as_rgb_uint8(image)
    if img.shape[0] < 8 or img.shape[1] < 8:
        raise ValueError(f"image too small to segment: shape {img.shape}")
    return img


def finish_matte(matte: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize (bilinear) to ``shape`` (H, W) when needed, clip to [0, 1], float32."""
    import cv2

    m = np.asarray(matte, dtype=np.float32)
    if m.ndim == 3:
        m = m[..., 0]
    if m.shape != tuple(shape):
        m = cv2.resize(m, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR)
    m = np.nan_to_num(m, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(m, 0.0, 1.0).astype(np.float32)


def check_matte(matte: Any, shape: tuple[int, int] | None = None, *, name: str = "matte") -> np.ndarray:
    """Validate a matte: 2-D, finite, values in [0, 1] (uint8 0..255 is accepted and scaled)."""
    m = np.asarray(matte)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.ndim != 2:
        raise ValueError(f"{name} must be 2-D (H, W); got shape {m.shape}")
    if shape is not None and m.shape != tuple(shape):
        raise ValueError(f"{name} shape {m.shape} does not match the image (H, W) = {tuple(shape)}")
    if m.dtype == np.uint8:
        return (m.astype(np.float32) / 255.0)
    m = m.astype(np.float32)
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if m.size and (float(m.min()) < -1e-6 or float(m.max()) > 1.0 + 1e-6):
        raise ValueError(f"{name} values must lie in [0, 1]; got [{float(m.min()):.3g}, {float(m.max()):.3g}]")
    return np.clip(m, 0.0, 1.0)


def feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Soften a binary/soft mask with a Gaussian of ``sigma`` pixels (0 = unchanged)."""
    import cv2

    m = mask.astype(np.float32)
    if sigma and sigma > 0:
        m = cv2.GaussianBlur(m, (0, 0), sigmaX=float(sigma), sigmaY=float(sigma), borderType=cv2.BORDER_REPLICATE)
    return np.clip(m, 0.0, 1.0)


def largest_component(binary: np.ndarray, *, seed_point: tuple[float, float] | None = None) -> np.ndarray:
    """Keep the connected component containing ``seed_point`` (x, y), else the largest; fill holes."""
    import cv2

    b = (binary > 0).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(b, connectivity=8)
    if n <= 1:
        return b.astype(bool)
    keep = None
    if seed_point is not None:
        x = int(np.clip(round(seed_point[0]), 0, b.shape[1] - 1))
        y = int(np.clip(round(seed_point[1]), 0, b.shape[0] - 1))
        if labels[y, x] > 0:
            keep = labels[y, x]
    if keep is None:
        keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    comp = (labels == keep).astype(np.uint8)
    # fill holes: background = what a flood fill from the border reaches
    inv = (1 - comp).astype(np.uint8)
    _, lab2 = cv2.connectedComponents(inv, connectivity=4)
    border_labels = set(np.unique(np.concatenate([lab2[0], lab2[-1], lab2[:, 0], lab2[:, -1]])).tolist())
    holes = (inv > 0) & ~np.isin(lab2, list(border_labels))
    return (comp > 0) | holes


def clean_matte(matte: np.ndarray, *, support: float = 0.03, core: float = 0.02) -> np.ndarray:
    """Remove specks away from the person and holes inside it, keeping soft edges.

    The person is the largest connected component of ``matte > 0.5`` (holes filled). Values
    farther than ``support`` x (longer image side) from it are set to 0 (a soft falloff), and the
    person eroded by ``core`` x (longer side) is set to 1; in between (hair strands, edges) the
    matte is unchanged.
    """
    import cv2

    m = np.asarray(matte, dtype=np.float32)
    person = largest_component(m > 0.5)
    if not person.any():
        return m.copy()
    side = max(m.shape)
    r_out = max(1, round(support * side))
    r_in = max(1, round(core * side))
    k_out = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r_out + 1, 2 * r_out + 1))
    k_in = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r_in + 1, 2 * r_in + 1))
    p8 = person.astype(np.uint8)
    near = cv2.dilate(p8, k_out).astype(np.float32)
    near = cv2.GaussianBlur(near, (0, 0), max(1.0, r_out / 3.0))
    inner = cv2.erode(p8, k_in).astype(np.float32)
    out = np.maximum(m * np.clip(near, 0.0, 1.0), inner)
    return np.clip(out, 0.0, 1.0).astype(np.float32)

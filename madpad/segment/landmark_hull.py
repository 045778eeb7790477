"""Landmark-hull baseline: a person matte drawn from the 68 facial landmarks alone.

Geometry (dlib 68-point order; all lengths relative to the face, so the shape follows the
face's scale and in-plane rotation). Let ``E`` be the midpoint of the two eye centres
(points 36-41 and 42-47), ``C`` the chin (point 8), ``u`` the unit vector from ``C`` to
``E`` ("up" along the face), ``r`` the unit vector perpendicular to ``u`` towards the image
right, ``fw = |p16 - p0|`` (jaw width) and ``fh = |E - C|``.

* **Head**: the convex hull of the 68 points together with a half ellipse above the eye line,
  centred on ``E``, with semi-axes ``0.5 * widen * fw`` along ``r`` and ``crown * fh`` along
  ``u`` (forehead, skull and a typical amount of hair; defaults widen 1.15, crown 1.35).
* **Neck**: a quadrilateral from jaw points 5 and 11 straight down (along ``-u``) for
  ``neck * fh`` below the chin (default 0.6), keeping the width ``0.9 * |p11 - p5|``.
* **Shoulders** (``shoulders > 0``): from the bottom of the neck a trapezoid widening to
  ``shoulders * fw`` over ``0.8 * fh`` (default 3.0), then straight down to the image bottom.
  Set ``shoulders=0`` to stop at the neck.

The union is feathered with a Gaussian of ``feather_sigma * fw`` pixels (default 0.02) so
the edge is soft. Hair outside the ellipse (long hair, buns) is cut: this is a baseline that
shows what geometry alone gives.
"""

from __future__ import annotations

import numpy as np

from madpad.segment.base import Segmenter, check_image, feather, resolve_face


class LandmarkHullSegmenter(Segmenter):
    """Person matte from the 68 landmarks (see the module docstring for the geometry)."""

    needs_face = True
    name = "landmark_hull"

    def __init__(self, *, crown: float = 1.35, widen: float = 1.15, neck: float = 0.6, shoulders: float = 3.0,
                 feather_sigma: float = 0.02, detector: str = "dlib_hog", detector_params: dict | None = None):
        for key, value in (("crown", crown), ("widen", widen), ("neck", neck)):
            if not float(value) > 0:
                raise ValueError(f"{key} must be > 0; got {value}")
        if float(shoulders) < 0:
            raise ValueError(f"shoulders must be >= 0 (0 = no shoulders); got {shoulders}")
        self.crown = float(crown)
        self.widen = float(widen)
        self.neck = float(neck)
        self.shoulders = float(shoulders)
        self.feather_sigma = float(feather_sigma)
        self.detector = detector
        self.detector_params = dict(detector_params or {})

    def params(self) -> dict:
        return {"crown": self.crown, "widen": self.widen, "neck": self.neck, "shoulders": self.shoulders,
                "feather_sigma": self.feather_sigma, "detector": self.detector}

    def polygons(self, landmarks: np.ndarray, shape: tuple[int, int]) -> list[np.ndarray]:
        """The filled polygons (head hull, neck, shoulders) in pixel coordinates."""
        import cv2

        p = np.asarray(landmarks, dtype=np.float64)
        if p.shape != (68, 2):
            raise ValueError(f"landmark hull needs the 68 dlib-order landmarks; got shape {p.shape}")
        H = int(shape[0])
        le, re = p[36:42].mean(axis=0), p[42:48].mean(axis=0)
        E, C = 0.5 * (le + re), p[8]
        up = E - C
        fh = float(np.hypot(*up))
        fw = float(np.hypot(*(p[16] - p[0])))
        if fh < 1e-6 or fw < 1e-6:
            raise ValueError("degenerate landmarks (zero face height or width)")
        u = up / fh
        r = np.array([-u[1], u[0]])  # perpendicular; image y grows downwards
        if r[0] < 0:
            r = -r
        t = np.linspace(0.0, np.pi, 48)
        a, b = 0.5 * self.widen * fw, self.crown * fh
        ellipse = E + np.outer(np.cos(t) * a, r) + np.outer(np.sin(t) * b, u)
        head = cv2.convexHull(np.vstack([p, ellipse]).astype(np.float32)).reshape(-1, 2).astype(np.float64)
        polys = [head]
        # neck
        half = 0.45 * float(np.hypot(*(p[11] - p[5])))
        nc = C - self.neck * fh * u  # centre of the neck's bottom edge
        top_c = 0.5 * (p[5] + p[11])
        neck = np.array([top_c - half * r, top_c + half * r, nc + half * r, nc - half * r])
        polys.append(neck)
        if self.shoulders > 0:
            sh = 0.5 * self.shoulders * fw
            y_mid = nc[1] + 0.8 * fh
            y_bot = max(float(H - 1), y_mid)
            torso = np.array([nc - half * r, nc + half * r, [nc[0] + sh, y_mid], [nc[0] + sh, y_bot],
                              [nc[0] - sh, y_bot], [nc[0] - sh, y_mid]])
            polys.append(torso)
        return polys

    def segment(self, image, *, face=None) -> np.ndarray:
        """Float32 matte (H, W) in [0, 1], 1 = person.

        ``face``: a face hint with the 68 landmarks; computed with madpad.face (dlib68) when
        None (raises :class:`~madpad.errors.FaceNotFoundError` when there is no face).
        """
        import cv2

        img = check_image(image)
        hint = resolve_face(img, face, need_landmarks=True, detector=self.detector,
                            detector_params=self.detector_params)
        mask = np.zeros(img.shape[:2], np.uint8)
        for poly in self.polygons(hint.landmarks, img.shape[:2]):
            cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
        fw = float(np.hypot(*(hint.landmarks[16] - hint.landmarks[0])))
        return feather(mask.astype(np.float32), self.feather_sigma * fw)

"""OpenCV GrabCut seeded from the face box.

Seeding (on a copy of the image downscaled to ``work_size`` on its longer side), with the
face box of width ``w`` and height ``h``:

* **definite foreground**: the central part of the face box (shrunk by ``core`` on each side);
* **probable foreground**: a "head and shoulders" region: the face box widened by 25 % of
  ``w`` per side and raised by ``hair * h`` (hair), then, from the chin down to the image
  bottom, a trapezoid that widens linearly from the face width to ``shoulders * w`` at
  the image bottom;
* **definite background**: a border strip of ``border`` x (image size) along the top edge and
  along the left and right edges down to the chin (lower side edges stay "probable
  background", since shoulders often touch them);
* everything else: probable background.

GrabCut (``iterations`` rounds) then labels the pixels; the result keeps the connected
component that contains the face centre, fills its holes, is upsampled to the input size and
feathered with a Gaussian (``feather_sigma`` x face width) to a soft matte.
"""

from __future__ import annotations

import numpy as np

from madpad.segment.base import (
    Segmenter,
    check_image,
    downscale,
    feather,
    finish_matte,
    largest_component,
    resolve_face,
)


class GrabCutSegmenter(Segmenter):
    """GrabCut person matte seeded from the face box (see the module docstring)."""

    needs_face = True
    name = "grabcut"

    def __init__(self, *, work_size: int = 400, iterations: int = 5, border: float = 0.03, core: float = 0.2,
                 hair: float = 0.6, shoulders: float = 3.0, feather_sigma: float = 0.01,
                 detector: str = "dlib_hog", detector_params: dict | None = None):
        if int(work_size) < 64:
            raise ValueError(f"work_size must be >= 64 pixels; got {work_size}")
        if int(iterations) < 1:
            raise ValueError(f"iterations must be >= 1; got {iterations}")
        if not 0.0 < float(border) < 0.25:
            raise ValueError(f"border must be in (0, 0.25); got {border}")
        if not 0.0 <= float(core) < 0.5:
            raise ValueError(f"core must be in [0, 0.5); got {core}")
        self.work_size = int(work_size)
        self.iterations = int(iterations)
        self.border = float(border)
        self.core = float(core)
        self.hair = float(hair)
        self.shoulders = float(shoulders)
        self.feather_sigma = float(feather_sigma)
        self.detector = detector
        self.detector_params = dict(detector_params or {})

    def params(self) -> dict:
        return {"work_size": self.work_size, "iterations": self.iterations, "border": self.border,
                "core": self.core, "hair": self.hair, "shoulders": self.shoulders,
                "feather_sigma": self.feather_sigma, "detector": self.detector}

    def seed_mask(self, shape: tuple[int, int], box: np.ndarray) -> np.ndarray:
        """The GrabCut initial label map (cv2.GC_* values) for an image of ``shape`` (H, W)."""
        import cv2

        H, W = int(shape[0]), int(shape[1])
        x0, y0, x1, y1 = (float(v) for v in box)
        w, h = x1 - x0, y1 - y0
        cx = 0.5 * (x0 + x1)
        m = np.full((H, W), cv2.GC_PR_BGD, np.uint8)
        # probable foreground: head (box widened, raised for hair) + neck/shoulder trapezoid
        hx0, hx1 = x0 - 0.25 * w, x1 + 0.25 * w
        hy0 = y0 - self.hair * h
        _fill_rect(m, hx0, hy0, hx1, y1, cv2.GC_PR_FGD)
        if y1 < H:
            top_half, bottom_half = 0.5 * w, 0.5 * self.shoulders * w
            poly = np.array([[cx - top_half, y1], [cx + top_half, y1],
                             [cx + bottom_half, H - 1], [cx - bottom_half, H - 1]], np.float64)
            cv2.fillPoly(m, [np.round(poly).astype(np.int32)], int(cv2.GC_PR_FGD))
        # definite background: border strips (top; left/right down to the chin)
        b = max(1, round(self.border * max(H, W)))
        chin = int(np.clip(round(y1), 0, H))
        m[:b, :] = cv2.GC_BGD
        m[:chin, :b] = cv2.GC_BGD
        m[:chin, W - b:] = cv2.GC_BGD
        # definite foreground: face core
        _fill_rect(m, x0 + self.core * w, y0 + self.core * h, x1 - self.core * w, y1 - self.core * h, cv2.GC_FGD)
        return m

    def segment(self, image, *, face=None) -> np.ndarray:
        """Float32 matte (H, W) in [0, 1], 1 = person.

        ``face``: a face hint (box) for this image; computed with madpad.face when None
        (raises :class:`~madpad.errors.FaceNotFoundError` when there is no face).
        """
        import cv2

        img = check_image(image)
        hint = resolve_face(img, face, need_landmarks=False, detector=self.detector,
                            detector_params=self.detector_params)
        small, f = downscale(img, self.work_size)
        box = hint.box * f
        mask = self.seed_mask(small.shape[:2], box)
        bgd = np.zeros((1, 65), np.float64)
        fgd = np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)  # GrabCut's GMM initialisation uses OpenCV's RNG: keep it deterministic
        cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), mask, None, bgd, fgd, self.iterations,
                    cv2.GC_INIT_WITH_MASK)
        fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        centre = (0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3]))
        fg = largest_component(fg, seed_point=centre)
        matte = finish_matte(fg.astype(np.float32), img.shape[:2])
        sigma = self.feather_sigma * float(hint.box[2] - hint.box[0])
        return feather(matte, sigma)


def _fill_rect(m: np.ndarray, x0: float, y0: float, x1: float, y1: float, value: int) -> None:
    H, W = m.shape
    a, b = int(np.clip(np.floor(x0), 0, W)), int(np.clip(np.ceil(x1), 0, W))
    c, d = int(np.clip(np.floor(y0), 0, H)), int(np.clip(np.ceil(y1), 0, H))
    if b > a and d > c:
        m[c:d, a:b] = value

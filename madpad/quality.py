"""Face image quality measures in the spirit of ISO/IEC 29794-5 (madpad's own implementation).

Each measure gives a *native* value with a physical meaning; :func:`quality_components`
adds a 0..100 *component* score (higher = better) from a documented mapping. These are not
the standard's reference implementation (OFIQ) and their numbers are not comparable to it.

Measures, for an RGB uint8 image, its 68 dlib-order landmarks and optionally a person matte:

* ``sharpness``: variance of the Laplacian of the grey face region after resampling the face
  so that the inter-eye distance is :data:`CANONICAL_IED` = 64 px (resolution-normalised).
  Component: ``100 * (1 - exp(-sharpness / 100))``.
* ``exposure_mean``: mean luminance (Rec. 601, 0..255) of the face region;
  ``exposure_clipped``: share of face pixels at <= 5 or >= 250. Component:
  ``100 * (1 - |mean - 128| / 128) * (1 - clipped)``.
* ``background_std``: standard deviation of the luminance of the background: the pixels with
  matte < 0.5 when a matte is given, otherwise the *background sample region*: the image rows
  above the face box's bottom edge (the chin; shoulders and clothes are below), minus the
  "head box" (the face box widened by 40 % of its width per side and raised by 60 % of its
  height for hair). It grows with anything in the background region: backdrop texture and
  gradients, but also hair strands or clutter that a segmenter left on a plain new background.
* ``background_spread``: robust spread of the same pixels, ``1.4826 * median(|y - median(y)|)``
  (equals the std for Gaussian noise, ignores a minority of outlier pixels such as stray hair):
  the uniformity of the backdrop itself. Component (uniformity):
  ``100 * exp(-background_spread / 32)``.
* ``inter_eye_distance``: distance between the eye centres in pixels (face size). Component:
  ``100 * min(1, ied / 90)`` (ICAO-style portraits ask for at least 90 px between the eyes).
* ``yaw``, ``roll`` in degrees: roll = angle of the eye line; yaw is an *estimate* from the
  horizontal position of the nose tip (point 30) between the jaw edges (points 0 and 16):
  ``asin((dl - dr) / (dl + dr))`` with ``dl``/``dr`` the nose-to-jaw-edge distances along the
  eye line (0 = frontal; sign: positive when the nose is nearer the image-right jaw edge).
  Component: ``100 * max(0, 1 - (|yaw| + |roll|) / 45)``.
* ``utility`` (recognition utility): computed by the caller from embeddings, see
  :func:`recognition_utility`: the cosine similarity between the image's face embedding and
  the embedding of another, original image of the same subject (a "mated similarity"
  utility label). Higher = more useful for recognition.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from madpad.io import luminance

CANONICAL_IED = 64.0
MEASURES = ("sharpness", "exposure_mean", "exposure_clipped", "background_std", "background_spread",
            "inter_eye_distance", "yaw", "roll")


@dataclass
class QualityMeasures:
    """Native quality values of one image (see the module docstring)."""

    sharpness: float
    exposure_mean: float
    exposure_clipped: float
    background_std: float
    background_spread: float
    inter_eye_distance: float
    yaw: float
    roll: float

    def as_dict(self) -> dict:
        return asdict(self)


def _check_landmarks(landmarks) -> np.ndarray:
    p = np.asarray(landmarks, dtype=np.float64)
    if p.shape != (68, 2) or not np.all(np.isfinite(p)):
        raise ValueError(f"quality measures need the 68 dlib-order landmarks as finite (68, 2); got shape {p.shape}")
    return p


def eye_centres(landmarks) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the eye in the image left (points 36-41) and the image right (42-47)."""
    p = _check_landmarks(landmarks)
    return p[36:42].mean(axis=0), p[42:48].mean(axis=0)


def inter_eye_distance(landmarks) -> float:
    """Distance in pixels between the two eye centres."""
    le, re = eye_centres(landmarks)
    return float(np.hypot(*(re - le)))


def face_region_mask(shape: tuple[int, int], landmarks) -> np.ndarray:
    """Boolean mask of the convex hull of the 68 landmarks (the inner face)."""
    import cv2

    p = _check_landmarks(landmarks)
    m = np.zeros(shape[:2], np.uint8)
    hull = cv2.convexHull(np.round(p).astype(np.int32))
    cv2.fillConvexPoly(m, hull, 1)
    return m.astype(bool)


def sharpness(image: np.ndarray, landmarks) -> float:
    """Variance of the Laplacian of the grey face region at a canonical inter-eye distance."""
    import cv2

    p = _check_landmarks(landmarks)
    ied = inter_eye_distance(p)
    if ied < 1:
        raise ValueError("degenerate landmarks: inter-eye distance < 1 px")
    x0, y0 = np.floor(p.min(axis=0)).astype(int)
    x1, y1 = np.ceil(p.max(axis=0)).astype(int) + 1
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise ValueError("face region is outside the image")
    grey = luminance(image[y0:y1, x0:x1])
    mask = face_region_mask(image.shape[:2], p)[y0:y1, x0:x1].astype(np.uint8)
    f = CANONICAL_IED / ied
    size = (max(4, round((x1 - x0) * f)), max(4, round((y1 - y0) * f)))
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
    g = cv2.resize(grey, size, interpolation=interp)
    m = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    m = cv2.erode(m, np.ones((3, 3), np.uint8)).astype(bool)  # drop the hull edge
    lap = cv2.Laplacian(g, cv2.CV_32F, ksize=1)
    vals = lap[m] if m.any() else lap.ravel()
    return float(np.var(vals))


def exposure(image: np.ndarray, landmarks) -> tuple[float, float]:
    """(mean luminance, share of clipped pixels) of the face region."""
    y = luminance(image)[face_region_mask(image.shape[:2], landmarks)]
    if y.size == 0:
        raise ValueError("face region is empty")
    return float(y.mean()), float(np.mean((y <= 5) | (y >= 250)))


def background_region(shape: tuple[int, int], box) -> np.ndarray:
    """Boolean mask of the background sample region used when no matte is given (see the
    module docstring): rows above the chin, outside the head box."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    H, W = shape[:2]
    m = np.zeros((H, W), bool)
    chin = int(np.clip(np.ceil(y1), 0, H))
    m[:chin, :] = True
    a, b = int(max(0, np.floor(x0 - 0.4 * w))), int(min(W, np.ceil(x1 + 0.4 * w)))
    c = int(max(0, np.floor(y0 - 0.6 * h)))
    m[c:chin, a:b] = False
    return m


def _background_luma(image: np.ndarray, matte, box) -> np.ndarray:
    if matte is not None:
        bg = np.asarray(matte, dtype=np.float32) < 0.5
        if bg.shape != image.shape[:2]:
            raise ValueError(f"matte shape {bg.shape} does not match the image {image.shape[:2]}")
    elif box is not None:
        bg = background_region(image.shape[:2], box)
    else:
        raise ValueError("background measures need a matte or a face box")
    return luminance(image)[bg]


def background_std(image: np.ndarray, *, matte=None, box=None) -> float:
    """Standard deviation of the background luminance (matte < 0.5, or the background sample
    region of :func:`background_region`). NaN when no background pixel is left."""
    y = _background_luma(image, matte, box)
    return float(y.std()) if y.size else float("nan")


def background_spread(image: np.ndarray, *, matte=None, box=None) -> float:
    """Robust spread (1.4826 x median absolute deviation) of the background luminance."""
    y = _background_luma(image, matte, box)
    if not y.size:
        return float("nan")
    return float(1.4826 * np.median(np.abs(y - np.median(y))))


def pose(landmarks) -> tuple[float, float]:
    """(yaw, roll) in degrees estimated from the 68 landmarks (see the module docstring)."""
    p = _check_landmarks(landmarks)
    le, re = eye_centres(p)
    d = re - le
    roll = float(np.degrees(np.arctan2(d[1], d[0])))
    axis = d / max(np.hypot(*d), 1e-9)
    nose = p[30]
    dl = float(np.dot(nose - p[0], axis))
    dr = float(np.dot(p[16] - nose, axis))
    total = dl + dr
    if total <= 1e-9:
        raise ValueError("degenerate landmarks: jaw width <= 0 along the eye line")
    ratio = float(np.clip((dl - dr) / total, -1.0, 1.0))
    yaw = float(np.degrees(np.arcsin(ratio)))
    return yaw, roll


def measure_quality(image: np.ndarray, landmarks, *, box=None, matte=None) -> QualityMeasures:
    """All native measures of one image (``box`` defaults to the landmarks' bounding box)."""
    from madpad.io import as_rgb_uint8

    img = as_rgb_uint8(image)
    p = _check_landmarks(landmarks)
    if box is None:
        box = np.concatenate([p.min(axis=0), p.max(axis=0)])
    mean, clipped = exposure(img, p)
    yaw, roll = pose(p)
    return QualityMeasures(
        sharpness=sharpness(img, p), exposure_mean=mean, exposure_clipped=clipped,
        background_std=background_std(img, matte=matte, box=box),
        background_spread=background_spread(img, matte=matte, box=box), inter_eye_distance=inter_eye_distance(p),
        yaw=yaw, roll=roll)


def quality_components(m: QualityMeasures | dict) -> dict:
    """0..100 component scores (higher = better) from native measures (mappings in the module docstring)."""
    d = m.as_dict() if isinstance(m, QualityMeasures) else dict(m)
    out = {
        "q_sharpness": 100.0 * (1.0 - np.exp(-float(d["sharpness"]) / 100.0)),
        "q_exposure": 100.0 * max(0.0, 1.0 - abs(float(d["exposure_mean"]) - 128.0) / 128.0)
        * (1.0 - float(d["exposure_clipped"])),
        "q_background_uniformity": (float("nan") if not np.isfinite(d["background_spread"])
                                    else 100.0 * float(np.exp(-float(d["background_spread"]) / 32.0))),
        "q_face_size": 100.0 * min(1.0, float(d["inter_eye_distance"]) / 90.0),
        "q_pose": 100.0 * max(0.0, 1.0 - (abs(float(d["yaw"])) + abs(float(d["roll"]))) / 45.0),
    }
    return {k: float(v) for k, v in out.items()}


def recognition_utility(embedding, reference_embedding) -> float:
    """Recognition utility: cosine similarity of an image's embedding to the embedding of
    another original image of the same subject (NaN when either is missing)."""
    a = np.asarray(embedding, dtype=np.float64).ravel()
    b = np.asarray(reference_embedding, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"embedding sizes differ: {a.shape} vs {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("nan")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float("nan")
    return float(np.dot(a, b) / (na * nb))

"""Face alignment: similarity transforms onto fixed eye positions or the ArcFace template.

* :func:`align_portrait` — an ICAO-like portrait: eyes level, their centres at fixed pixel
  positions. Defaults follow the ISO/IEC 19794-5 "token frontal" geometry: for an image of
  width W and height H = W/0.75, the eye line is 0.6 W below the top (= 0.45 H) and the
  inter-eye distance is 0.25 W, both eyes centred horizontally.
* :func:`align_arcface` — the 112x112 five-point similarity alignment used by
  ArcFace-family recognisers (:data:`ARCFACE_TEMPLATE`).

Landmarks may be given as 5 points (:data:`madpad.face.LANDMARKS5_NAMES` order), dlib's 68
points or mediapipe's 468/478 mesh points; :func:`to_landmarks5` converts.
"""

from __future__ import annotations

import numpy as np

#: The public ArcFace/insightface 112x112 five-point template (left eye, right eye,
#: nose tip, mouth left, mouth right; image coordinates).
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)

_BORDERS = {"replicate": "BORDER_REPLICATE", "reflect": "BORDER_REFLECT_101", "constant": "BORDER_CONSTANT"}


# --------------------------------------------------------------------------- landmark conversions
def landmarks68_to_5(landmarks: np.ndarray) -> np.ndarray:
    """dlib/iBUG 68 points -> 5 points: eye centres (mean of each eye's six contour points,
    36-41 and 42-47), nose tip (30), mouth corners (48, 54). Returned in image left-to-right
    order for the eyes and mouth corners."""
    lm = _as_points(landmarks, "landmarks")
    if lm.shape[0] != 68:
        raise ValueError(f"expected 68 landmarks; got {lm.shape[0]}")
    e1, e2 = lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)
    m1, m2 = lm[48], lm[54]
    return _order5(e1, e2, lm[30], m1, m2)


#: Face-mesh indices used for the five points (eye corners, nose tip, mouth corners).
MESH_EYE_CORNERS = ((33, 133), (362, 263))
MESH_IRIS_CENTRES = (468, 473)
MESH_NOSE_TIP = 1
MESH_MOUTH_CORNERS = (61, 291)


def mesh_to_landmarks5(landmarks: np.ndarray) -> np.ndarray:
    """mediapipe face mesh (468 or 478 points) -> 5 points. Eye centres are the iris centres
    (468, 473) when the 10 iris points are present, else the midpoints of the eye corners
    (33/133, 362/263); nose tip 1; mouth corners 61, 291."""
    lm = _as_points(landmarks, "landmarks")
    if lm.shape[0] not in (468, 478):
        raise ValueError(f"expected 468 or 478 face-mesh points; got {lm.shape[0]}")
    if lm.shape[0] == 478:
        e1, e2 = lm[MESH_IRIS_CENTRES[0]], lm[MESH_IRIS_CENTRES[1]]
    else:
        e1 = lm[list(MESH_EYE_CORNERS[0])].mean(axis=0)
        e2 = lm[list(MESH_EYE_CORNERS[1])].mean(axis=0)
    return _order5(e1, e2, lm[MESH_NOSE_TIP], lm[MESH_MOUTH_CORNERS[0]], lm[MESH_MOUTH_CORNERS[1]])


def to_landmarks5(landmarks: np.ndarray) -> np.ndarray:
    """5 points (returned as they are), 68 points or 468/478 mesh points -> 5 points.

    dlib's *5-point shape predictor* output is not in our order: convert it with
    ``get_landmarker("dlib5").to_landmarks5(points)``.
    """
    lm = _as_points(landmarks, "landmarks")
    n = lm.shape[0]
    if n == 5:
        return lm.copy()
    if n == 68:
        return landmarks68_to_5(lm)
    if n in (468, 478):
        return mesh_to_landmarks5(lm)
    raise ValueError(f"cannot convert {n} landmarks to 5 points; expected 5, 68, 468 or 478")


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(left eye centre, right eye centre) in image coordinates from 5/68/mesh landmarks."""
    lm5 = to_landmarks5(landmarks)
    return lm5[0], lm5[1]


def estimate_landmarks5(known: dict[int, np.ndarray]) -> np.ndarray:
    """Fill missing points of a 5-point set from :data:`ARCFACE_TEMPLATE`.

    ``known`` maps indices (0..4, :data:`LANDMARKS5_NAMES` order) to points; a similarity
    transform fitted from the template's known points onto them places the missing ones.
    Needs at least two known points (the eyes, typically).
    """
    if len(known) < 2:
        raise ValueError("need at least two known points to estimate the others")
    idx = sorted(known)
    src = ARCFACE_TEMPLATE[idx]
    dst = np.array([known[i] for i in idx], dtype=np.float64)
    M = similarity_transform(src, dst)
    full = apply_transform(M, ARCFACE_TEMPLATE)
    for i in idx:
        full[i] = known[i]
    return full


def _as_points(landmarks, name: str) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] != 2:
        raise ValueError(f"{name} must have shape (K, 2); got {lm.shape}")
    if not np.all(np.isfinite(lm)):
        raise ValueError(f"{name} contain NaN or infinite values")
    return lm


def _order5(e1, e2, nose, m1, m2) -> np.ndarray:
    if e1[0] > e2[0]:
        e1, e2 = e2, e1
    if m1[0] > m2[0]:
        m1, m2 = m2, m1
    return np.array([e1, e2, nose, m1, m2], dtype=np.float64)


# --------------------------------------------------------------------------- transforms
def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation; no
    reflection) mapping ``src`` points onto ``dst`` points (closed form of Umeyama, 1991).

    Returns the 2x3 matrix ``M`` with ``dst ~= src @ M[:, :2].T + M[:, 2]``. With two
    points the fit is exact.
    """
    s = np.asarray(src, dtype=np.float64)
    d = np.asarray(dst, dtype=np.float64)
    if s.shape != d.shape or s.ndim != 2 or s.shape[1] != 2 or s.shape[0] < 2:
        raise ValueError(f"src and dst must both have shape (K>=2, 2); got {s.shape} and {d.shape}")
    mu_s, mu_d = s.mean(axis=0), d.mean(axis=0)
    sc, dc = s - mu_s, d - mu_d
    var_s = (sc**2).sum() / len(s)
    if var_s * len(s) <= 1e-12:
        raise ValueError("source points coincide (all identical); cannot fit a similarity transform")
    cov = dc.T @ sc / len(s)
    U, S, Vt = np.linalg.svd(cov)
    D = np.eye(2)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[1, 1] = -1.0
    R = U @ D @ Vt
    scale = float(np.trace(np.diag(S) @ D) / var_s)
    M = np.zeros((2, 3))
    M[:, :2] = scale * R
    M[:, 2] = mu_d - scale * R @ mu_s
    return M


def apply_transform(M: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (K, 2) points."""
    p = np.asarray(points, dtype=np.float64)
    return p @ np.asarray(M, dtype=np.float64)[:, :2].T + np.asarray(M, dtype=np.float64)[:, 2]


def invert_transform(M: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    A = np.vstack([np.asarray(M, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(A)[:2]


def warp(image: np.ndarray, M: np.ndarray, size: tuple[int, int], *, border: str = "replicate",
         border_value=(0, 0, 0), interpolation: str = "linear") -> np.ndarray:
    """Warp an RGB image with the 2x3 matrix ``M`` into an image of ``size=(W, H)``."""
    import cv2

    if border not in _BORDERS:
        raise ValueError(f"border must be one of {sorted(_BORDERS)}; got {border!r}")
    interp = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA,
              "nearest": cv2.INTER_NEAREST}
    if interpolation not in interp:
        raise ValueError(f"interpolation must be one of {sorted(interp)}; got {interpolation!r}")
    w, h = int(size[0]), int(size[1])
    return cv2.warpAffine(np.ascontiguousarray(image), np.asarray(M, dtype=np.float64), (w, h),
                          flags=interp[interpolation], borderMode=getattr(cv2, _BORDERS[border]),
                          borderValue=tuple(int(v) for v in border_value))


# --------------------------------------------------------------------------- alignment
def portrait_eye_targets(*, size=(600, 800), eye_y: float = 0.45, eye_dist: float = 0.25,
                         center_x: float = 0.5) -> np.ndarray:
    """Pixel positions (2, 2) of the left and right eye centres in an aligned portrait.

    ``eye_y`` is a fraction of the height, ``eye_dist`` and ``center_x`` fractions of the width.
    """
    w, h = _check_size(size)
    if not (0 < eye_dist < 1) or not (0 < eye_y < 1) or not (0 < center_x < 1):
        raise ValueError(f"eye_y, eye_dist and center_x must be fractions in (0, 1); "
                         f"got eye_y={eye_y}, eye_dist={eye_dist}, center_x={center_x}")
    cx, y, half = center_x * w, eye_y * h, eye_dist * w / 2.0
    return np.array([[cx - half, y], [cx + half, y]], dtype=np.float64)


def align_portrait(image: np.ndarray, landmarks: np.ndarray, *, size=(600, 800), eye_y: float = 0.45,
                   eye_dist: float = 0.25, center_x: float = 0.5, border: str = "replicate",
                   border_value=(0, 0, 0), interpolation: str = "linear") -> tuple[np.ndarray, np.ndarray]:
    """Align a face so that the eye centres land on fixed pixel positions, eyes level.

    ``landmarks``: 5 points (our order), 68 points or mesh points in ``image``. Output size
    is ``size=(W, H)``; the left eye centre goes to ``(center_x*W - eye_dist*W/2, eye_y*H)`` and
    the right one to ``(center_x*W + eye_dist*W/2, eye_y*H)`` (defaults: ISO/IEC 19794-5 token
    frontal geometry, 600x800, eyes at y=360, 150 px apart). The similarity transform is
    fitted on the two eye centres only, so they land exactly. Returns ``(aligned, M)`` where
    ``M`` (2x3) maps input pixel coordinates to output ones (``apply_transform(M, pts)``).
    """
    from madpad.io import as_rgb_uint8

    img = as_rgb_uint8(image)
    le, re = eye_centres(landmarks)
    if np.allclose(le, re):
        raise ValueError("the two eye centres coincide; cannot align")
    dst = portrait_eye_targets(size=size, eye_y=eye_y, eye_dist=eye_dist, center_x=center_x)
    M = similarity_transform(np.array([le, re]), dst)
    out = warp(img, M, _check_size(size), border=border, border_value=border_value, interpolation=interpolation)
    return out, M


def arcface_template(size: int = 112) -> np.ndarray:
    """:data:`ARCFACE_TEMPLATE` scaled to a ``size`` x ``size`` crop (same relative geometry)."""
    return ARCFACE_TEMPLATE * (float(size) / 112.0)


def align_arcface(image: np.ndarray, landmarks5: np.ndarray, *, size: int = 112, return_matrix: bool = False,
                  border: str = "constant"):
    """Five-point similarity alignment onto the ArcFace template (``size`` x ``size``, 112 by default).

    ``landmarks5`` may also be 68 or mesh points (converted). Returns the aligned RGB crop, or
    ``(crop, M)`` with ``return_matrix=True``.
    """
    from madpad.io import as_rgb_uint8

    img = as_rgb_uint8(image)
    lm5 = to_landmarks5(landmarks5)
    if int(size) < 16:
        raise ValueError(f"size must be at least 16 pixels; got {size}")
    M = similarity_transform(lm5, arcface_template(int(size)))
    out = warp(img, M, (int(size), int(size)), border=border)
    return (out, M) if return_matrix else out


def _check_size(size) -> tuple[int, int]:
    try:
        w, h = (int(size[0]), int(size[1]))
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"size must be (width, height); got {size!r}") from None
    if w < 8 or h < 8:
        raise ValueError(f"size must be at least 8x8 pixels; got {size!r}")
    return w, h

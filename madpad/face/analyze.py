"""Find, select and landmark the face of one image, with a per-image status instead of a crash."""

from __future__ import annotations

import numpy as np

from madpad.errors import (
    FaceNotFoundError,
    ImageReadError,
    MissingDependencyError,
    UsageError,
)
from madpad.face.types import FaceAnalysis, FaceDetection, MultipleFacesError

POLICIES = ("largest", "most_central", "highest_score", "error_if_multiple")


def select_face(detections: list[FaceDetection], policy: str = "largest", *, image_shape=None) -> FaceDetection:
    """Pick one face from ``detections``.

    Policies: ``"largest"`` (box area; default), ``"most_central"`` (box centre nearest the
    image centre; needs ``image_shape``), ``"highest_score"``, ``"error_if_multiple"`` (the
    only face, else :class:`MultipleFacesError`). Raises :class:`FaceNotFoundError` when
    ``detections`` is empty. Ties keep the detector's order.
    """
    if policy not in POLICIES:
        raise ValueError(f"face selection policy must be one of {list(POLICIES)}; got {policy!r}")
    dets = list(detections)
    if not dets:
        raise FaceNotFoundError("no face detected")
    if len(dets) == 1:
        return dets[0]
    if policy == "error_if_multiple":
        raise MultipleFacesError(f"{len(dets)} faces detected and the policy is 'error_if_multiple'")
    if policy == "largest":
        return max(dets, key=lambda d: d.area)  # max keeps the first of equal values
    if policy == "highest_score":
        return max(dets, key=lambda d: d.score)
    if image_shape is None:
        raise ValueError("policy 'most_central' needs image_shape=(H, W)")
    h, w = image_shape[:2]
    c = np.array([w / 2.0, h / 2.0])
    return min(dets, key=lambda d: float(np.hypot(*(d.center - c))))


#: Largest roll (angle of the inter-eye line from the horizontal, degrees) of an upright face.
MAX_ROLL_DEGREES = 45.0


def landmarks5_of(points) -> np.ndarray | None:
    """The five points (:data:`~madpad.face.types.LANDMARKS5_NAMES` order) of a 5-point set or of
    dlib's 68-point scheme (eye centres, nose tip, mouth corners); None for other schemes."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        return None
    if pts.shape[0] == 5:
        return pts
    if pts.shape[0] == 68:
        return np.array([pts[36:42].mean(axis=0), pts[42:48].mean(axis=0), pts[30], pts[48], pts[54]])
    return None


def upright_problem(points, *, max_roll: float = MAX_ROLL_DEGREES) -> str | None:
    """Why the face with these landmarks is not an upright face, or None when it is.

    ``points``: five points in :data:`~madpad.face.types.LANDMARKS5_NAMES` order or dlib's 68.
    Upright means: the image-left eye is left of the image-right eye and the line through the eyes
    is within ``max_roll`` degrees of the horizontal (a face turned by 90 or 180 degrees, or an
    EXIF orientation that contradicts the pixels, fails this), and the mouth lies below the eyes,
    at least a quarter of the inter-eye distance along the face's vertical axis. Unknown
    landmark schemes are not judged (None).
    """
    lm = landmarks5_of(points)
    if lm is None or not np.all(np.isfinite(lm)):
        return None
    eye_l, eye_r, _nose, mouth_l, mouth_r = lm
    d = eye_r - eye_l
    iod = float(np.hypot(*d))
    if iod <= 1e-6:
        return "face not upright: both eyes at the same point"
    roll = float(np.degrees(np.arctan2(d[1], d[0])))
    if abs(roll) > max_roll:
        return (f"face not upright: the eye line is rotated by {roll:.0f} degrees (at most {max_roll:.0f} "
                "accepted); the image is turned or its EXIF orientation is wrong")
    down = np.array([-d[1], d[0]]) / iod  # unit vector from the eye line towards the chin
    drop = float(((mouth_l + mouth_r) / 2.0 - (eye_l + eye_r) / 2.0) @ down) / iod
    if drop < 0.25:
        return (f"face not upright: the mouth is not below the eyes (mouth-to-eye distance {drop:.2f} x the "
                "inter-eye distance); the image is upside down or the landmarks are implausible")
    return None


def _resolve(component, getter, kind: str):
    if component is None:
        return None
    if isinstance(component, str):
        return getter(component)
    if isinstance(component, dict):
        params = dict(component)
        name = params.pop("name", None)
        if not name:
            raise ValueError(f"a {kind} given as a dict needs a 'name' key; got {component!r}")
        return getter(name, **params)
    return component


def resolve_detector(detector):
    """A detector object from a name, a ``{"name": ..., **params}`` dict or an object."""
    from madpad.face.detectors import get_detector

    return _resolve(detector, get_detector, "detector")


def resolve_landmarker(landmarker):
    """A landmarker object from a name, a dict or an object (None stays None)."""
    from madpad.face.landmarks import get_landmarker

    return _resolve(landmarker, get_landmarker, "landmarker")


def analyze_face(image, *, detector="dlib_hog", landmarker="dlib68", policy: str = "largest",
                 keep_image: bool = False, check_upright: bool = False) -> FaceAnalysis:
    """Detect the faces of ``image`` (array or path), select one, and find its landmarks.

    ``detector``/``landmarker``: a registered name, a ``{"name": ..., **params}`` dict or
    an object; ``landmarker=None`` keeps only the detector's five points (the detector must
    give them, e.g. ``mtcnn``). Never raises for per-image problems: the returned
    :class:`FaceAnalysis` has ``status`` ``"unreadable"`` (file missing/undecodable),
    ``"no_face"``, ``"multiple_faces"`` (policy ``"error_if_multiple"`` only) or
    ``"failed"`` (the detector or landmarker raised), with ``error`` saying why.
    Configuration errors (unknown names, bad policy, missing package or model file) raise. ``keep_image=True`` stores the decoded RGB
    image in ``analysis.image``. ``check_upright=True``: a face whose landmarks are not those of
    an upright face (:func:`upright_problem`: turned by 90/180 degrees, mouth above the eyes)
    gets status ``"failed"`` with the reason (off by default: FR embedding aligns any roll, and
    T-shirt scenes hold turned printed faces on purpose; the morph generators always check). ``detection`` (its box) is the face used and
    ``n_faces`` says whether others were present.
    """
    from madpad.io import as_rgb_uint8

    if policy not in POLICIES:
        raise ValueError(f"face selection policy must be one of {list(POLICIES)}; got {policy!r}")
    det = resolve_detector(detector)
    lmk = resolve_landmarker(landmarker)
    try:
        img = as_rgb_uint8(image)
    except ImageReadError as exc:
        return FaceAnalysis("unreadable", error=str(exc))
    except ValueError as exc:
        return FaceAnalysis("unreadable", error=f"not an RGB image: {exc}")
    kept = img if keep_image else None
    where = f"{image}: " if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__") else ""
    try:
        dets = det.detect(img)
    except (MissingDependencyError, FileNotFoundError, UsageError):
        raise  # configuration problems are not per-image failures
    except Exception as exc:  # noqa: BLE001 - a per-image detector failure is a status, not a crash
        return FaceAnalysis("failed", error=where + f"detector {getattr(det, 'name', det)!s} failed: {exc}",
                            image_shape=img.shape, image=kept)
    try:
        chosen = select_face(dets, policy, image_shape=img.shape)
    except MultipleFacesError as exc:
        return FaceAnalysis("multiple_faces", error=where + str(exc), n_faces=len(dets),
                            image_shape=img.shape, image=kept)
    except FaceNotFoundError as exc:
        return FaceAnalysis("no_face", error=where + f"{exc} (detector {getattr(det, 'name', det)!s})",
                            n_faces=0, image_shape=img.shape, image=kept)
    landmarks = None
    if lmk is None:
        if chosen.landmarks5 is None:
            raise ValueError(f"landmarker=None needs a detector that gives five landmarks; "
                             f"{getattr(det, 'name', det)!s} gives none")
        lm5 = chosen.landmarks5
    else:
        try:
            landmarks = lmk.landmarks(img, chosen.box)
            lm5 = lmk.to_landmarks5(landmarks)
        except FaceNotFoundError as exc:
            return FaceAnalysis("no_face", detection=chosen, error=where + str(exc), n_faces=len(dets),
                                image_shape=img.shape, image=kept)
        except (MissingDependencyError, FileNotFoundError, UsageError):
            raise
        except Exception as exc:  # noqa: BLE001 - a per-image landmarker failure is a status, not a crash
            return FaceAnalysis("failed", detection=chosen, n_faces=len(dets), image_shape=img.shape, image=kept,
                                error=where + f"landmarker {getattr(lmk, 'name', lmk)!s} failed: {exc}")
    if check_upright:
        problem = upright_problem(landmarks if landmarks is not None and len(landmarks) == 68 else lm5)
        if problem:
            return FaceAnalysis("failed", detection=chosen, landmarks=landmarks, landmarks5=lm5, n_faces=len(dets),
                                image_shape=img.shape, image=kept, error=where + problem)
    return FaceAnalysis("ok", detection=chosen, landmarks=landmarks, landmarks5=lm5, n_faces=len(dets),
                        image_shape=img.shape, image=kept)

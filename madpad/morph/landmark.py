"""Landmark morphs (full-image and spliced), the classic morphs of the public benchmarks.

A morph of contributors A and B with weight ``alpha`` (**alpha = weight of B**: 0 gives A,
1 gives B, 0.5 the usual morph):

1. 68 landmarks on both images (``madpad.face``: detector + dlib 68-point landmarker; the
   detector runs on a copy downscaled to ``detect_max_side`` pixels, the landmarker at full
   resolution). Landmarks are cached per image content, so a source used in several pairs is
   analysed once.
2. Alignment (:class:`EyeAlignment`): a similarity transform of each image so the eye centres
   sit on a common target (by default the alpha-weighted mean of both eye positions, in A's
   frame; or B onto A; or a fixed ICAO-like portrait frame).
3. Target shape = ``(1 - alpha) * landmarks_A + alpha * landmarks_B``, plus fixed image-border
   points; Delaunay triangulation of the target shape.
4. Piecewise-affine warp of both images onto the target shape (:mod:`madpad.morph.warp`,
   one ``cv2.remap`` per image) and an alpha blend.

The spliced variant then pastes the morphed face region (convex hull of the 68 landmarks,
eroded and feathered) into contributor A's image warped to the same shape, after matching the
face colour to A's (Lab mean/std inside the face mask) and blending with a Laplacian pyramid
(or Poisson/``cv2.seamlessClone``), so hair, ears and background come from A alone and carry
no double contours.

Alignment, warp and blend are small swappable strategies (``set_alignment``, ``set_warp``,
``set_blend``, ``set_landmarks``), see :class:`LandmarkMorpher`. The registered morph methods
``landmark`` and ``landmark_spliced`` are :class:`LandmarkMorph` and :class:`SplicedLandmarkMorph`:
the same generator built from flat keyword options, with their command-line options.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from madpad.cli import size_arg
from madpad.errors import FaceNotFoundError, UsageError
from madpad.io import as_rgb_uint8
from madpad.morph import warp as W
from madpad.morph.base import MorphGenerator

LandmarkFn = Callable[[np.ndarray], np.ndarray]

#: Recorded in ``params()`` (and so in morph manifests); bump it when the output of the same
#: parameters changes, so that resumed jobs redo morphs made by an older implementation.
ALGORITHM_VERSION = 2


# --------------------------------------------------------------------------- landmarks
class FaceLandmarks:
    """Callable ``image -> (68, 2)`` landmarks through :mod:`madpad.face`.

    The detector runs on a copy of the image downscaled so that its longer side is at most
    ``detect_max_side`` (0 = full size; HOG detection time grows with the pixel count), the
    box is scaled back and the landmarker runs on the full-resolution image. Raises
    :class:`~madpad.errors.FaceNotFoundError` ("no face ...") when no face is found (or several
    with ``policy="error_if_multiple"``). Results are cached by image content (LRU of
    ``cache_size`` entries). Models are loaded on first use.
    """

    def __init__(self, *, detector: str = "dlib_hog", landmarker: str = "dlib68", policy: str = "largest",
                 detect_max_side: int = 640, cache_size: int = 256, detector_params: dict | None = None):
        from madpad.face import FACE_DETECTORS, LANDMARKERS, POLICIES

        FACE_DETECTORS.get(detector)  # unknown names fail here (a usage error), not per image later
        LANDMARKERS.get(landmarker)
        if policy not in POLICIES:
            raise UsageError(f"face selection policy must be one of {list(POLICIES)}; got {policy!r}")
        if int(detect_max_side) < 0:
            raise UsageError(f"detect_max_side must be >= 0 (0 = full size); got {detect_max_side}")
        self.detector_name = detector
        self.landmarker_name = landmarker
        self.policy = policy
        self.detect_max_side = int(detect_max_side)
        self.cache_size = int(cache_size)
        self.detector_params = dict(detector_params or {})
        self._detector = None
        self._landmarker = None
        self._cache: OrderedDict[str, tuple[np.ndarray, dict]] = OrderedDict()
        self.last_face: dict | None = None  # face used in the last image: {"box": [x0,y0,x1,y1], "n_faces": N}
        self.calls = 0  # landmark computations actually run (cache misses)

    def params(self) -> dict:
        return {"detector": self.detector_name, "landmarker": self.landmarker_name, "policy": self.policy,
                "detect_max_side": self.detect_max_side, **({"detector_params": self.detector_params}
                                                            if self.detector_params else {})}

    def load(self) -> FaceLandmarks:
        if self._detector is None:
            from madpad.face import get_detector, get_landmarker

            self._detector = get_detector(self.detector_name, **self.detector_params)
            self._landmarker = get_landmarker(self.landmarker_name)
        return self

    @staticmethod
    def _key(image: np.ndarray) -> str:
        import hashlib

        a = np.ascontiguousarray(image)
        h = hashlib.blake2b(digest_size=20)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(memoryview(a).cast("B"))
        return h.hexdigest()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        key = self._key(image)
        self.last_face = None
        if key in self._cache:
            self._cache.move_to_end(key)
            pts, self.last_face = self._cache[key]
            return pts
        pts = self._compute(image)
        self._cache[key] = (pts, self.last_face)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return pts

    def _compute(self, image: np.ndarray) -> np.ndarray:
        import cv2

        from madpad.face import select_face

        self.load()
        self.calls += 1
        h, w = image.shape[:2]
        scale = 1.0
        small = image
        if self.detect_max_side and max(h, w) > self.detect_max_side:
            scale = self.detect_max_side / float(max(h, w))
            small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA)
        detections = self._detector.detect(small)
        if not detections:
            raise FaceNotFoundError(f"no face detected (detector {self.detector_name})")
        det = select_face(detections, self.policy, image_shape=small.shape)
        if scale != 1.0:
            det = det.scaled(1.0 / scale)
        self.last_face = {"box": [round(float(v), 1) for v in det.box], "n_faces": len(detections)}
        pts = np.asarray(self._landmarker.landmarks(image, det.box), dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2 or not np.all(np.isfinite(pts)):
            raise FaceNotFoundError(f"landmarker {self.landmarker_name} returned no usable points")
        return pts


# --------------------------------------------------------------------------- alignment strategy
class Aligned:
    """Both sources in one frame: landmarks in frame coordinates, the frame ``size`` (W, H) and the
    2x3 affine matrices (source pixel -> frame pixel) that moved the landmarks there.

    ``anchor_border=True`` (alignments that keep the source's frame, e.g. ``weighted`` and ``a``):
    the frame's border is pinned to each source's own border, so the piecewise-affine warp moves the
    face and interpolates the background in between without ever sampling outside the source (no
    mirrored or smeared edges). ``False`` (``portrait``): the frame is a similarity crop of the source.
    The aligned images (``image_a``/``image_b``) are computed only when asked for: the morph composes
    alignment and warp and samples each original image once.
    """

    def __init__(self, source_a: np.ndarray, points_a: np.ndarray, source_b: np.ndarray, points_b: np.ndarray,
                 size: tuple[int, int], matrix_a: np.ndarray, matrix_b: np.ndarray, *, anchor_border: bool = False,
                 border_per_side: int = 3):
        self.source_a, self.source_b = source_a, source_b
        self.points_a = np.asarray(points_a, dtype=np.float64)
        self.points_b = np.asarray(points_b, dtype=np.float64)
        self.size = (int(size[0]), int(size[1]))
        self.matrix_a = np.asarray(matrix_a, dtype=np.float64)
        self.matrix_b = np.asarray(matrix_b, dtype=np.float64)
        self.anchor_border = bool(anchor_border)
        self.border_per_side = int(border_per_side)
        self._images: dict[str, np.ndarray] = {}

    def source_border(self, which: str) -> np.ndarray:
        """Where the frame's border points sample source ``which`` ("a" or "b")."""
        src = self.source_a if which == "a" else self.source_b
        M = self.matrix_a if which == "a" else self.matrix_b
        if self.anchor_border:
            h, w = src.shape[:2]
            return W.border_points((w, h), per_side=self.border_per_side)
        return W.apply_affine(W.invert_affine(M), W.border_points(self.size, per_side=self.border_per_side))

    def _image(self, which: str) -> np.ndarray:
        src = self.source_a if which == "a" else self.source_b
        M = self.matrix_a if which == "a" else self.matrix_b
        if not self.anchor_border:
            return W.warp_similarity(src, M, self.size)
        pts = self.points_a if which == "a" else self.points_b
        orig = W.apply_affine(W.invert_affine(M), pts)
        w, h = self.size
        inside = (pts[:, 0] > 0.5) & (pts[:, 0] < w - 1.5) & (pts[:, 1] > 0.5) & (pts[:, 1] < h - 1.5)
        dst = np.vstack([pts[inside], W.border_points(self.size, per_side=self.border_per_side)])
        plan = W.RemapWarpPlan(dst, W.delaunay_triangles(dst), self.size)
        return plan(src, np.vstack([orig[inside], self.source_border(which)]))

    @property
    def image_a(self) -> np.ndarray:
        if "a" not in self._images:
            self._images["a"] = self._image("a")
        return self._images["a"]

    @property
    def image_b(self) -> np.ndarray:
        if "b" not in self._images:
            self._images["b"] = self._image("b")
        return self._images["b"]


@dataclass
class EyeAlignment:
    """Bring both sources into one frame with a similarity transform each.

    ``mode``:
      * ``"weighted"`` (default): frame of A's size; eye targets = ``(1 - alpha) * eyes_A + alpha * eyes_B``
        (``fit="all"``: all landmarks fitted to the alpha-weighted mean shape). alpha 0 leaves A
        untouched, alpha 1 leaves B untouched (when the sizes agree).
      * ``"a"``: B is aligned onto A's eyes (or all landmarks); A is untouched.
      * ``"portrait"``: both onto fixed eye positions in a ``size`` frame (default A's size): eye
        line at ``eye_y * H``, inter-eye distance ``eye_dist * W``, centred horizontally.
    """

    mode: str = "weighted"
    fit: str = "eyes"
    size: tuple[int, int] | None = None
    eye_y: float = 0.45
    eye_dist: float = 0.25

    def __post_init__(self):
        if self.mode not in ("weighted", "a", "portrait"):
            raise UsageError(f"alignment mode must be one of weighted, a, portrait; got {self.mode!r}")
        if self.fit not in ("eyes", "all"):
            raise UsageError(f"alignment fit must be 'eyes' or 'all'; got {self.fit!r}")
        if not (0 < self.eye_y < 1 and 0 < self.eye_dist < 1):
            raise UsageError(f"eye_y and eye_dist are fractions in (0, 1); got {self.eye_y}, {self.eye_dist}")

    def portrait_eyes(self, size: tuple[int, int]) -> np.ndarray:
        w, h = size
        return np.array([[(0.5 - self.eye_dist / 2) * (w - 1) + 0.0, self.eye_y * (h - 1)],
                         [(0.5 + self.eye_dist / 2) * (w - 1) + 0.0, self.eye_y * (h - 1)]])

    def _key_points(self, pts: np.ndarray) -> np.ndarray:
        return W.eye_centres(pts) if self.fit == "eyes" else np.asarray(pts, dtype=np.float64)

    def __call__(self, image_a, points_a, image_b, points_b, *, alpha: float) -> Aligned:
        ha, wa = image_a.shape[:2]
        size = tuple(int(v) for v in (self.size or (wa, ha)))
        ident = np.array([[1.0, 0, 0], [0, 1.0, 0]])
        if self.mode == "portrait":
            target = self.portrait_eyes(size)
            Ma = W.similarity_from_points(W.eye_centres(points_a), target)
            Mb = W.similarity_from_points(W.eye_centres(points_b), target)
        elif self.mode == "a":
            Ma = ident
            Mb = W.similarity_from_points(self._key_points(points_b), self._key_points(points_a))
        else:
            ka, kb = self._key_points(points_a), self._key_points(points_b)
            hb, wb = image_b.shape[:2]
            same = (wa, ha) == (wb, hb) and size == (wa, ha)
            if not same:  # B's key points expressed in A's frame (scaled to A's width, centred vertically)
                s = size[0] / float(wb)
                kb_frame = kb * s + [0.0, (size[1] - hb * s) / 2.0]
            else:
                kb_frame = kb
            if alpha <= 0:
                target = ka
            elif alpha >= 1:
                target = kb_frame
            else:
                target = (1.0 - alpha) * ka + alpha * kb_frame
            Ma = ident if alpha <= 0 and size == (wa, ha) else W.similarity_from_points(ka, target)
            Mb = ident if alpha >= 1 and same else W.similarity_from_points(kb, target)
        return Aligned(image_a, W.apply_affine(Ma, points_a), image_b, W.apply_affine(Mb, points_b), size, Ma, Mb,
                       anchor_border=self.mode != "portrait")


# --------------------------------------------------------------------------- splice strategy
@dataclass
class SpliceSettings:
    """How the spliced variant pastes the morphed face into A's warped image.

    ``erode`` and ``feather`` are fractions of the inter-eye distance: the face hull is eroded by
    ``erode`` and its edge softened with a Gaussian of sigma ``feather``. ``colour``: ``"lab"`` (match
    Lab mean/std of the morphed face to A's face) or ``"none"``. ``blend``: ``"laplacian"``,
    ``"poisson"`` (cv2.seamlessClone) or ``"feather"`` (plain mask blend).
    """

    colour: str = "lab"
    blend: str = "laplacian"
    erode: float = 0.12
    feather: float = 0.08

    def __post_init__(self):
        if self.colour not in W.COLOUR_TRANSFERS:
            raise UsageError(f"colour must be one of {sorted(W.COLOUR_TRANSFERS)}; got {self.colour!r}")
        if self.blend not in W.BLENDS:
            raise UsageError(f"blend must be one of {sorted(W.BLENDS)}; got {self.blend!r}")
        if self.erode < 0 or self.feather < 0:
            raise UsageError(f"erode and feather must be >= 0; got {self.erode}, {self.feather}")


# --------------------------------------------------------------------------- the generator
@dataclass
class MorphResult:
    """Everything a landmark morph computed (for tests, benchmarks, contact sheets)."""

    image: np.ndarray
    aligned: Aligned
    target_points: np.ndarray
    triangles: np.ndarray
    warped_a: np.ndarray
    warped_b: np.ndarray
    mask: np.ndarray | None = None
    timings: dict = field(default_factory=dict)


class LandmarkMorpher(MorphGenerator):
    """Landmark morph generator (``spliced=False``: full image; ``True``: spliced).

    ``morph(image_a, image_b, *, alpha=0.5, seed=0) -> RGB uint8`` (alpha = weight of B; the
    seed is accepted for interface compatibility: the method is deterministic). Raises
    :class:`~madpad.errors.FaceNotFoundError` when either source has no usable face.

    Strategies (swap with the ``set_*`` methods): ``landmarks(image) -> (K, 2)``;
    ``alignment(image_a, pts_a, image_b, pts_b, *, alpha) -> Aligned``; ``warp`` = a plan factory
    ``(dst_points, triangles, size) -> (image, src_points) -> image``; ``blend(a, b, alpha)`` for the
    full morph.
    """

    #: reject a contributor whose 68 landmarks say the face is turned or implausible (a garbage morph)
    check_upright: ClassVar[bool] = True

    def __init__(self, *, spliced: bool = False, landmarks: LandmarkFn | None = None,
                 alignment: Callable[..., Aligned] | None = None, warp: str = "remap",
                 border_per_side: int = 3, splice: SpliceSettings | None = None):
        self.spliced = bool(spliced)
        self.landmarks: LandmarkFn = landmarks if landmarks is not None else FaceLandmarks()
        self.alignment = alignment if alignment is not None else EyeAlignment()
        self.warp_name = warp
        self.warp_factory = W.get_warp(warp)
        self.blend = W.alpha_blend
        if border_per_side < 2:
            raise UsageError(f"border_per_side must be >= 2; got {border_per_side}")
        self.border_per_side = int(border_per_side)
        self.splice = splice if splice is not None else SpliceSettings()
        self.last_faces: dict = {}  # set by morph_details: the face used per contributor ("a", "b")

    # strategy setters -----------------------------------------------------------------
    def set_landmarks(self, fn: LandmarkFn) -> LandmarkMorpher:
        self.landmarks = fn
        return self

    def set_alignment(self, fn: Callable[..., Aligned]) -> LandmarkMorpher:
        self.alignment = fn
        return self

    def set_warp(self, name_or_factory) -> LandmarkMorpher:
        if isinstance(name_or_factory, str):
            self.warp_name, self.warp_factory = name_or_factory, W.get_warp(name_or_factory)
        else:
            self.warp_name = getattr(name_or_factory, "__name__", "custom")
            self.warp_factory = name_or_factory
        return self

    def set_blend(self, fn: Callable[[np.ndarray, np.ndarray, float], np.ndarray]) -> LandmarkMorpher:
        self.blend = fn
        return self

    # interface -------------------------------------------------------------------------
    @property
    def method(self) -> str:
        return "landmark_spliced" if self.spliced else "landmark"

    def params(self) -> dict:
        p: dict[str, Any] = {"method": self.method, "version": ALGORITHM_VERSION, "warp": self.warp_name,
                             "border_per_side": self.border_per_side,
                             "blend": getattr(self.blend, "__name__", "custom")}
        al = self.alignment
        p["alignment"] = asdict(al) if isinstance(al, EyeAlignment) else getattr(al, "__name__", "custom")
        lm = self.landmarks
        p["landmarks"] = lm.params() if hasattr(lm, "params") else getattr(lm, "__name__", "custom")
        if self.spliced:
            p["splice"] = asdict(self.splice)
        return p

    def morph(self, image_a, image_b, *, alpha: float = 0.5, seed: int = 0) -> np.ndarray:
        return self.morph_details(image_a, image_b, alpha=alpha).image

    def morph_details(self, image_a, image_b, *, alpha: float = 0.5) -> MorphResult:
        import time

        a = as_rgb_uint8(image_a, name="image_a")
        b = as_rgb_uint8(image_b, name="image_b")
        t0 = time.perf_counter()
        pa, pb = self.contributor_points(a, b)
        t1 = time.perf_counter()
        res = self.morph_from_landmarks(a, pa, b, pb, alpha=alpha)
        res.timings["landmarks"] = t1 - t0
        return res

    def contributor_points(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks of contributors A and B; a contributor whose face is not found, or (with
        ``check_upright``) is turned or implausible, raises FaceNotFoundError naming it."""
        from madpad.face import upright_problem

        self.last_faces = {}  # contributor -> {"box", "n_faces"} of the face used (when the landmarker says)
        points = {}
        for who, img in (("A", a), ("B", b)):
            try:
                points[who] = self.landmarks(img)
            except FaceNotFoundError as exc:
                raise FaceNotFoundError(f"contributor {who}: {exc}") from None
            if getattr(self.landmarks, "last_face", None):
                self.last_faces[who.lower()] = dict(self.landmarks.last_face)
            problem = upright_problem(points[who]) if self.check_upright else None
            if problem:  # a turned or implausible face gives a garbage morph
                raise FaceNotFoundError(f"contributor {who}: {problem}")
        return points["A"], points["B"]

    def morph_from_landmarks(self, image_a: np.ndarray, points_a: np.ndarray, image_b: np.ndarray,
                             points_b: np.ndarray, *, alpha: float = 0.5) -> MorphResult:
        """The morph given both sources' landmarks (same point scheme, same order)."""
        import time

        alpha = float(alpha)
        if not 0.0 <= alpha <= 1.0:
            raise UsageError(f"alpha must be in [0, 1]; got {alpha}")
        pa = np.asarray(points_a, dtype=np.float64)
        pb = np.asarray(points_b, dtype=np.float64)
        if pa.shape != pb.shape:
            raise ValueError(f"landmark sets differ in shape: {pa.shape} vs {pb.shape}")
        t0 = time.perf_counter()
        al = self.alignment(image_a, pa, image_b, pb, alpha=alpha)
        size = al.size
        w, h = size
        if alpha <= 0:
            target = al.points_a.copy()
        elif alpha >= 1:
            target = al.points_b.copy()
        else:
            target = (1.0 - alpha) * al.points_a + alpha * al.points_b
        # landmarks outside the frame (after alignment) cannot be vertices: drop them in all sets
        inside = ((target[:, 0] > 0.5) & (target[:, 0] < w - 1.5) & (target[:, 1] > 0.5) & (target[:, 1] < h - 1.5))
        border = W.border_points(size, per_side=self.border_per_side)
        dst = np.vstack([target[inside], border])
        tri = W.delaunay_triangles(dst)
        plan = self.warp_factory(dst, tri, size)
        # target landmarks <-> each source's original landmarks, frame border <-> the source's border
        # (or, for a portrait crop, the frame border mapped back into the source): the original image
        # is resampled once, alignment included
        al.border_per_side = self.border_per_side
        src_a = np.vstack([pa[inside], al.source_border("a")])
        src_b = np.vstack([pb[inside], al.source_border("b")])
        wa = plan(image_a, src_a)
        wb = plan(image_b, src_b)
        t1 = time.perf_counter()
        full = self.blend(wa, wb, alpha)
        mask = None
        if self.spliced:
            out, mask = self._splice(full, wa, target, inside)
        else:
            out = full
        t2 = time.perf_counter()
        return MorphResult(out, al, target, tri, wa, wb, mask,
                           {"align_warp": t1 - t0, "blend": t2 - t1})

    def _splice(self, morphed: np.ndarray, warped_a: np.ndarray, target: np.ndarray, inside: np.ndarray):
        s = self.splice
        h, w = morphed.shape[:2]
        eyes = W.eye_centres(target)
        iod = float(np.linalg.norm(eyes[1] - eyes[0]))
        pts = target[inside]
        # work on the face's bounding box only (plus room for the feather and the pyramid)
        pad = int(np.ceil(4 * s.feather * iod)) + 64
        x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int) - pad, 0)
        x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + pad + 1, [w, h])
        box = (slice(y0, y1), slice(x0, x1))
        hull = W.polygon_mask(pts - [x0, y0], (x1 - x0, y1 - y0))
        core = W.feather_mask(hull, erode_px=s.erode * iod, blur_px=0)
        soft = W.feather_mask(hull, erode_px=s.erode * iod, blur_px=s.feather * iod)
        fg, bg = morphed[box], warped_a[box]
        transfer = W.COLOUR_TRANSFERS[s.colour]
        if transfer is not None:
            fg = transfer(fg, bg, core > 0.5)
        out = np.array(warped_a, copy=True)
        out[box] = W.BLENDS[s.blend](fg, bg, core if s.blend == "poisson" else soft)
        mask = np.zeros((h, w), dtype=np.float32)
        mask[box] = soft
        return out, mask


# --------------------------------------------------------------------------- registered methods
#: Detector parameters used when none are given (per detector name).
DEFAULT_DETECTOR_PARAMS = {"dlib_hog": {"upsample": 0}}


class LandmarkMorph(LandmarkMorpher):
    """Morph method ``landmark``: the full-image landmark morph from flat keyword options.

    ``detector``/``landmarker``/``face_policy``/``detect_max_side``/``detector_params``: the face
    analysis (:class:`FaceLandmarks`; ``landmarks=`` replaces it with any ``image -> (K, 2)``
    callable); ``align``/``align_fit``/``size``/``eye_y``/``eye_dist``: :class:`EyeAlignment`;
    ``warp``, ``border_per_side``. ``colour``/``blend``/``erode``/``feather`` (:class:`SpliceSettings`)
    apply to :class:`SplicedLandmarkMorph` only.
    """

    name = "landmark"
    _SPLICED: ClassVar[bool] = False

    def __init__(self, *, detector: str = "dlib_hog", landmarker: str = "dlib68", face_policy: str = "largest",
                 detect_max_side: int = 640, detector_params: dict | None = None, align: str = "weighted",
                 align_fit: str = "eyes", size: tuple[int, int] | None = None, eye_y: float = 0.45,
                 eye_dist: float = 0.25, warp: str = "remap", border_per_side: int = 3,
                 landmarks: LandmarkFn | None = None, colour: str | None = None, blend: str | None = None,
                 erode: float | None = None, feather: float | None = None):
        splice = {k: v for k, v in (("colour", colour), ("blend", blend), ("erode", erode), ("feather", feather))
                  if v is not None}
        if splice and not self._SPLICED:
            raise UsageError(f"'{next(iter(splice))}' applies to landmark_spliced only")
        if detector_params is None:
            # morph sources are portraits (face >= ~1/6 of the image side): no HOG upsampling needed
            detector_params = dict(DEFAULT_DETECTOR_PARAMS.get(detector, {}))
        lm = landmarks if landmarks is not None else FaceLandmarks(
            detector=detector, landmarker=landmarker, policy=face_policy, detect_max_side=detect_max_side,
            detector_params=detector_params)
        super().__init__(
            spliced=self._SPLICED, landmarks=lm,
            alignment=EyeAlignment(mode=align, fit=align_fit, size=size, eye_y=eye_y, eye_dist=eye_dist),
            warp=warp, border_per_side=border_per_side, splice=SpliceSettings(**splice))

    @classmethod
    def add_cli_arguments(cls, group) -> None:
        _add_common(group)

    @classmethod
    def from_cli(cls, args) -> LandmarkMorph:
        return cls(**_common_params(args))


class SplicedLandmarkMorph(LandmarkMorph):
    """Morph method ``landmark_spliced``: the morphed face region pasted into contributor A's warped
    image (options of :class:`LandmarkMorph` plus ``colour``, ``blend``, ``erode``, ``feather``)."""

    name = "landmark_spliced"
    _SPLICED = True

    @classmethod
    def add_cli_arguments(cls, group) -> None:
        _add_common(group)
        group.add_argument("--colour", default="lab", choices=sorted(W.COLOUR_TRANSFERS),
                           help="colour correction of the pasted face (default lab)")
        group.add_argument("--blend", default="laplacian", choices=sorted(W.BLENDS),
                           help="how the face is blended into A's image (default laplacian)")
        group.add_argument("--erode", type=float, default=0.12, help="face-mask erosion / inter-eye distance")
        group.add_argument("--feather", type=float, default=0.08, help="face-mask feather sigma / inter-eye distance")

    @classmethod
    def from_cli(cls, args) -> SplicedLandmarkMorph:
        return cls(**_common_params(args), colour=args.colour, blend=args.blend, erode=args.erode,
                   feather=args.feather)


def make_landmark(**params) -> LandmarkMorph:
    """Full-image landmark morph (see :class:`LandmarkMorph` for the parameters)."""
    return LandmarkMorph(**params)


def make_landmark_spliced(**params) -> SplicedLandmarkMorph:
    """Spliced landmark morph: morphed face pasted into contributor A's warped image."""
    return SplicedLandmarkMorph(**params)


# --------------------------------------------------------------------------- CLI hooks
_parse_size = size_arg(16)


def _add_common(group) -> None:
    group.add_argument("--detector", default="dlib_hog", help="face detector name (madpad.face; default dlib_hog)")
    group.add_argument("--landmarker", default="dlib68", help="68-point landmarker name (default dlib68)")
    group.add_argument("--face-policy", default="largest", help="which face when several are found (default largest)")
    group.add_argument("--detect-max-side", type=int, default=640,
                       help="run the detector on a copy with this longer side (0 = full size; default 640)")
    group.add_argument("--detector-set", action="append", default=None, metavar="KEY=VALUE",
                       help="detector parameter (repeatable), e.g. upsample=1 for small faces "
                            "(default for dlib_hog: upsample=0)")
    group.add_argument("--align", default="weighted", choices=["weighted", "a", "portrait"],
                       help="alignment: alpha-weighted mean eye position (default), B onto A, or fixed portrait")
    group.add_argument("--align-fit", default="eyes", choices=["eyes", "all"],
                       help="fit the similarity on the eye centres (default) or all landmarks")
    group.add_argument("--portrait-size", type=_parse_size, default=None, metavar="WxH",
                       help="output frame for --align portrait (default: contributor A's size)")
    group.add_argument("--eye-y", type=float, default=0.45, help="portrait: eye line height / H (default 0.45)")
    group.add_argument("--eye-dist", type=float, default=0.25, help="portrait: inter-eye distance / W (default 0.25)")
    group.add_argument("--warp", default="remap", choices=sorted(W.WARPS),
                       help="piecewise-affine warp implementation (default remap)")
    group.add_argument("--border-points", type=int, default=3, help="fixed points per image side (default 3)")


def _common_params(args) -> dict:
    from madpad.cli import parse_set_items

    det_params = parse_set_items(args.detector_set) if args.detector_set else None
    return {"detector": args.detector, "landmarker": args.landmarker, "face_policy": args.face_policy,
            "detect_max_side": args.detect_max_side, "detector_params": det_params, "align": args.align,
            "align_fit": args.align_fit, "size": args.portrait_size, "eye_y": args.eye_y, "eye_dist": args.eye_dist,
            "warp": args.warp, "border_per_side": args.border_points}


__all__ = [
    "Aligned",
    "EyeAlignment",
    "FaceLandmarks",
    "LandmarkMorph",
    "LandmarkMorpher",
    "MorphResult",
    "SpliceSettings",
    "SplicedLandmarkMorph",
    "make_landmark",
    "make_landmark_spliced",
]

"""Differential cues beyond one FR distance, expression-robust comparison and single-image cues.

Bona fide D-MAD pairs at a gate differ in expression (a neutral passport photo, a smiling
traveller), and a broad smile moves every FR embedding about as far as a morph does. The cues here
are chosen to be moved by morphing but little by expression:

* **landmark displacement** (:func:`landmark_displacement`): the 68 dlib landmarks of the live
  capture are mapped onto the suspect's by the similarity (scale, roll, shift) fitted on the stable
  points (eye corners, nose bridge); the displacement of the rigid points (brows, eyes, nose, upper
  jaw; not mouth, lips or cheeks, which a smile moves) in units of the inter-ocular distance, per
  region, plus differences of scale-free ratios (eye distance / nose length, face width at the eyes,
  nose width, eye width, brow height). A morph's geometry lies between its contributors', so it
  differs from either one.
* **upper-face FR comparison** (:func:`mask_lower_face`): the FR embedding of the face with the
  region below the nose (mouth, lips, chin, lower cheeks) replaced by a flat fill of the face's own
  median colour, on both images, before the FR network; the alignment still uses the landmarks of
  the untouched face. ``upper_cos`` = 1 - cosine of the two upper-face embeddings.
* **single-image (S-MAD) cues of the suspect** (:func:`region_cues`): statistics that compare
  regions of the *same* image (inside the face hull vs a ring outside it: hair, ears, background;
  and a band on the hull border), so that the file history of the whole image (camera JPEG grid,
  resampling) cancels: Laplacian energy ratio, luma and chroma noise-residual ratios, noise and
  gradient of the hull-border band (blending seams), and the strongest secondary peak of the
  high-pass autocorrelation at 3-8 px (blending ghosts / double edges). Computed at a fixed
  scale (inter-ocular distance :data:`CANONICAL_IOD` px).
* **demorphing** (:mod:`madpad.mad.demorph`): the live capture, warped onto the suspect's
  landmarks, is taken out of the suspect (``D = (S - alpha L) / (1 - alpha)``, alpha in
  :data:`~madpad.mad.demorph.DEMORPH_ALPHAS`); for a morph ``D`` shows the accomplice, for a bona
  fide photo the traveller again. Blocks ``demorph_diff`` (FR(D) - FR(live) per alpha) and
  ``demorph_cos`` (1 - cosine per alpha); :class:`DemorphDistanceDetector` is the untrained
  ``1 - cos(FR(D), FR(live))``.

:class:`CueExtractor` computes everything for one image from one face analysis and caches it
(:class:`~madpad.mad.cache.FeatureCache`); :class:`CueDetector` builds pair features from the blocks
named in ``features`` (:data:`CUE_BLOCKS`) and trains the classifier of
:class:`~madpad.mad.baselines.EmbeddingClassifierDetector` on them (same fitting, ``C="auto"``,
checkpoint format and per-pair statuses). :class:`UpperFaceDistanceDetector` is the untrained
``upper_cos`` distance. Higher score = more likely a morph.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from madpad.errors import FaceNotFoundError
from madpad.mad.base import Pair, as_pairs, read_header, write_header
from madpad.mad.baselines import (
    EMBEDDING_PAIR_BLOCKS,
    EmbeddingClassifierDetector,
    EmbeddingDistanceDetector,
    ScoreResult,
    embedding_pair_block,
)
from madpad.mad.cache import FeatureCache
from madpad.mad.features import (
    TEXTURE_DIM,
    FaceFeatureExtractor,
    embed_analysed,
    texture_features,
)

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- landmark geometry (dlib 68)
#: points that neither expression nor a smile moves much: eye corners and the nose bridge
STABLE_POINTS = (36, 39, 42, 45, 27, 28, 29, 30)
#: rigid regions whose displacement is measured (mouth, lips and cheeks are left out: a smile moves them)
RIGID_REGIONS = {
    "brows": tuple(range(17, 27)),
    "eyes": tuple(range(36, 48)),
    "nose": tuple(range(27, 36)),
    "jaw_upper": (0, 1, 2, 3, 13, 14, 15, 16),
}
RIGID_POINTS = tuple(sorted({i for r in RIGID_REGIONS.values() for i in r}))
#: scale-free ratios of one face (see :func:`landmark_ratios`)
RATIO_NAMES = ("eye_distance/nose_length", "face_width_at_eyes/eye_distance", "nose_width/eye_distance",
               "eye_width/eye_distance", "brow_height/eye_distance")
LANDMARK_NAMES = tuple(f"displacement:{r}" for r in RIGID_REGIONS) + ("displacement:rms",) + tuple(
    f"|log ratio change|:{r}" for r in RATIO_NAMES)
LANDMARK_DIM = len(LANDMARK_NAMES)


def check_landmarks68(landmarks: Any, what: str) -> np.ndarray:
    """``landmarks`` as float64 (68, 2), or a ValueError naming ``what``."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
        raise ValueError(f"{what}: expected 68 finite (x, y) landmarks (dlib68); got shape {lm.shape}")
    return lm


def eye_distance(landmarks68: np.ndarray) -> float:
    """Distance between the two eye centres (mean of each eye's six points)."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    return float(np.hypot(*(lm[42:48].mean(0) - lm[36:42].mean(0))))


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity (rotation + uniform scale + shift; no reflection) mapping the points
    ``src`` (n, 2) onto ``dst`` (n, 2): returns ``(A, t)`` with ``dst ~ src @ A.T + t``
    (:func:`madpad.face.align.similarity_transform`, Umeyama, split into its linear part and shift)."""
    from madpad.face.align import similarity_transform

    M = similarity_transform(src, dst)
    return M[:, :2], M[:, 2]


def landmark_ratios(landmarks68: np.ndarray) -> np.ndarray:
    """The :data:`RATIO_NAMES` ratios of one face (position, scale and roll free)."""
    lm = check_landmarks68(landmarks68, "landmark_ratios")
    iod = eye_distance(lm) or 1.0
    le, re = lm[36:42].mean(0), lm[42:48].mean(0)
    nose_len = float(np.hypot(*(lm[33] - lm[27]))) or 1.0
    face_w = float(np.hypot(*(lm[16] - lm[0])))
    nose_w = float(np.hypot(*(lm[35] - lm[31])))
    eye_w = 0.5 * (np.hypot(*(lm[39] - lm[36])) + np.hypot(*(lm[45] - lm[42])))
    brow = 0.5 * (np.hypot(*(lm[17:22].mean(0) - le)) + np.hypot(*(lm[22:27].mean(0) - re)))
    return np.array([iod / nose_len, face_w / iod, nose_w / iod, eye_w / iod, brow / iod])


def landmark_displacement(suspect68: np.ndarray, live68: np.ndarray) -> np.ndarray:
    """Geometric difference of two faces (:data:`LANDMARK_NAMES`, float64 (LANDMARK_DIM,)).

    The live capture's landmarks are mapped onto the suspect's by the similarity fitted on
    :data:`STABLE_POINTS`; then, in units of the suspect's inter-ocular distance, the mean
    displacement of each region of :data:`RIGID_REGIONS` and the RMS over all rigid points,
    followed by ``|log r_suspect - log r_live|`` for each of :func:`landmark_ratios`. Zero for a
    face against itself and against any similarity-transformed copy of itself.
    """
    s = check_landmarks68(suspect68, "suspect landmarks")
    live = check_landmarks68(live68, "live landmarks")
    A, t = fit_similarity(live[list(STABLE_POINTS)], s[list(STABLE_POINTS)])
    mapped = live @ A.T + t
    iod = eye_distance(s)
    if iod <= 0:
        raise ValueError("landmark_displacement: the suspect's eye centres coincide")
    d = np.hypot(*(mapped - s).T) / iod
    regions = [float(d[list(idx)].mean()) for idx in RIGID_REGIONS.values()]
    rms = float(np.sqrt((d[list(RIGID_POINTS)] ** 2).mean()))
    ratios = np.abs(np.log(landmark_ratios(s)) - np.log(landmark_ratios(live)))
    return np.array([*regions, rms, *ratios], dtype=np.float64)


# --------------------------------------------------------------------------- expression-robust FR input
#: the lower-face polygon: jaw from point 3 round the chin to 13, then the bottom of the nose (35 -> 31)
LOWER_FACE_POLYGON = (*range(3, 14), 35, 34, 33, 32, 31)


def mask_lower_face(image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
    """A copy of ``image`` with the lower face (mouth, lips, chin and lower cheeks: the polygon
    :data:`LOWER_FACE_POLYGON`, grown by 4 % of the inter-ocular distance) filled with the median
    colour of the face between the eyes and the nose tip. Fed to the FR network with the landmarks
    of the untouched image, the embedding no longer sees what a smile changes."""
    import cv2

    img = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    lm = check_landmarks68(landmarks68, "mask_lower_face")
    iod = eye_distance(lm)
    # reference colour: the box between the inner eye corners, from the nose bridge to the nose tip
    x0, x1 = sorted((lm[39, 0], lm[42, 0]))
    y0, y1 = sorted((lm[27, 1], lm[30, 1]))
    h, w = img.shape[:2]
    x0, x1 = int(np.clip(x0, 0, w - 1)), int(np.clip(x1, 1, w))
    y0, y1 = int(np.clip(y0, 0, h - 1)), int(np.clip(y1, 1, h))
    ref = img[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)].reshape(-1, 3)
    fill = np.median(ref, axis=0) if len(ref) else np.full(3, 128.0)
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.rint(lm[list(LOWER_FACE_POLYGON)]).astype(np.int32)], 1)
    grow = max(1, round(0.04 * iod))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    out = img.copy()
    out[mask.astype(bool)] = np.clip(np.rint(fill), 0, 255).astype(np.uint8)
    return out


# --------------------------------------------------------------------------- single-image cues
#: inter-ocular distance (px) at which :func:`region_cues` measures
CANONICAL_IOD = 64.0
#: smallest inter-ocular distance (px) the cue features accept
MIN_IOD = 8.0
REGION_CUE_NAMES = ("log laplacian energy inside/outside", "log noise inside/outside",
                    "log chroma noise inside/outside", "log noise border band/(inside, outside)",
                    "log gradient border band/inside", "ghost: max high-pass autocorrelation x, lag 3-8 px",
                    "ghost: max high-pass autocorrelation y, lag 3-8 px")
REGION_CUE_DIM = len(REGION_CUE_NAMES)


def face_hull_mask(shape: tuple[int, ...], landmarks68: np.ndarray) -> np.ndarray:
    """Boolean mask (H, W) of the convex hull of the landmarks (rounded to pixels)."""
    import cv2

    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.rint(landmarks68).astype(np.int32)), 1)
    return mask.astype(bool)


def face_regions(shape: tuple[int, int], landmarks68: np.ndarray, *, iod: float | None = None
                 ) -> dict[str, np.ndarray]:
    """Boolean masks (H, W) of an image of ``shape`` for :func:`region_cues`: ``inside`` (the hull
    of the 68 landmarks shrunk by 0.15 IOD), ``band`` (+-0.08 IOD around the hull border) and
    ``outside`` (a ring 0.3-0.9 IOD outside the hull: hair, ears, neck, background)."""
    import cv2

    lm = check_landmarks68(landmarks68, "face_regions")
    iod = eye_distance(lm) if iod is None else iod
    hull = face_hull_mask(shape, lm).astype(np.uint8)

    def grown(r):
        k = max(1, round(abs(r) * iod))
        el = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
        return (cv2.dilate(hull, el) if r > 0 else cv2.erode(hull, el)).astype(bool)

    return {"inside": grown(-0.15), "band": grown(0.08) & ~grown(-0.08), "outside": grown(0.9) & ~grown(0.3)}


def _ghost_peak(hp: np.ndarray, mask: np.ndarray, axis: int) -> float:
    """Largest normalised autocorrelation of ``hp`` inside ``mask`` at lags 3..8 px along ``axis``."""
    best = -1.0
    for lag in range(3, 9):
        a = hp[:-lag] if axis == 0 else hp[:, :-lag]
        b = hp[lag:] if axis == 0 else hp[:, lag:]
        m = (mask[:-lag] & mask[lag:]) if axis == 0 else (mask[:, :-lag] & mask[:, lag:])
        if m.sum() < 16:
            continue
        x, y = a[m], b[m]
        den = np.sqrt((x * x).sum() * (y * y).sum()) + 1e-9
        best = max(best, float((x * y).sum() / den))
    return best


def region_cues(image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
    """Single-image morphing cues (:data:`REGION_CUE_NAMES`, float64 (REGION_CUE_DIM,)) that
    compare regions of the same image (see the module docstring), measured after rescaling the
    image so that the inter-ocular distance is :data:`CANONICAL_IOD` px. A face whose inside is
    smoother than its surroundings (blending averages out noise and detail) gives negative
    inside/outside ratios; an unprocessed photo gives ratios near those of other photos."""
    import cv2

    img = np.asarray(image, dtype=np.uint8)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"region_cues needs an RGB image (H, W, 3); got shape {img.shape}")
    lm = check_landmarks68(landmarks68, "region_cues")
    iod = eye_distance(lm)
    if iod < MIN_IOD:
        raise ValueError(f"region_cues: inter-ocular distance {iod:.1f} px is too small (at least {MIN_IOD:g})")
    f = CANONICAL_IOD / iod
    # crop generously around the face first (a copy with reflected borders), then rescale
    c = lm.mean(0)
    half = 2.2 * iod
    x0, y0 = int(np.floor(c[0] - half)), int(np.floor(c[1] - half))
    x1, y1 = int(np.ceil(c[0] + half)), int(np.ceil(c[1] + half))
    h, w = img.shape[:2]
    pad = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
    src = cv2.copyMakeBorder(np.ascontiguousarray(img), *pad, cv2.BORDER_REFLECT_101) if any(pad) else img
    crop = src[y0 + pad[0]:y1 + pad[0], x0 + pad[2]:x1 + pad[2]]
    if abs(f - 1.0) > 0.02:  # (a near-1 resampling would only blur the noise being measured)
        cw, ch = round((x1 - x0) * f), round((y1 - y0) * f)
        crop = cv2.resize(crop, (cw, ch), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
    lmc = (lm - [x0, y0]) * (crop.shape[1] / (x1 - x0), crop.shape[0] / (y1 - y0))
    reg = face_regions(crop.shape, lmc, iod=eye_distance(lmc))
    ycc = cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    g = ycc[..., 0]
    lap = np.abs(cv2.Laplacian(g, cv2.CV_32F, ksize=3))
    resid = g - cv2.medianBlur(np.clip(g, 0, 255).astype(np.uint8), 3).astype(np.float32)
    cres = ycc[..., 1] - cv2.medianBlur(ycc[..., 1].astype(np.uint8), 3).astype(np.float32)
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
    grad = np.hypot(gx, gy)
    ins, out, band = reg["inside"], reg["outside"], reg["band"]

    def lr(a, b):
        return float(np.log((a + 1e-3) / (b + 1e-3)))

    n_in, n_out = resid[ins].std(), resid[out].std()
    hp = g - cv2.GaussianBlur(g, (0, 0), 1.5)
    return np.array([
        lr(lap[ins].mean(), lap[out].mean()),
        lr(n_in, n_out),
        lr(cres[ins].std(), cres[out].std()),
        lr(resid[band].std(), 0.5 * (n_in + n_out)),
        lr(grad[band].mean(), grad[ins].mean()),
        _ghost_peak(hp, ins, 1),
        _ghost_peak(hp, ins, 0),
    ], dtype=np.float64)


# --------------------------------------------------------------------------- per-image extractor
def cue_layout(embed_dim: int) -> dict[str, slice]:
    """Where each part sits in a :class:`CueExtractor` vector:
    embedding | upper-face embedding | 68 landmarks (x, y) | region cues | texture."""
    out, o = {}, 0
    for name, n in (("embedding", embed_dim), ("upper", embed_dim), ("landmarks", 136),
                    ("region", REGION_CUE_DIM), ("texture", TEXTURE_DIM)):
        out[name] = slice(o, o + n)
        o += n
    out["all"] = slice(0, o)
    return out


class CueExtractor(FaceFeatureExtractor):
    """Per-image vector for the cue detectors (:func:`cue_layout`), one face analysis per image:
    the FR embedding, the FR embedding of :func:`mask_lower_face`, the 68 landmarks (image pixels),
    :func:`region_cues` and the texture statistics of :func:`~madpad.mad.features.texture_features`.
    The embedder's landmarker must give 68 points (``dlib68``, the default). Statuses, caching and
    batching are those of :class:`~madpad.mad.features.FaceFeatureExtractor`."""

    VERSION = "cues-v2"

    def __init__(self, *, embedder: str = "dlib", embedder_params: dict | None = None, texture_size: int = 160):
        # texture and shape on: the base class then looks for no richer cached variant of itself
        super().__init__(embedder=embedder, embedder_params=embedder_params, texture=True,
                         texture_size=texture_size, shape=True)

    def _id(self, texture: bool, shape: bool) -> str:
        return f"{self.emb.id}|{self.VERSION}|texture={self.texture_size}"

    def layout(self) -> dict[str, slice]:
        return cue_layout(self.embed_dim)

    @property
    def demorph_id(self) -> str:
        """The id under which the demorphed suspects of pairs of these images are cached."""
        return self.id

    def one(self, image: Any) -> np.ndarray:
        from madpad.face import align_arcface

        emb = self.emb
        a, lm = analysed_with_68(emb, image)
        crop = align_arcface(a.image, a.landmarks5 if a.landmarks5 is not None else lm, size=self.texture_size)
        parts = [embed_analysed(emb, a.image, a), embed_analysed(emb, mask_lower_face(a.image, lm), a),
                 lm.ravel(), region_cues(a.image, lm), texture_features(crop)]
        return np.concatenate([np.asarray(p, dtype=np.float32) for p in parts])


def analysed_with_68(emb, image: Any):
    """The face analysis of ``image`` by embedder ``emb`` and its 68 landmarks (float64), for the
    cue and demorphing extractors; a face too small for them is a per-image problem (status
    ``no_face``), not a crash of the batch."""
    a = emb.analyze(image).raise_for_status()
    if a.landmarks is None or len(a.landmarks) != 68:
        raise ValueError("the cue detectors need a 68-point landmarker (embedder_params landmarker='dlib68')")
    lm = np.asarray(a.landmarks, dtype=np.float64)
    if eye_distance(lm) < MIN_IOD:
        raise FaceNotFoundError(f"face too small for the cue features ({eye_distance(lm):.1f} px between the "
                                f"eyes; at least {MIN_IOD:g} needed)")
    return a, lm


class DemorphExtractor(FaceFeatureExtractor):
    """Per-image vector of the untrained demorphing detector, one face analysis per image: the FR
    embedding and the 68 landmarks (image pixels), layout ``embedding | landmarks``. It does half
    the work of :class:`CueExtractor` (no upper-face embedding, region cues or texture); a row that
    the cue extractor of the same embedder has cached is cut from it, not recomputed, and the
    demorphed suspects are cached under the cue extractor's id (:attr:`demorph_id`), so
    ``demorph_distance`` and the ``demorph_*`` blocks of :class:`CueDetector` share them (both
    take the embedding and the landmarks from the same analysis)."""

    VERSION = "lm68-v1"

    def __init__(self, *, embedder: str = "dlib", embedder_params: dict | None = None, texture_size: int = 160):
        super().__init__(embedder=embedder, embedder_params=embedder_params, texture=False,
                         texture_size=texture_size, shape=False)
        self._cues = CueExtractor(embedder=embedder, embedder_params=embedder_params, texture_size=texture_size)

    @property
    def emb(self):
        return self._cues.emb

    def _id(self, texture: bool, shape: bool) -> str:
        return f"{self.emb.id}|{self.VERSION}"

    def layout(self) -> dict[str, slice]:
        d = self.embed_dim
        return {"embedding": slice(0, d), "landmarks": slice(d, d + 136), "all": slice(0, d + 136)}

    @property
    def demorph_id(self) -> str:
        return self._cues.id

    def _richer_variants(self):
        lay = self._cues.layout()
        return [(self._cues.id, lambda w: np.concatenate([w[lay["embedding"]], w[lay["landmarks"]]]))]

    def one(self, image: Any) -> np.ndarray:
        a, lm = analysed_with_68(self.emb, image)
        return np.concatenate([embed_analysed(self.emb, a.image, a), lm.ravel()]).astype(np.float32)


# --------------------------------------------------------------------------- pair features and detectors
#: pair-feature blocks of :class:`CueDetector` (suspect-only blocks: ``smad``, ``texture``)
CUE_BLOCKS = ("diff", "absdiff", "cos", "landmarks", "upper_cos", "upper_diff", "smad", "smad_diff", "texture",
              "texture_diff", "demorph_diff", "demorph_cos")
#: blocks computed from the demorphed suspect (one warp per pair, :mod:`madpad.mad.demorph`)
DEMORPH_BLOCKS = ("demorph_diff", "demorph_cos")
SUSPECT_ONLY_BLOCKS = ("smad", "texture")
#: blocks that need only the FR embedding and the 68 landmarks of each image (:class:`DemorphExtractor`)
LEAN_BLOCKS = (*EMBEDDING_PAIR_BLOCKS, "landmarks", *DEMORPH_BLOCKS)


def cue_pair_block(feature: str, s: np.ndarray, l: np.ndarray | None, lay: dict[str, slice],
                   demorphed: np.ndarray | None = None) -> np.ndarray:
    """One pair-feature block (n, k) from per-image :class:`CueExtractor` rows of the suspects
    ``s`` and the live captures ``l`` (None when only suspect blocks are asked for); the demorph
    blocks also need ``demorphed`` (n, n_alphas * dim), the embeddings of
    :class:`~madpad.mad.demorph.DemorphFeatures`."""
    def part(x, name):
        return x[:, lay[name]].astype(np.float64)

    if feature in DEMORPH_BLOCKS:
        if demorphed is None:
            raise ValueError(f"pair feature {feature!r} needs the demorphed embeddings")
        el = part(l, "embedding")
        dm = np.asarray(demorphed, dtype=np.float64).reshape(len(el), -1, el.shape[1])
        if feature == "demorph_diff":
            return (dm - el[:, None, :]).reshape(len(el), -1)
        return 1.0 - np.einsum("nkd,nd->nk", dm, el)

    if feature in EMBEDDING_PAIR_BLOCKS:
        return embedding_pair_block(feature, part(s, "embedding"), part(l, "embedding"))
    if feature == "upper_cos":
        return embedding_pair_block("cos", part(s, "upper"), part(l, "upper"))
    if feature == "upper_diff":
        return part(s, "upper") - part(l, "upper")
    if feature == "landmarks":
        ls, ll = part(s, "landmarks"), part(l, "landmarks")
        out = np.full((len(s), LANDMARK_DIM), np.nan)
        for i in range(len(s)):
            if np.all(np.isfinite(ls[i])) and np.all(np.isfinite(ll[i])):
                out[i] = landmark_displacement(ls[i].reshape(68, 2), ll[i].reshape(68, 2))
        return out
    if feature == "smad":
        return part(s, "region")
    if feature == "smad_diff":
        return part(s, "region") - part(l, "region")
    if feature == "texture":
        return part(s, "texture")
    if feature == "texture_diff":
        return part(s, "texture") - part(l, "texture")
    raise ValueError(f"not a cue pair feature: {feature!r}")


class CueDetector(EmbeddingClassifierDetector):
    """Trained D-MAD on the cue blocks of :data:`CUE_BLOCKS` (switch parts on and off with
    ``features``): ``diff``/``absdiff``/``cos`` of the full-face FR embeddings, ``landmarks``
    (:func:`landmark_displacement`), ``upper_cos``/``upper_diff`` (upper-face FR comparison),
    ``smad`` (:func:`region_cues` of the suspect), ``smad_diff``, ``texture``/``texture_diff``
    (texture statistics). Standardisation + ``classifier`` (``logreg`` | ``linear_svm`` |
    ``rbf_svm``; ``C="auto"`` picks C on the dev pairs, ``C="ensemble"`` averages several),
    fitting, checkpoint (``model.npz``, no pickle) and per-pair statuses as
    :class:`~madpad.mad.baselines.EmbeddingClassifierDetector`.
    The constructor is the base class's (every option of it applies, e.g. ``selection`` and the
    training-time augmentation); the registered names set ``features``, ``classifier`` and ``C``.
    Score: the decision value, higher = more likely a morph."""

    name = "dmad_cues"
    checkpoint_kind = "dmad_cues"
    feature_blocks = CUE_BLOCKS
    suspect_only_blocks = SUSPECT_ONLY_BLOCKS
    demorph_blocks = DEMORPH_BLOCKS

    def _extractor(self) -> CueExtractor | DemorphExtractor:
        """The per-image extractor: the lean :class:`DemorphExtractor` (FR embedding + 68 landmarks)
        when every block of ``features`` needs no more (:data:`LEAN_BLOCKS`), else :class:`CueExtractor`.
        Both give the same values for those blocks (the lean rows are cut from cached cue rows)."""
        if getattr(self, "_fx", None) is None:
            cls = DemorphExtractor if set(self.features) <= set(LEAN_BLOCKS) else CueExtractor
            self._fx = cls(embedder=self.embedder, embedder_params=self.embedder_params,
                           texture_size=self.texture_size)
        return self._fx

    def _checkpoint_extra(self) -> dict:
        # the demorphing settings the features were computed with; load warns when they differ from
        # today's (a checkpoint without them may predate the uncovered-frame fill)
        from madpad.mad.demorph import demorph_settings

        return {"demorph": demorph_settings(self.demorph_sharpness)} if set(self.features) & set(DEMORPH_BLOCKS) else {}

    @classmethod
    def load(cls, directory, header: dict | None = None, **overrides) -> CueDetector:
        from madpad.mad.demorph import demorph_settings

        head = header or read_header(directory)
        det = super().load(directory, head, **overrides)
        now = demorph_settings(det.demorph_sharpness)
        if set(det.features) & set(DEMORPH_BLOCKS) and head.get("demorph") != now:
            was = head.get("demorph", "not recorded, so possibly without the uncovered-frame fill")
            log.warning("%s: trained with other demorphing settings (%s; now %s): its scores use features a "
                        "little unlike those it learned; retrain it", directory, was, now)
        return det

    def feature_names(self) -> list[str]:
        """Name of every column of the pair-feature matrix."""
        d = self._extractor().embed_dim
        from madpad.mad.demorph import DEMORPH_ALPHAS

        names = {"cos": ["cos"], "upper_cos": ["upper_cos"], "landmarks": list(LANDMARK_NAMES),
                 "smad": list(REGION_CUE_NAMES), "smad_diff": [f"diff {n}" for n in REGION_CUE_NAMES],
                 "demorph_cos": [f"demorph_cos[alpha={a:g}]" for a in DEMORPH_ALPHAS],
                 "demorph_diff": [f"demorph_diff[alpha={a:g}][{i}]" for a in DEMORPH_ALPHAS for i in range(d)]}
        out = []
        for f in self.features:
            n = TEXTURE_DIM if f.startswith("texture") else d
            out += names.get(f, [f"{f}[{i}]" for i in range(n)])
        return out

    def pair_matrix(self, s: np.ndarray, l: np.ndarray | None, demorphed: np.ndarray | None = None) -> np.ndarray:
        lay = self._extractor().layout()
        return np.concatenate([cue_pair_block(f, s, l, lay, demorphed) for f in self.features], axis=1)

    def _features(self, pairs, cache):
        s, l, status, error = self._image_features(pairs, cache)
        demorphed = None
        if any(f in DEMORPH_BLOCKS for f in self.features):
            from madpad.mad.demorph import DEMORPH_ALPHAS

            demorphed = demorph_rows(self._extractor(), pairs, s, l, status, error, alphas=DEMORPH_ALPHAS,
                                     cache=cache if cache is not None else self.feature_cache, progress=self.progress,
                                     match_sharpness=self.demorph_sharpness)
        X = self.pair_matrix(s, l, demorphed)
        ok = np.array([st == "ok" for st in status], dtype=bool) & np.all(np.isfinite(X), axis=1)
        return X, ok, status, error


def demorph_rows(fx: CueExtractor | DemorphExtractor, pairs, s: np.ndarray, l: np.ndarray, status: list, error: list, *,
                 alphas, cache: FeatureCache, progress: bool = False, match_sharpness: bool | str = False) -> np.ndarray:
    """Embeddings of the demorphed suspects (n, len(alphas) * dim) of :class:`~madpad.mad.demorph.DemorphFeatures`
    (``match_sharpness``: its option) from the landmarks in the per-image rows ``s`` and ``l``;
    ``status``/``error`` of pairs whose demorphing fails are updated in place."""
    from madpad.mad.demorph import DemorphFeatures

    lay = fx.layout()
    res = DemorphFeatures(fx.emb, fx.demorph_id, match_sharpness=match_sharpness).many(
        pairs, s[:, lay["landmarks"]].reshape(-1, 68, 2), l[:, lay["landmarks"]].reshape(-1, 68, 2), alphas=alphas,
        cache=cache, progress=progress, ok=[st == "ok" for st in status])
    for i, st in enumerate(res.status):
        if status[i] == "ok" and st != "ok":
            status[i], error[i] = st, res.error[i]
    return res.features


class UpperFaceDistanceDetector(EmbeddingDistanceDetector):
    """Untrained, expression-robust D-MAD: ``1 - cosine`` of the upper-face FR embeddings
    (:func:`mask_lower_face` on both images). Higher = more likely a morph."""

    name = "upper_face_distance"
    checkpoint_kind = "upper_face_distance"

    def _extractor(self) -> CueExtractor:
        if getattr(self, "_fx", None) is None:
            self._fx = CueExtractor(embedder=self.embedder, embedder_params=self.embedder_params,
                                    texture_size=self.texture_size)
        return self._fx

    def score_pairs(self, pairs: Sequence[Pair], *, cache: FeatureCache | None = None) -> ScoreResult:
        pairs = as_pairs(pairs)
        s, l, status, error = self._image_features(pairs, cache)
        lay = self._extractor().layout()
        return ScoreResult(cue_pair_block("upper_cos", s, l, lay)[:, 0], status, error)

    def save(self, directory) -> Path:
        write_header(directory, detector=self.checkpoint_kind, config=self.get_config(), extra={
            "score": "1 - cosine similarity of upper-face FR embeddings (lower face masked); higher = more likely "
                     "a morph"})
        return Path(directory)


class DemorphDistanceDetector(UpperFaceDistanceDetector):
    """Untrained demorphing D-MAD: ``1 - cos(FR(D), FR(live))`` with ``D`` the suspect demorphed
    with the live capture at blend factor ``alpha`` (:mod:`madpad.mad.demorph`). A bona fide suspect
    demorphs back to the traveller; a morph to the accomplice. Higher = more likely a morph."""

    name = "demorph_distance"
    checkpoint_kind = "demorph_distance"

    def __init__(self, *, alpha: float = 0.5, embedder: str = "dlib", embedder_params: dict | None = None,
                 progress: bool = False, texture_size: int = 160, demorph_sharpness: bool | str = False):
        from madpad.mad.demorph import check_alpha, check_sharpness_mode

        super().__init__(embedder=embedder, embedder_params=embedder_params, progress=progress,
                         texture_size=texture_size)
        self.alpha = check_alpha(alpha)
        self.demorph_sharpness = check_sharpness_mode(demorph_sharpness)

    def _extractor(self) -> DemorphExtractor:
        if getattr(self, "_fx", None) is None:
            self._fx = DemorphExtractor(embedder=self.embedder, embedder_params=self.embedder_params,
                                        texture_size=self.texture_size)
        return self._fx

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha,
                **({"demorph_sharpness": self.demorph_sharpness} if self.demorph_sharpness else {})}

    def score_pairs(self, pairs: Sequence[Pair], *, cache: FeatureCache | None = None) -> ScoreResult:
        pairs = as_pairs(pairs)
        s, l, status, error = self._image_features(pairs, cache)
        dm = demorph_rows(self._extractor(), pairs, s, l, status, error, alphas=(self.alpha,),
                          cache=cache if cache is not None else self.feature_cache, progress=self.progress,
                          match_sharpness=self.demorph_sharpness)
        score = cue_pair_block("demorph_cos", s, l, self._extractor().layout(), dm)[:, 0]
        score[[st != "ok" for st in status]] = np.nan
        return ScoreResult(score, status, error)

    def save(self, directory) -> Path:
        write_header(directory, detector=self.checkpoint_kind, config=self.get_config(), extra={
            "score": f"1 - cosine similarity of the FR embeddings of the suspect demorphed with the live capture "
                     f"(alpha {self.alpha:g}) and of the live capture; higher = more likely a morph"})
        return Path(directory)

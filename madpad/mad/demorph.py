"""Demorphing: undo a morph with the live capture and compare what is left with the traveller.

A morph ``M`` of contributors A and B (blend factor ``alpha`` for A) is, where the warps agree,
``M ~ alpha * A' + (1 - alpha) * B'``. Given a trusted live capture of A, the suspect image can be
*demorphed*: the live capture is brought into the suspect's geometry and its share is removed,

    ``D = (S - alpha * L_w) / (1 - alpha)``,

so that ``D`` shows B (the accomplice) when the suspect is a morph, and the traveller again when
the suspect is a bona fide photo of them (``S ~ L_w`` gives ``D ~ S``). An FR comparison of ``D``
with the live capture then separates the two cases much further than the comparison of ``S`` with
the live capture, in which the morph still looks like A (Ferrara, Franco & Maltoni, "Face
demorphing", IEEE TIFS 2018; the differential idea here, our own implementation).

Steps of :func:`live_in_suspect_frame`:

1. the similarity (scale, roll, shift) fitted on the stable landmarks (eye corners and nose bridge,
   :data:`madpad.mad.cues.STABLE_POINTS`) maps the live capture onto the suspect image;
2. a piecewise-affine warp (:mod:`madpad.face.warp`; Delaunay triangles of the suspect's 68
   landmarks and points on the frame border) moves every landmark of the live capture onto the
   suspect's, so expression and pose differences do not ghost into ``D``;
3. optionally (``colour_match``, default on) the warped live capture's per-channel mean and
   standard deviation inside the suspect's face hull are matched to the suspect's, so a darker or
   tinted gate capture is not amplified by ``1 / (1 - alpha)``;
4. optionally (``fill_uncovered``, default on) the pixels of the suspect's frame that the live
   capture does not cover (a tightly cropped gate capture leaves the hair, chin or background of
   the suspect uncovered) take the suspect's own values, so ``D = S`` there instead of a mirrored
   copy of the live capture's border.

Then ``D = (S - alpha L_w) / (1 - alpha)``. A **low-resolution live capture** (inter-ocular distance
below :data:`LOW_RES_IOD` pixels and below the suspect's, :func:`low_res_factor`) is upsampled
into the suspect's frame, so ``S - L_w`` would hold every fine detail of the suspect and ``D`` would
be an unsharp mask of it (a halo that reads as another face). Then the difference is taken at the
live capture's resolution: ``D = S + alpha / (1 - alpha) * (S_low - L_w)``, with ``S_low`` the
suspect resampled down to the live capture's scale and back (the same formula as above when
``S_low = S``). With ``match_sharpness`` (off by default), ``S_low`` is also blurred to the live
capture's sharpness (:func:`sharpness_sigma`): a blurred gate capture has none of the suspect's
fine detail to take out, so without it ``D`` keeps all of it (for a morph, all of contributor A's).
With ``match_sharpness="whole"``, the whole of ``D`` is made at the live capture's level wherever the
difference is: ``D = (S_low - alpha * L_w) / (1 - alpha)``, so the FR system compares two images of
the same resolution and sharpness (a bona fide suspect then demorphs to about the live capture
itself, however blurred; with ``True``, ``D`` keeps the suspect's fine detail, which a blurred live
capture lacks, and an FR system reads that difference as another face).

:class:`DemorphFeatures` computes the FR embedding of ``D`` for each blend factor of a pair (one
warp per pair), cached per pair in a :class:`~madpad.mad.cache.FeatureCache` under the content keys
of both images. The detectors that use it are in :mod:`madpad.mad.cues` (blocks ``demorph_diff``
and ``demorph_cos`` of :class:`~madpad.mad.cues.CueDetector`, the untrained
:class:`~madpad.mad.cues.DemorphDistanceDetector`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from madpad.mad.base import load_image
from madpad.mad.cache import FeatureCache
from madpad.mad.cues import (
    STABLE_POINTS,
    check_landmarks68,
    eye_distance,
    face_hull_mask,
)

#: blend factors of the contributor in the live capture at which the trained detectors demorph
DEMORPH_ALPHAS = (0.3, 0.5)
#: points per side of the frame border added to the triangulation (they stay fixed)
BORDER_PER_SIDE = 5
#: a live capture whose inter-ocular distance (pixels) is below this and below the suspect's is
#: compared at its own resolution (:func:`low_res_factor`); about the eye distance of the 150 px
#: dlib face chip, so captures the FR chip does not upsample are left as they are
LOW_RES_IOD = 48.0
#: Gaussian sigmas (x the suspect's IOD) tried by :func:`sharpness_sigma`, smallest first
SHARPNESS_SIGMAS = (0.01, 0.02, 0.03, 0.045, 0.06, 0.08, 0.1, 0.13)
#: scales (x IOD) of the Gaussians whose differences make the fine and coarse bands of :func:`band_ratio`
SHARPNESS_BANDS = (0.015, 0.04, 0.12)


def check_sharpness_mode(value, name: str = "demorph_sharpness") -> bool | str:
    """The sharpness matching of demorphing: False, True (the difference at the live capture's
    sharpness) or "whole" (the whole demorphed image at the live capture's level); a
    :class:`~madpad.errors.UsageError` naming ``name`` otherwise."""
    from madpad.errors import UsageError

    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if value == "whole":
        return "whole"
    raise UsageError(f"{name} must be true, false or whole; got {value!r}")


def check_alpha(alpha) -> float:
    """A blend factor in (0, 1) (the live capture's share of the morph)."""
    a = float(alpha)
    if not (0.0 < a < 1.0):
        raise ValueError(f"demorphing alpha must lie strictly between 0 and 1; got {alpha!r}")
    return a


def live_in_suspect_frame(suspect: np.ndarray, live: np.ndarray, suspect_landmarks, live_landmarks, *,
                          colour_match: bool = True, fill_uncovered: bool = True) -> np.ndarray:
    """The live capture moved into the suspect's geometry (float32 (H, W, 3), suspect's size):
    similarity on the stable points, then a piecewise-affine warp of the 68 landmarks onto the
    suspect's, then (``colour_match``) the suspect's colour statistics inside its face hull, then
    (``fill_uncovered``) the suspect's pixels where the live capture does not reach (blended by the
    warped coverage, which is fractional along the live capture's edge)."""
    out, cover = warp_live(suspect, live, suspect_landmarks, live_landmarks, colour_match=colour_match)
    return fill_from(out, cover, suspect) if fill_uncovered else out


def fill_from(warped_live: np.ndarray, cover: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``reference``'s pixels where the warped live capture does not reach (``cover`` (H, W) in [0, 1])."""
    c = np.asarray(cover, dtype=np.float32)[..., None]
    return c * warped_live + (1.0 - c) * np.asarray(reference, dtype=np.float32)


def warp_live(suspect: np.ndarray, live: np.ndarray, suspect_landmarks, live_landmarks, *,
              colour_match: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The live capture warped and colour-matched into the suspect's frame (float32 (H, W, 3)), and
    its coverage there ((H, W) in [0, 1]; 0 where it does not reach), as in :func:`live_in_suspect_frame`."""
    from madpad.face.align import apply_transform, similarity_transform, warp
    from madpad.face.warp import (
        RemapWarpPlan,
        border_points,
        clip_points,
        delaunay_triangles,
    )

    s_img = np.ascontiguousarray(np.asarray(suspect, dtype=np.uint8))
    l_img = np.ascontiguousarray(np.asarray(live, dtype=np.uint8))
    s_lm = check_landmarks68(suspect_landmarks, "suspect landmarks")
    l_lm = check_landmarks68(live_landmarks, "live landmarks")
    if eye_distance(s_lm) <= 1.0 or eye_distance(l_lm) <= 1.0:
        raise ValueError("demorphing: the eye centres of a face coincide")
    h, w = s_img.shape[:2]
    stable = list(STABLE_POINTS)
    M = similarity_transform(l_lm[stable], s_lm[stable])
    moved = warp(l_img, M, (w, h), border="reflect")
    l_moved = apply_transform(M, l_lm)
    frame = border_points((w, h), per_side=BORDER_PER_SIDE)
    dst = np.vstack([clip_points(s_lm, (w, h)), frame])
    src = np.vstack([l_moved, frame])
    try:
        triangles = delaunay_triangles(dst)
    except RuntimeError as exc:  # scipy's QhullError: degenerate landmark geometry
        raise ValueError(f"demorphing: cannot triangulate the suspect's landmarks ({str(exc).splitlines()[0]})") from None
    plan = RemapWarpPlan(dst, triangles, (w, h))
    out = plan(moved, src).astype(np.float32)
    if colour_match:
        m = face_hull_mask(s_img.shape, s_lm)
        if m.sum() >= 16:
            s = s_img.astype(np.float32)
            for c in range(3):
                ms, ss = s[..., c][m].mean(), s[..., c][m].std()
                ml, sl = out[..., c][m].mean(), out[..., c][m].std()
                out[..., c] = (out[..., c] - ml) * (ss / max(sl, 1e-3)) + ms
    # the live capture's reach in the suspect's frame, warped like its pixels
    reach = warp(np.full(l_img.shape[:2], 255, np.uint8), M, (w, h), border="constant")
    return out, plan(reach, src).astype(np.float32) / 255.0


def low_res_factor(suspect_landmarks, live_landmarks, *, threshold: float | None = LOW_RES_IOD) -> float:
    """The scale (< 1) at which a low-resolution live capture is compared with the suspect: its
    inter-ocular distance over the suspect's, when it is below ``threshold`` pixels and below the
    suspect's; else 1 (``threshold`` None: always 1)."""
    if threshold is None:
        return 1.0
    s_iod = eye_distance(check_landmarks68(suspect_landmarks, "suspect landmarks"))
    l_iod = eye_distance(check_landmarks68(live_landmarks, "live landmarks"))
    if l_iod >= float(threshold) or l_iod >= s_iod or l_iod <= 1.0:
        return 1.0
    return float(l_iod / s_iod)


def at_scale(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` resampled down by ``factor`` (area averaging) and back up to its size (bilinear):
    what a camera with that resolution would have seen."""
    import cv2

    from madpad.io import resize_by

    h, w = image.shape[:2]
    return cv2.resize(resize_by(image, factor), (w, h), interpolation=cv2.INTER_LINEAR)


def band_ratio(luma: np.ndarray, mask: np.ndarray, iod: float) -> float:
    """Sharpness of an image region free of its contrast: the RMS of the fine band (difference of
    Gaussians at :data:`SHARPNESS_BANDS` [0] and [1] x IOD) over that of the coarse band ([1] and
    [2]) of ``luma`` inside ``mask``. A blur lowers it; a change of exposure or contrast does not."""
    import cv2

    y = np.asarray(luma, dtype=np.float32)
    g = [cv2.GaussianBlur(y, (0, 0), max(b * iod, 0.5)) for b in SHARPNESS_BANDS]
    m = np.asarray(mask, dtype=bool)
    fine, coarse = (g[0] - g[1])[m], (g[1] - g[2])[m]
    if fine.size == 0:
        return float("nan")
    return float(np.sqrt(np.mean(fine ** 2)) / max(float(np.sqrt(np.mean(coarse ** 2))), 1e-3))


def sharpness_sigma(reference: np.ndarray, warped_live: np.ndarray, suspect_landmarks,
                    cover: np.ndarray | None = None) -> float:
    """The Gaussian sigma (pixels) that brings ``reference`` (the suspect) down to the sharpness of
    the live capture warped into its frame: the largest of :data:`SHARPNESS_SIGMAS` (x IOD) whose
    blur leaves the suspect's :func:`band_ratio` inside the face hull (where ``cover`` > 0.99) at or
    above the live capture's; 0 when the live capture is as sharp as the suspect."""
    import cv2

    from madpad.io import luminance

    lm = check_landmarks68(suspect_landmarks, "suspect landmarks")
    iod = eye_distance(lm)
    m = face_hull_mask(np.shape(reference), lm)
    if cover is not None:
        m &= np.asarray(cover) > 0.99
    if m.sum() < 64 or iod <= 1.0:
        return 0.0
    target = band_ratio(luminance(warped_live), m, iod)
    y = luminance(reference)
    best = 0.0
    for f in SHARPNESS_SIGMAS:
        if not band_ratio(cv2.GaussianBlur(y, (0, 0), f * iod), m, iod) >= target:
            break
        best = f
    return best * iod


def demorph_images(suspect, live, suspect_landmarks, live_landmarks, *, alphas: Sequence[float] = (0.5,),
                   colour_match: bool = True, fill_uncovered: bool = True,
                   low_res_iod: float | None = LOW_RES_IOD, match_sharpness: bool | str = False) -> list[np.ndarray]:
    """Demorphed images ``clip((S - alpha * L_w) / (1 - alpha))`` (RGB uint8, the suspect's size and
    geometry: the suspect's landmarks apply to them), one per blend factor, from one warp. A live
    capture of low resolution (:func:`low_res_factor` with ``low_res_iod``; None: never) is compared
    at its own resolution: ``clip(S + alpha / (1 - alpha) * (S_low - L_w))``. ``match_sharpness``:
    ``S_low`` is also blurred to the live capture's sharpness (:func:`sharpness_sigma`), so a
    blurred live capture takes out the suspect's coarse content only and leaves its fine detail;
    ``"whole"``: that too, and then the whole image is made at the live capture's level,
    ``clip((S_low - alpha * L_w) / (1 - alpha))``, wherever the difference is taken there."""
    import cv2

    whole = check_sharpness_mode(match_sharpness, "match_sharpness") == "whole"
    s = np.asarray(suspect, dtype=np.uint8)
    f = low_res_factor(suspect_landmarks, live_landmarks, threshold=low_res_iod)
    ref = s if f >= 1.0 else at_scale(s, f)
    lw, cover = warp_live(ref, live, suspect_landmarks, live_landmarks, colour_match=colour_match)
    at_live_level = f < 1.0  # the difference is taken at the live capture's resolution or sharpness
    if match_sharpness:
        sigma = sharpness_sigma(ref, lw, suspect_landmarks, cover)
        if sigma > 0:
            ref, at_live_level = cv2.GaussianBlur(ref.astype(np.float32), (0, 0), sigma), True
    if fill_uncovered:  # uncovered pixels take the reference, so D = S there
        lw = fill_from(lw, cover, ref)
    sf = s.astype(np.float32)
    out = []
    for a in alphas:
        a = check_alpha(a)
        if not at_live_level:
            d = (sf - a * lw) / (1.0 - a)
        elif whole:
            d = (ref.astype(np.float32) - a * lw) / (1.0 - a)
        else:
            d = sf + a / (1.0 - a) * (ref.astype(np.float32) - lw)
        out.append(np.clip(np.rint(d), 0, 255).astype(np.uint8))
    return out


def demorph_image(suspect, live, suspect_landmarks, live_landmarks, *, alpha: float = 0.5,
                  colour_match: bool = True, fill_uncovered: bool = True,
                  low_res_iod: float | None = LOW_RES_IOD, match_sharpness: bool | str = False) -> np.ndarray:
    """One demorphed image (see :func:`demorph_images`)."""
    return demorph_images(suspect, live, suspect_landmarks, live_landmarks, alphas=(alpha,),
                          colour_match=colour_match, fill_uncovered=fill_uncovered, low_res_iod=low_res_iod,
                          match_sharpness=match_sharpness)[0]


def analysis_from_landmarks(landmarks68: np.ndarray):
    """A :class:`~madpad.face.FaceAnalysis` of given 68 landmarks (box = their bounding box), so an
    FR embedder aligns an image in that geometry (e.g. a demorphed image) without a new search."""
    from madpad.face import FaceAnalysis, FaceDetection
    from madpad.face.analyze import landmarks5_of

    lm = check_landmarks68(landmarks68, "landmarks")
    box = np.array([*lm.min(0), *lm.max(0)])
    return FaceAnalysis(status="ok", detection=FaceDetection(box=box, score=1.0), landmarks=lm,
                        landmarks5=landmarks5_of(lm), n_faces=1)


def demorph_settings(match_sharpness: bool | str = False) -> dict:
    """What the demorphed images of the detectors are made with (:class:`DemorphFeatures` defaults,
    with ``match_sharpness`` as given), as recorded in trained checkpoints."""
    return DemorphFeatures(None, "", match_sharpness=match_sharpness).settings


@dataclass
class DemorphResult:
    features: np.ndarray   # (n, len(alphas) * dim) float32: the embedding of D per alpha; NaN rows for failures
    status: list
    error: list


class DemorphFeatures:
    """FR embeddings of demorphed suspects, one per blend factor, per pair.

    ``emb``: a madpad.face embedder (the one whose landmarks and embeddings the per-image rows
    hold); ``model_id``: the per-image extractor's id (so a cached vector names the embedder and
    its settings); ``colour_match``, ``fill_uncovered``: see :func:`live_in_suspect_frame`;
    ``low_res_iod``, ``match_sharpness``: see :func:`demorph_images`."""

    VERSION = "demorph-v1"

    def __init__(self, emb, model_id: str, *, colour_match: bool = True, fill_uncovered: bool = True,
                 low_res_iod: float | None = LOW_RES_IOD, match_sharpness: bool | str = False):
        self.emb = emb
        self.match_sharpness = check_sharpness_mode(match_sharpness, "match_sharpness")
        self.colour_match = bool(colour_match)
        self.fill_uncovered = bool(fill_uncovered)
        self.low_res_iod = None if low_res_iod is None else float(low_res_iod)
        self.base_id = model_id

    @property
    def settings(self) -> dict:
        """The options that change the demorphed images (recorded in trained checkpoints)."""
        out = {"version": self.VERSION, "colour_match": self.colour_match, "fill_uncovered": self.fill_uncovered,
               "low_res_iod": self.low_res_iod}
        if self.match_sharpness:  # named only when on, so earlier checkpoints' settings read the same
            out["match_sharpness"] = self.match_sharpness
        return out

    def id(self, alpha: float, low_res: bool = False) -> str:
        """Cache id of one alpha; ``low_res``: the pair's live capture is compared at its own
        resolution. The fill, the low-resolution comparison and the sharpness matching are named
        only where they apply, so rows that none of them changes keep their earlier ids."""
        return (f"{self.base_id}|{self.VERSION}|alpha={check_alpha(alpha):g}|colour={int(self.colour_match)}"
                + ("|fill=1" if self.fill_uncovered else "")
                + (f"|lowres<{self.low_res_iod:g}" if low_res else "")
                + ("" if not self.match_sharpness else "|sharp=whole" if self.match_sharpness == "whole" else "|sharp=1"))

    def _low_res(self, suspect_landmarks, live_landmarks) -> bool:
        try:
            return low_res_factor(suspect_landmarks, live_landmarks, threshold=self.low_res_iod) < 1.0
        except ValueError:  # malformed landmarks: one() reports them
            return False

    def one(self, suspect, live, suspect_landmarks, live_landmarks, alphas: Sequence[float]) -> np.ndarray:
        """Embeddings (len(alphas), dim) of the demorphed suspect of one pair."""
        from madpad.mad.features import embed_analysed

        s = load_image(suspect)
        images = demorph_images(s, load_image(live), suspect_landmarks, live_landmarks, alphas=alphas,
                                colour_match=self.colour_match, fill_uncovered=self.fill_uncovered,
                                low_res_iod=self.low_res_iod, match_sharpness=self.match_sharpness)
        a = analysis_from_landmarks(suspect_landmarks)
        return np.stack([embed_analysed(self.emb, d, a) for d in images])

    def many(self, pairs, suspect_landmarks: np.ndarray, live_landmarks: np.ndarray, *,
             alphas: Sequence[float] = DEMORPH_ALPHAS, cache: FeatureCache | None = None, progress: bool = False,
             ok: Sequence[bool] | None = None) -> DemorphResult:
        """Demorph features of ``pairs`` (each with ``.suspect`` and ``.live``); the landmarks
        (n, 68, 2) come from the per-image analyses. Pairs with ``ok`` False (no face in one image)
        are left as NaN rows; a pair whose warp fails gets the status ``failed`` and its reason."""
        from tqdm.auto import tqdm

        from madpad.errors import MadpadError

        cache = cache if cache is not None else FeatureCache()
        alphas = [check_alpha(a) for a in alphas]
        dim = int(self.emb.dim)
        n = len(pairs)
        out = np.full((n, len(alphas) * dim), np.nan, dtype=np.float32)
        status, error = ["ok"] * n, [""] * n
        todo = []
        for i, p in enumerate(pairs):
            if ok is not None and not ok[i]:
                status[i] = "skipped"
                continue
            try:
                key = hashlib.sha256(f"{cache.key(p.suspect)}\x1f{cache.key(p.live)}".encode()).hexdigest()
            except OSError as exc:  # a file that cannot be read: a per-pair status, not a crash
                status[i], error[i] = "unreadable", f"pair {getattr(p, 'id', i)}: {exc}"
                continue
            low = self._low_res(suspect_landmarks[i], live_landmarks[i])
            rows = [cache.get(self.id(a, low), key) for a in alphas]
            if all(r is not None for r in rows):
                cache.hits += 1
                out[i] = np.concatenate(rows)
                if not np.all(np.isfinite(out[i])):
                    status[i], error[i] = "failed", f"pair {getattr(p, 'id', i)}: demorphing failed (cached result)"
            else:
                todo.append((i, key, low))
        for i, key, low in tqdm(todo, desc="demorphing", disable=None if (progress and todo) else True, unit="pair"):
            cache.misses += 1
            p = pairs[i]
            try:
                v = self.one(p.suspect, p.live, suspect_landmarks[i], live_landmarks[i], alphas)
            except (MadpadError, OSError) as exc:  # unreadable image: not cached, retried next time
                status[i], error[i] = "unreadable", f"pair {getattr(p, 'id', i)}: {exc}"
                continue
            except (ValueError, np.linalg.LinAlgError) as exc:  # degenerate geometry: cached as a NaN row
                status[i], error[i] = "failed", f"pair {getattr(p, 'id', i)}: demorphing failed ({exc})"
                v = np.full((len(alphas), dim), np.nan, np.float32)
            for a, row in zip(alphas, v):
                cache.put(self.id(a, low), key, row)
            out[i] = v.ravel()
        return DemorphResult(out, status, error)


__all__ = [
    "DEMORPH_ALPHAS",
    "LOW_RES_IOD",
    "DemorphFeatures",
    "DemorphResult",
    "SHARPNESS_BANDS",
    "SHARPNESS_SIGMAS",
    "analysis_from_landmarks",
    "at_scale",
    "band_ratio",
    "check_alpha",
    "check_sharpness_mode",
    "demorph_image",
    "demorph_images",
    "demorph_settings",
    "fill_from",
    "live_in_suspect_frame",
    "low_res_factor",
    "sharpness_sigma",
    "warp_live",
]

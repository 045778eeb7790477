"""Per-image face features for the embedding-based detectors: FR embedding, texture, shape.

:class:`FaceFeatureExtractor` analyses an image once (face detection + landmarks with the
embedder's own components) and returns one vector: the L2-normalised FR embedding
(``dlib`` 128-D, ``arcface_onnx`` 512-D with ``model_path=``, any
:func:`madpad.face.get_embedder` name) followed, when ``texture=True``, by hand-crafted
texture statistics of the ArcFace-aligned inner face (grey level, ``texture_size`` px):

* sensor-noise residual (image minus 3x3 median): std, mean absolute value, kurtosis;
* Laplacian: mean absolute value and std (sharpness);
* radial power spectrum: share of the energy in 6 frequency bands (blending two faces
  averages out fine detail and noise, which shifts energy to low frequencies);
* uniform LBP histograms at radius 1 (8 points) and 2 (16 points);
* chroma: std of Cr and Cb, mean saturation.

and, when ``shape=True``, the face geometry of :func:`shape_features` (brow, nose and eye
landmarks in an eye-normalised frame).

Images without a usable face give a row of NaNs and a status (``no_face``,
``unreadable``...), never an exception.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from madpad.errors import MadpadError

TEXTURE_DIM = 3 + 2 + 6 + 10 + 18 + 3


def texture_features(face: np.ndarray) -> np.ndarray:
    """Texture statistics (TEXTURE_DIM,) float32 of an aligned RGB face crop."""
    import cv2

    from madpad.io import optional_import

    local_binary_pattern = optional_import("skimage.feature", extra="detect",
                                           purpose="LBP texture features").local_binary_pattern

    rgb = np.ascontiguousarray(face)
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = g.shape
    # restrict to the inner face (the ArcFace crop borders hold hair/background)
    m0, m1 = int(0.12 * h), int(0.12 * w)
    gi = g[m0:h - m0, m1:w - m1]
    resid = gi - cv2.medianBlur(gi.astype(np.uint8), 3).astype(np.float32)
    rs = resid.std() + 1e-6
    kurt = float(((resid - resid.mean()) ** 4).mean() / rs ** 4)
    lap = cv2.Laplacian(gi, cv2.CV_32F, ksize=3)
    f = np.fft.fftshift(np.abs(np.fft.fft2(gi - gi.mean())) ** 2)
    yy, xx = np.indices(f.shape)
    r = np.hypot(yy - f.shape[0] / 2, xx - f.shape[1] / 2) / (min(f.shape) / 2)
    edges = [0.0, 0.05, 0.1, 0.2, 0.35, 0.6, 1.5]
    total = f.sum() + 1e-9
    bands = [float(np.log(f[(r >= a) & (r < b)].sum() / total + 1e-12)) for a, b in zip(edges[:-1], edges[1:])]
    gi8 = np.clip(gi, 0, 255).astype(np.uint8)
    lbp1 = local_binary_pattern(gi8, 8, 1, method="uniform")
    lbp2 = local_binary_pattern(gi8, 16, 2, method="uniform")
    h1 = np.bincount(lbp1.astype(int).ravel(), minlength=10)[:10] / lbp1.size
    h2 = np.bincount(lbp2.astype(int).ravel(), minlength=18)[:18] / lbp2.size
    inner = rgb[m0:h - m0, m1:w - m1]
    ycc = cv2.cvtColor(inner, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    hsv = cv2.cvtColor(inner, cv2.COLOR_RGB2HSV).astype(np.float32)
    vec = [np.log(rs), np.log(np.abs(resid).mean() + 1e-6), np.log(kurt + 1e-6),
           np.log(np.abs(lap).mean() + 1e-6), np.log(lap.std() + 1e-6), *bands, *h1, *h2,
           ycc[..., 1].std() / 255.0, ycc[..., 2].std() / 255.0, hsv[..., 1].mean() / 255.0]
    out = np.asarray(vec, dtype=np.float32)
    assert out.shape == (TEXTURE_DIM,)
    return out


def _status_of(exc: BaseException) -> str:
    from madpad.errors import FaceNotFoundError, ImageReadError

    if isinstance(exc, ImageReadError):
        return "unreadable"
    if isinstance(exc, FaceNotFoundError):  # includes MultipleFacesError
        return "multiple_faces" if type(exc).__name__ == "MultipleFacesError" else "no_face"
    return "failed"


@dataclass
class FeatureResult:
    features: np.ndarray   # (N, D) float32, NaN rows for failures
    status: list
    error: list


SHAPE_POINTS = tuple(range(17, 48))  # dlib 68: brows, nose, eyes (jaw and mouth move with expression)
SHAPE_DIM = 2 * len(SHAPE_POINTS)


def shape_features(landmarks68: np.ndarray) -> np.ndarray:
    """Face geometry invariant to position, scale and roll: the brow, nose and eye points of
    dlib's 68 landmarks in a frame with the eye centres at (-0.5, 0) and (0.5, 0).
    A morph's geometry is the average of its contributors', so it differs from either one."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"shape features need 68 landmarks; got shape {lm.shape}")
    le, re = lm[36:42].mean(0), lm[42:48].mean(0)
    c, v = (le + re) / 2, re - le
    d = float(np.hypot(*v)) or 1.0
    cos, sin = v / d
    R = np.array([[cos, sin], [-sin, cos]])
    pts = ((lm[list(SHAPE_POINTS)] - c) @ R.T) / d
    return pts.ravel().astype(np.float32)


def embed_analysed(emb, image: np.ndarray, analysis) -> np.ndarray:
    """L2-normalised embedding (D,) float32 of the face of ``analysis`` in ``image`` (the image the
    analysis was made on, or an edited copy of it with the same geometry: the face is aligned with
    the analysis' landmarks, so an edit of the pixels does not move the alignment)."""
    from madpad.face.similarity import l2_normalize

    if hasattr(emb, "face_chip") and hasattr(emb, "embed_aligned"):
        e = emb.embed_aligned([emb.face_chip(image, analysis)])[0]
    elif image is analysis.image:
        e = emb.embed_one(image)
    else:
        e = emb._embed_face(image, analysis)
    return np.asarray(l2_normalize(np.asarray(e, dtype=np.float64)), dtype=np.float32)


def feature_layout(embed_dim: int, *, texture: bool, shape: bool) -> dict[str, slice]:
    """Where each part sits in a per-image feature vector: embedding | texture | shape."""
    out, o = {"embedding": slice(0, embed_dim)}, embed_dim
    if texture:
        out["texture"] = slice(o, o + TEXTURE_DIM)
        o += TEXTURE_DIM
    if shape:
        out["shape"] = slice(o, o + SHAPE_DIM)
        o += SHAPE_DIM
    out["all"] = slice(0, o)
    return out


def params_mapping(value, field: str = "embedder_params") -> dict:
    """``value`` as a dict of options (None = no options); anything else is a UsageError naming ``field``."""
    from collections.abc import Mapping

    if value is None:
        return {}
    if not isinstance(value, Mapping):
        from madpad.errors import UsageError

        raise UsageError(f"{field} must be a mapping of options (e.g. {{detector: {{name: dlib_hog}}}}); got {value!r}")
    return dict(value)


class FaceFeatureExtractor:
    """FR embedding (+ texture, + shape) of full images, one face analysis per image.

    ``embedder``: a :func:`madpad.face.get_embedder` name (``dlib``, ``arcface_onnx``,
    ``open_clip``) with ``embedder_params``; ``texture``: append :func:`texture_features`
    of the ArcFace-aligned face at ``texture_size`` pixels; ``shape``: append
    :func:`shape_features` (needs a 68-point landmarker, e.g. the dlib embedder's).
    """

    def __init__(self, *, embedder: str = "dlib", embedder_params: dict | None = None, texture: bool = False,
                 texture_size: int = 160, shape: bool = False):
        self.embedder_name = embedder
        self.embedder_params = params_mapping(embedder_params)
        self.texture = bool(texture)
        self.texture_size = int(texture_size)
        self.shape = bool(shape)
        self._emb = None

    @property
    def emb(self):
        if self._emb is None:
            from madpad.face import get_embedder

            self._emb = get_embedder(self.embedder_name, **self.embedder_params)
        return self._emb

    @property
    def embed_dim(self) -> int:
        return int(self.emb.dim)

    def layout(self) -> dict[str, slice]:
        return feature_layout(self.embed_dim, texture=self.texture, shape=self.shape)

    @property
    def dim(self) -> int:
        return self.layout()["all"].stop

    def _id(self, texture: bool, shape: bool) -> str:
        return f"{self.emb.id}|texture={texture}:{self.texture_size}:v1" + ("|shape=v1" if shape else "")

    @property
    def id(self) -> str:
        return self._id(self.texture, self.shape)

    def _richer_variants(self) -> list[tuple[str, Callable[[np.ndarray], np.ndarray]]]:
        """(cache id, cut) of the extractors whose cached rows hold this one's (a row of theirs,
        cut, is this extractor's row for the same image): here the variants with texture and/or
        shape switched on."""
        return [(self._id(t, sh), functools.partial(self._from_superset, texture=t, shape=sh))
                for t in (self.texture, True) for sh in (self.shape, True) if (t, sh) != (self.texture, self.shape)]

    def _from_superset(self, v: np.ndarray, texture: bool, shape: bool) -> np.ndarray:
        """This extractor's vector cut out of a cached vector of a richer variant."""
        src = feature_layout(self.embed_dim, texture=texture, shape=shape)
        parts = [v[src["embedding"]]]
        if self.texture:
            parts.append(v[src["texture"]])
        if self.shape:
            parts.append(v[src["shape"]])
        return np.concatenate(parts)

    def one(self, image: Any) -> np.ndarray:
        """Feature vector of one image; raises a MadpadError subclass for per-image problems."""
        from madpad.face import align_arcface

        emb = self.emb
        a = emb.analyze(image).raise_for_status()
        parts = [embed_analysed(emb, a.image, a)]
        if self.texture:
            crop = align_arcface(a.image, a.landmarks5 if a.landmarks5 is not None else a.landmarks,
                                 size=self.texture_size)
            parts.append(texture_features(crop))
        if self.shape:
            if a.landmarks is None or len(a.landmarks) != 68:
                raise ValueError("shape features need a 68-point landmarker (e.g. landmarker='dlib68')")
            parts.append(shape_features(a.landmarks))
        return np.concatenate(parts).astype(np.float32)

    def many(self, images: Sequence[Any], *, cache=None, progress: bool = False, desc: str = "features") -> FeatureResult:
        """Features of many images (each distinct image once; ``cache``: a FeatureCache)."""
        from tqdm.auto import tqdm

        from madpad.mad.cache import FeatureCache

        cache = cache if cache is not None else FeatureCache()
        status = ["ok"] * len(images)
        error = [""] * len(images)
        keys = []
        for i, im in enumerate(images):
            try:
                keys.append(cache.key(im))
            except OSError as exc:
                keys.append(None)
                status[i], error[i] = "unreadable", f"{im}: cannot read file ({exc})"
        out = np.full((len(images), self.dim), np.nan, dtype=np.float32)
        model_id = self.id
        todo: dict[str, list[int]] = {}
        # reuse rows cached by a richer variant of the same embedder (e.g. embedding + texture)
        richer = self._richer_variants()
        for i, k in enumerate(keys):
            if k is None:
                continue
            v = cache.get(model_id, k)
            for rich_id, cut in richer if v is None else ():
                w = cache.get(rich_id, k)
                if w is not None:
                    v = cut(w)
                    break
            if v is not None:
                cache.hits += 1
                out[i] = v
                if not np.all(np.isfinite(v)):
                    status[i], error[i] = "no_face", "no usable face (cached result)"
            else:
                todo.setdefault(k, []).append(i)
        for k, idx in tqdm(list(todo.items()), desc=desc, disable=None if (progress and todo) else True, unit="img"):
            cache.misses += 1
            im = images[idx[0]]
            try:
                v = self.one(im)
            except (MadpadError, OSError) as exc:
                st = _status_of(exc)
                name = str(im) if not isinstance(im, np.ndarray) else f"image {idx[0]}"
                msg = str(exc) if str(exc).startswith(f"{name}:") else f"{name}: {exc}"  # the file named once
                for i in idx:
                    status[i], error[i] = st, msg
                if st == "no_face":
                    cache.put(model_id, k, np.full(self.dim, np.nan, np.float32))
                continue
            cache.put(model_id, k, v)
            out[idx] = v
        return FeatureResult(out, status, error)

"""Training-time image augmentation for morph detectors (seeded, numpy + OpenCV only).

Every epoch of training should see each image under different, realistic changes, so that a
detector learns morphing rather than one file history: photometric changes (brightness,
contrast, saturation, gamma), small geometric changes (rotation, scale, shift), blur, sensor
noise and JPEG recompression. :func:`augment_image` applies one random draw of them to an RGB
uint8 image; :func:`augmentation_rng` gives the generator for (seed, epoch, item, role), so a
run is reproducible and a resumed run sees exactly the draws an uninterrupted run would.

Used by the foundation detector (``augment`` option; its suspects also pass through a
post-processing chain of :mod:`madpad.mad.chains`) and by the FR-embedding detectors
(``augment_copies``): :func:`augmented_pairs` adds seeded augmented views of every training
pair (suspect through a chain drawn from the ``attacker`` profile, then :func:`augment_image`;
live capture through :func:`augment_image`). A view is an :class:`AugmentedView`: computed only
when its features are not cached, under a cache key of (source image, augmentation identity).
:func:`mirrored_pairs` gives the second view of the test-time averaging (``tta: mirror``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of one augmentation draw; ``strength`` scales every range (0 = identity)."""

    strength: float = 1.0
    brightness: float = 0.15          # multiplicative +-
    contrast: float = 0.15
    saturation: float = 0.15
    gamma: float = 0.15               # exponent 1 +- gamma
    rotate_deg: float = 4.0           # small geometric changes (the face stays aligned)
    scale: float = 0.05
    shift: float = 0.03               # fraction of the image side
    blur_p: float = 0.25
    blur_sigma: tuple = (0.3, 1.2)
    noise_p: float = 0.25
    noise_std: float = 4.0            # grey levels
    jpeg_p: float = 0.5
    jpeg_quality: tuple = (50, 95)


def augmentation_rng(seed: int, epoch: int, item: int | str, role: str = "") -> np.random.Generator:
    """The generator of one augmentation draw, a pure function of (seed, epoch, item, role)."""
    h = hashlib.sha256(f"{int(seed)}\x1f{int(epoch)}\x1f{item}\x1f{role}".encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def augment_image(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig | None = None) -> np.ndarray:
    """One random photometric + small geometric + blur/noise/JPEG change of an RGB uint8 image
    (same shape and dtype). The draws come from ``rng`` only."""
    import cv2

    cfg = config or AugmentConfig()
    k = float(cfg.strength)
    img = np.ascontiguousarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"augment_image needs an RGB uint8 image (H, W, 3); got {img.dtype} {img.shape}")
    # the draws are taken in a fixed order whatever the strength (reproducible streams)
    u = rng.uniform(-1.0, 1.0, size=8)
    p = rng.uniform(0.0, 1.0, size=3)
    blur_s = rng.uniform(*cfg.blur_sigma)
    q = int(rng.integers(int(cfg.jpeg_quality[0]), int(cfg.jpeg_quality[1]) + 1))
    if k <= 0:
        return img.copy()
    h, w = img.shape[:2]
    # geometry: rotation, scale and shift about the centre (border replicated)
    angle = cfg.rotate_deg * k * u[0]
    scale = 1.0 + cfg.scale * k * u[1]
    M = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
    M[0, 2] += cfg.shift * k * u[2] * w
    M[1, 2] += cfg.shift * k * u[3] * h
    out = cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # photometric
    x = out.astype(np.float32) / 255.0
    x = x * (1.0 + cfg.brightness * k * u[4])
    mean = x.mean()
    x = (x - mean) * (1.0 + cfg.contrast * k * u[5]) + mean
    grey = x.mean(axis=2, keepdims=True)
    x = (x - grey) * (1.0 + cfg.saturation * k * u[6]) + grey
    x = np.clip(x, 0.0, 1.0) ** (1.0 + cfg.gamma * k * u[7])
    out = np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if p[0] < cfg.blur_p * min(1.0, k):
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=float(blur_s) * k)
    if p[1] < cfg.noise_p * min(1.0, k):
        noise = rng.normal(0.0, cfg.noise_std * k, size=out.shape)
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if p[2] < cfg.jpeg_p * min(1.0, k):
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(out)


class AugmentedView:
    """An image seen through one seeded augmentation, computed on use (``np.asarray(view)``).

    ``source``: a path or an RGB array; ``identity``: a string naming the augmentation draw
    completely (seed, copy, pair, role, profile); ``transform(image) -> image``. Feature caches
    key it by (the source's content key, identity) through :meth:`feature_cache_key`, so a
    cached view is never recomputed and never confused with its source.
    """

    def __init__(self, source, identity: str, transform):
        self.source = source
        self.identity = str(identity)
        self.transform = transform

    def __array__(self, dtype=None, copy=None):
        from madpad.io import as_rgb_uint8

        out = self.transform(as_rgb_uint8(self.source))
        return out if dtype is None else out.astype(dtype)

    def feature_cache_key(self, key_of) -> str:
        """Cache key: hash of (``key_of(source)``, identity)."""
        return hashlib.sha256(f"{key_of(self.source)}\x1f{self.identity}".encode()).hexdigest()

    def __str__(self) -> str:
        src = self.source if not isinstance(self.source, np.ndarray) else "array"
        return f"{src} [{self.identity}]"

    __repr__ = __str__


LOW_RES_SIDE = (100.0, 240.0)
#: sigma of the out-of-focus live draw (``augment_blur``), as a fraction of the capture's shortest
#: side: about 0.02-0.1 of the eye distance in the face-centred ``gate`` captures
BLUR_SIDE_FRACTION = (0.004, 0.02)


def check_probability(p, name: str) -> float:
    """``p`` as a float in [0, 1]; otherwise a ValueError naming ``name``."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1]; got {p!r}")
    return float(p)


def check_low_res(p, side=LOW_RES_SIDE) -> tuple[float, tuple[float, float]]:
    """Validated (probability, (shortest side low, high)) of the low-resolution live draw."""
    p = check_probability(p, "augment_low_res")
    try:
        lo, hi = (float(v) for v in side)
    except (TypeError, ValueError):
        raise ValueError(f"low_res_side must be two numbers of pixels (low, high); got {side!r}") from None
    if not (8.0 <= lo <= hi and np.isfinite(hi)):
        raise ValueError(f"low_res_side must be two numbers of pixels with 8 <= low <= high; got {side!r}")
    return p, (lo, hi)


def check_live_draws(low_res, grey, blur=0.0) -> tuple[float, float, float]:
    """The detectors' options ``augment_low_res``, ``augment_grey`` and ``augment_blur`` validated
    (probabilities; a :class:`~madpad.errors.UsageError` naming the option otherwise)."""
    from madpad.errors import UsageError

    try:
        return check_low_res(low_res)[0], check_probability(grey, "augment_grey"), check_probability(blur, "augment_blur")
    except ValueError as e:
        raise UsageError(str(e)) from None


def _log_uniform_draw(rng: np.random.Generator, p: float, bounds) -> float | None:
    """With probability ``p`` a value log-uniform in ``bounds`` (low, high), else None; always takes
    the same two draws from ``rng``."""
    u = rng.uniform(0.0, 1.0, size=2)
    if not u[0] < p:
        return None
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    return float(np.exp(lo + (hi - lo) * u[1]))


def low_res_draw(rng: np.random.Generator, p: float, side=LOW_RES_SIDE) -> float | None:
    """The shortest side (pixels) a live capture is shrunk to with probability ``p`` (log-uniform
    in ``side``), or None; always takes the same two draws from ``rng``."""
    return _log_uniform_draw(rng, p, side)


def blur_draw(rng: np.random.Generator, p: float, fraction=BLUR_SIDE_FRACTION) -> float | None:
    """The Gaussian sigma, as a fraction of the live capture's shortest side, of an out-of-focus
    camera, drawn with probability ``p`` (log-uniform in ``fraction``), or None; always takes the
    same two draws from ``rng``."""
    return _log_uniform_draw(rng, p, fraction)


def shrink_to_side(image: np.ndarray, side: float) -> np.ndarray:
    """``image`` shrunk (area averaging, aspect kept) so its shortest side is ``side`` pixels;
    unchanged when it already is that small."""
    from madpad.io import resize_by

    f = float(side) / min(image.shape[:2])
    return image if f >= 1.0 else resize_by(image, f)


def suspect_augmentation(image: np.ndarray, rng: np.random.Generator, *, profile: str = "attacker",
                         config: AugmentConfig | None = None) -> np.ndarray:
    """A suspect image through a chain drawn from ``profile`` (:func:`madpad.mad.chains.random_chain`)
    and then :func:`augment_image`; every draw from ``rng``."""
    from madpad.mad.chains import apply_chain, random_chain

    out = apply_chain(image, random_chain(rng, profile), rng)
    return augment_image(out, rng, config)


class LiveDraw(NamedTuple):
    """The live capture's camera draws of one augmented view: shortest side it is shrunk to
    (None: as it is), grey or not, Gaussian blur as a fraction of its shortest side (None: none)."""

    side: float | None
    grey: bool
    blur: float | None = None


def live_draws(seed: int, copy: int, item: int | str, *, low_res: float = 0.0, low_res_side=LOW_RES_SIDE,
               grey: float = 0.0, blur: float = 0.0) -> LiveDraw:
    """The :class:`LiveDraw` of the live capture of augmented view ``copy`` (or epoch) of ``item``:
    :func:`low_res_draw` from ``augmentation_rng(seed, copy, item, "live-lowres")``, a draw with
    probability ``grey`` from ``augmentation_rng(seed, copy, item, "live-grey")`` and
    :func:`blur_draw` with probability ``blur`` from ``augmentation_rng(seed, copy, item, "live-blur")``,
    so the other draws of the view do not change with these options."""
    side = low_res_draw(augmentation_rng(seed, copy, item, "live-lowres"), low_res, low_res_side)
    to_grey = bool(augmentation_rng(seed, copy, item, "live-grey").uniform() < grey)
    return LiveDraw(side, to_grey, blur_draw(augmentation_rng(seed, copy, item, "live-blur"), blur))


def live_augmentation(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig | None = None, *,
                      side: float | None = None, grey: bool = False, blur: float | None = None) -> np.ndarray:
    """A live capture shrunk to the shortest side ``side`` (None: as it is; a gate camera that sees
    the face small), blurred by a Gaussian of ``blur`` x its (new) shortest side (None: not; an
    out-of-focus camera), through :func:`augment_image` with ``rng``, then grey when ``grey`` (a
    camera without colour)."""
    import cv2

    small = image if side is None else shrink_to_side(image, side)
    if blur is not None:
        small = cv2.GaussianBlur(np.ascontiguousarray(small), (0, 0), float(blur) * min(small.shape[:2]))
    out = augment_image(small, rng, config)
    return grey_rgb(out) if grey else out


def augmented_pairs(pairs, copies: int, *, seed: int = 0, suspect_profile: str = "attacker",
                    config: AugmentConfig | None = None, low_res: float = 0.0, low_res_side=LOW_RES_SIDE,
                    grey: float = 0.0, blur: float = 0.0) -> list:
    """``copies`` augmented views of every pair (only the new pairs, ids ``<id>#aug<k>``; labels,
    species and subjects kept). Copy ``k`` of pair ``p``: suspect through
    :func:`suspect_augmentation` with ``augmentation_rng(seed, k, p.id, "suspect")``, live
    capture through :func:`augment_image` with ``augmentation_rng(seed, k, p.id, "live")``.
    The same distribution for bona fide and attack suspects, so no file history separates them.

    ``low_res``: the probability that a view's live capture is first shrunk (area averaging) to a
    shortest side drawn log-uniformly from ``low_res_side`` pixels (a gate camera that sees the face
    small; the default 100-240 px puts the eyes of the face-centred ``gate`` captures about 20-50 px
    apart), drawn from ``augmentation_rng(seed, k, p.id, "live-lowres")``. ``grey``: the probability
    that the live capture comes out grey (a camera without colour: the luma of the augmented view), drawn from
    ``augmentation_rng(seed, k, p.id, "live-grey")``. ``blur``: the probability that the live capture
    is out of focus (:func:`blur_draw`: a Gaussian of 0.4-2 % of its shortest side, after the shrink),
    drawn from ``augmentation_rng(seed, k, p.id, "live-blur")``. The other draws do not change with
    these, and a view without any of them keeps its identity (and cached features)."""
    from madpad.mad.base import Pair
    from madpad.mad.chains import check_profile

    copies = int(copies)
    if copies < 0:
        raise ValueError(f"augment copies must be >= 0; got {copies}")
    check_profile(suspect_profile)
    low_res, low_res_side = check_low_res(low_res, low_res_side)
    grey, blur = check_probability(grey, "augment_grey"), check_probability(blur, "augment_blur")
    cfg = config or AugmentConfig()
    tag = f"aug-v1|{suspect_profile}|{cfg}"
    out = []
    for k in range(1, copies + 1):
        for p in pairs:
            draw = live_draws(seed, k, p.id, low_res=low_res, low_res_side=low_res_side, grey=grey, blur=blur)

            def sus(img, _k=k, _id=p.id):
                return suspect_augmentation(img, augmentation_rng(seed, _k, _id, "suspect"), profile=suspect_profile,
                                            config=cfg)

            def live(img, _k=k, _id=p.id, _d=draw):
                return live_augmentation(img, augmentation_rng(seed, _k, _id, "live"), cfg, side=_d.side,
                                         grey=_d.grey, blur=_d.blur)

            ident = f"{tag}|seed={int(seed)}|copy={k}|pair={p.id}"
            live_ident = (ident + "|live" + ("" if draw.side is None else f"|lowres-side={draw.side:.2f}")
                          + ("|no-colour" if draw.grey else "")
                          + ("" if draw.blur is None else f"|blur-side={draw.blur:.5f}"))
            out.append(Pair(id=f"{p.id}#aug{k}", suspect=AugmentedView(p.suspect, ident + "|suspect", sus),
                            live=AugmentedView(p.live, live_ident, live), label=p.label, species=p.species,
                            subjects=p.subjects, extra={**p.extra, "augment_copy": k}))
    return out


def grey_rgb(image: np.ndarray) -> np.ndarray:
    """The image without colour (luma in three equal channels, uint8)."""
    import cv2

    g = cv2.cvtColor(np.asarray(image, dtype=np.uint8), cv2.COLOR_RGB2GRAY)
    return cv2.cvtColor(g, cv2.COLOR_GRAY2RGB)


def mirror(image: np.ndarray) -> np.ndarray:
    """The image mirrored left-right."""
    return np.ascontiguousarray(np.asarray(image)[:, ::-1])


def mirrored_pairs(pairs) -> list:
    """Every pair with both images mirrored left-right (ids ``<id>#mirror``; labels, species and
    subjects kept): the second view of the test-time averaging of the trained FR detectors
    (``tta: mirror``). Features are cached per mirrored image, as for the augmented views."""
    from madpad.mad.base import Pair

    return [Pair(id=f"{p.id}#mirror", suspect=AugmentedView(p.suspect, "hflip", mirror),
                 live=None if p.live is None else AugmentedView(p.live, "hflip", mirror), label=p.label,
                 species=p.species, subjects=p.subjects, extra=dict(p.extra)) for p in pairs]


__all__ = ["BLUR_SIDE_FRACTION", "LOW_RES_SIDE", "AugmentConfig", "AugmentedView", "LiveDraw", "augment_image",
           "augmentation_rng", "augmented_pairs", "blur_draw", "check_live_draws", "check_low_res", "check_probability",
           "grey_rgb", "live_augmentation", "live_draws", "low_res_draw", "mirror", "mirrored_pairs", "shrink_to_side",
           "suspect_augmentation"]

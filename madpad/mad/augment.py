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
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

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


def suspect_augmentation(image: np.ndarray, rng: np.random.Generator, *, profile: str = "attacker",
                         config: AugmentConfig | None = None) -> np.ndarray:
    """A suspect image through a chain drawn from ``profile`` (:func:`madpad.mad.chains.random_chain`)
    and then :func:`augment_image`; every draw from ``rng``."""
    from madpad.mad.chains import apply_chain, random_chain

    out = apply_chain(image, random_chain(rng, profile), rng)
    return augment_image(out, rng, config)


def augmented_pairs(pairs, copies: int, *, seed: int = 0, suspect_profile: str = "attacker",
                    config: AugmentConfig | None = None) -> list:
    """``copies`` augmented views of every pair (only the new pairs, ids ``<id>#aug<k>``; labels,
    species and subjects kept). Copy ``k`` of pair ``p``: suspect through
    :func:`suspect_augmentation` with ``augmentation_rng(seed, k, p.id, "suspect")``, live
    capture through :func:`augment_image` with ``augmentation_rng(seed, k, p.id, "live")``.
    The same distribution for bona fide and attack suspects, so no file history separates them."""
    from madpad.mad.base import Pair
    from madpad.mad.chains import check_profile

    copies = int(copies)
    if copies < 0:
        raise ValueError(f"augment copies must be >= 0; got {copies}")
    check_profile(suspect_profile)
    cfg = config or AugmentConfig()
    tag = f"aug-v1|{suspect_profile}|{cfg}"
    out = []
    for k in range(1, copies + 1):
        for p in pairs:
            def sus(img, _k=k, _id=p.id):
                return suspect_augmentation(img, augmentation_rng(seed, _k, _id, "suspect"), profile=suspect_profile,
                                            config=cfg)

            def live(img, _k=k, _id=p.id):
                return augment_image(img, augmentation_rng(seed, _k, _id, "live"), cfg)

            ident = f"{tag}|seed={int(seed)}|copy={k}|pair={p.id}"
            out.append(Pair(id=f"{p.id}#aug{k}", suspect=AugmentedView(p.suspect, ident + "|suspect", sus),
                            live=AugmentedView(p.live, ident + "|live", live), label=p.label, species=p.species,
                            subjects=p.subjects, extra={**p.extra, "augment_copy": k}))
    return out


__all__ = ["AugmentConfig", "AugmentedView", "augment_image", "augmentation_rng", "augmented_pairs",
           "suspect_augmentation"]

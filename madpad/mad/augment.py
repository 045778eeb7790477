"""Training-time image augmentation for morph detectors (seeded, numpy + OpenCV only).

Every epoch of training should see each image under different, realistic changes, so that a
detector learns morphing rather than one file history: photometric changes (brightness,
contrast, saturation, gamma), small geometric changes (rotation, scale, shift), blur, sensor
noise and JPEG recompression. :func:`augment_image` applies one random draw of them to an RGB
uint8 image; :func:`augmentation_rng` gives the generator for (seed, epoch, item, role), so a
run is reproducible and a resumed run sees exactly the draws an uninterrupted run would.

Used by the foundation detector (``augment`` option) and written for reuse by the
FR-embedding detectors (apply it to the image before face analysis).
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


__all__ = ["AugmentConfig", "augment_image", "augmentation_rng"]

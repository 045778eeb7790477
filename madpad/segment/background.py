"""Background replacement by soft alpha compositing.

``out = matte * image + (1 - matte) * background`` per pixel, in float, rounded once to
uint8. A soft matte (values between 0 and 1 at hair strands and edges) blends the hair with
the new background instead of cutting it; a binary matte gives a hard cut-out.

Backgrounds:

* ``"white"``: RGB (255, 255, 255);
* ``"icao_grey"``: RGB (200, 200, 200), :data:`ICAO_LIGHT_GREY`. ICAO Doc 9303 and
  ISO/IEC 39794-5 ask for a plain, uniform, light-coloured background without fixing an RGB
  value; this light neutral grey is madpad's documented choice (pass an ``(r, g, b)`` tuple
  for another one);
* ``"blur"``: the original background blurred with a Gaussian of ``blur_sigma`` x the image's
  longer side, computed as a matte-weighted (normalised) blur so the person does not bleed
  into the blurred background as a halo;
* an ``(r, g, b)`` tuple of 0..255 values, or an RGB uint8 image of the same size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from madpad.segment.base import check_image, check_matte

WHITE = (255, 255, 255)
#: The light grey used for ``background="icao_grey"`` (see the module docstring).
ICAO_LIGHT_GREY = (200, 200, 200)
NAMED_BACKGROUNDS = {"white": WHITE, "icao_grey": ICAO_LIGHT_GREY}


def _blurred_background(img: np.ndarray, alpha: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    bg_w = (1.0 - alpha)[..., None]
    num = cv2.GaussianBlur(img.astype(np.float32) * bg_w, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    den = cv2.GaussianBlur(bg_w, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    if den.ndim == 2:
        den = den[..., None]
    plain = cv2.GaussianBlur(img.astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    # where almost no background is nearby (deep inside the person) fall back to the plain blur;
    # those pixels are covered by the person anyway
    return np.where(den > 1e-3, num / np.maximum(den, 1e-3), plain)


def background_canvas(image: np.ndarray, matte: np.ndarray, background: Any, *, blur_sigma: float = 0.02) -> np.ndarray:
    """The float32 (H, W, 3) background that :func:`replace_background` composites onto."""
    h, w = image.shape[:2]
    if isinstance(background, str):
        key = background.strip().lower()
        if key == "blur":
            if not float(blur_sigma) > 0:
                raise ValueError(f"blur_sigma must be > 0; got {blur_sigma}")
            return _blurred_background(image, matte, float(blur_sigma) * max(h, w))
        if key not in NAMED_BACKGROUNDS:
            raise ValueError(f"unknown background {background!r}; use one of "
                             f"{sorted([*NAMED_BACKGROUNDS, 'blur'])} or an (r, g, b) tuple")
        colour = NAMED_BACKGROUNDS[key]
        return np.broadcast_to(np.asarray(colour, np.float32), (h, w, 3))
    arr = np.asarray(background)
    if arr.ndim == 1:
        if arr.shape != (3,) or not np.all(np.isfinite(arr.astype(np.float64))) or arr.min() < 0 or arr.max() > 255:
            raise ValueError(f"background colour must be (r, g, b) with values 0..255; got {background!r}")
        return np.broadcast_to(arr.astype(np.float32), (h, w, 3))
    if arr.shape != (h, w, 3):
        raise ValueError(f"background image must have the image's shape {(h, w, 3)}; got {arr.shape}")
    return check_image(arr).astype(np.float32)


def replace_background(image, matte, *, background: Any = "white", blur_sigma: float = 0.02) -> np.ndarray:
    """Composite the person (``matte`` = 1) over a new ``background``; RGB uint8 result.

    ``image``: RGB uint8 (H, W, 3); ``matte``: float (H, W) in [0, 1] (1 = person) or uint8
    0..255. ``background``: ``"white"``, ``"icao_grey"``, ``"blur"``, an ``(r, g, b)`` tuple or
    an RGB image of the same size. Pixels with matte 1 keep their values exactly; pixels with
    matte 0 become the background.
    """
    img = check_image(image)
    alpha = check_matte(matte, img.shape[:2])
    bg = background_canvas(img, alpha, background, blur_sigma=blur_sigma)
    a = alpha[..., None]
    out = a * img.astype(np.float32) + (1.0 - a) * bg
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)

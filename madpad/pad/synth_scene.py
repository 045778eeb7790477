"""Scene composition of the synthetic T-shirt attacks (:mod:`madpad.pad.synth`): the extended
canvas with its synthesised torso and shirt, the printed face (crop, textile-print degradation,
perspective warp onto the chest), the occluders of the wearer's face (board, hair texture), the
"head out of frame" crop and the two-person composition.

Pure image functions on RGB uint8 arrays; every random choice comes from the ``rng`` passed in.
The species, the configuration (:class:`madpad.pad.synth.SynthConfig`), the sources, the set
generator and the CLI are in :mod:`madpad.pad.synth`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from madpad.errors import FaceNotFoundError

if TYPE_CHECKING:
    from madpad.pad.synth import SynthConfig

# --------------------------------------------------------------------------- image helpers
def _cv2():
    from madpad.io import optional_import

    return optional_import("cv2", extra="core", purpose="the T-shirt attack generator")


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    cv2 = _cv2()
    interp = cv2.INTER_AREA if w < img.shape[1] else cv2.INTER_CUBIC
    return cv2.resize(img, (int(w), int(h)), interpolation=interp)


def _smoothstep(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _median_colour(img: np.ndarray, y0, y1, x0, x1) -> np.ndarray:
    h, w = img.shape[:2]
    y0, y1 = int(np.clip(y0, 0, h - 1)), int(np.clip(y1, 1, h))
    x0, x1 = int(np.clip(x0, 0, w - 1)), int(np.clip(x1, 1, w))
    patch = img[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)].reshape(-1, 3).astype(np.float64)
    return np.median(patch, axis=0)


@dataclass
class Canvas:
    """An extended canvas and where the wearer photo and face lie in it (output pixels)."""

    image: np.ndarray          # RGB uint8
    shading: np.ndarray        # float32 (H, W) shirt luminance factor (1 outside the shirt)
    shirt_mask: np.ndarray     # float32 (H, W) 1 on synthesised shirt
    photo_box: tuple[int, int, int, int]
    eyes: np.ndarray           # (2, 2)
    eye_dist: float
    face_box: np.ndarray       # approx. wearer face (x0, y0, x1, y1)
    torso_top: float           # y of the photo's bottom edge (the print goes below)
    shirt_colour: np.ndarray
    hair_colour: np.ndarray


def extend_canvas(photo: np.ndarray, eyes: np.ndarray, cfg: SynthConfig, rng: np.random.Generator) -> Canvas:
    """Scale the photo and synthesise background + torso around/below it (see module docstring)."""
    cv2 = _cv2()
    H0, W0 = photo.shape[:2]
    Wc0 = W0 * (1 + 2 * cfg.pad_x)
    s = cfg.width / Wc0
    pw, ph = max(1, round(W0 * s)), max(1, round(H0 * s))
    small = _resize(photo, pw, ph).astype(np.float32)
    ox = (cfg.width - pw) // 2
    Hc = round(ph * (1 + cfg.ext_y))
    Wc = int(cfg.width)
    e = eyes * s + np.array([ox, 0.0])
    d = float(np.linalg.norm(e[1] - e[0]))
    cx = float(e[:, 0].mean())
    ey = float(e[:, 1].mean())

    # background: top-corner colour with a vertical gradient to the mid-height corners
    cw = max(2, pw // 12)
    top = (_median_colour(small, 0, ph * 0.08, 0, cw) + _median_colour(small, 0, ph * 0.08, pw - cw, pw)) / 2
    mid = (_median_colour(small, ph * 0.45, ph * 0.55, 0, cw) + _median_colour(small, ph * 0.45, ph * 0.55, pw - cw, pw)) / 2
    yy = np.arange(Hc, dtype=np.float32)[:, None]
    t = np.clip(yy / max(ph * 0.5, 1), 0, 1)[..., None]
    bg = (top[None, None, :] * (1 - t) + mid[None, None, :] * t) * np.ones((1, Wc, 1), np.float32)
    bg += rng.normal(0, 1.5, size=bg.shape).astype(np.float32)

    # shirt colour: the photo's bottom edge over the shoulders (away from the neck)
    band = (ph * 0.97, ph)
    shirt = np.median(np.stack([_median_colour(small, *band, pw * 0.02, pw * 0.15),
                                _median_colour(small, *band, pw * 0.85, pw * 0.98)]), axis=0)
    hair = _hair_colour(small, cx, ey, d)

    # torso silhouette: shirt where |x - cx| <= half(y)
    xx = np.arange(Wc, dtype=np.float32)[None, :]
    edge_l, edge_r = _shoulder_rows(small, shirt)
    half_bottom = 0.5 * pw * cfg.shoulder_span
    y_sh = ph * 0.9  # shoulder top at the photo's side edges when the photo shows none
    y_l = ph * edge_l if edge_l is not None else y_sh
    y_r = ph * edge_r if edge_r is not None else y_sh
    # in the side pads the shoulder line droops outwards from where the photo's edge shows shirt
    mask = np.zeros((Hc, Wc), np.float32)
    dist_l = (ox - xx)  # > 0 left of the photo
    dist_r = (xx - (ox + pw - 1))
    top_l = y_l + 0.35 * np.maximum(dist_l, 0)
    top_r = y_r + 0.35 * np.maximum(dist_r, 0)
    below = (yy - ph) / max(ph * cfg.ext_y, 1)
    half = 0.5 * pw + (half_bottom - 0.5 * pw) * _smoothstep(below / 0.3 + 0.3)
    inside = np.abs(xx - cx) <= half
    shirt_side = ((dist_l > 0) & (yy >= top_l)) | ((dist_r > 0) & (yy >= top_r))
    mask[(yy >= ph) & inside] = 1.0
    mask[shirt_side & inside] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=1.2)

    # shading: roundness + vertical gradient + soft folds
    rel = (xx - cx) / np.maximum(half, 1)
    shading = 1.0 - 0.16 * np.clip(rel, -1, 1) ** 2 - 0.10 * np.clip((yy - ph * 0.8) / max(Hc - ph * 0.8, 1), 0, 1)
    for _ in range(3):
        ang = rng.uniform(0, np.pi)
        freq = rng.uniform(1.5, 4.0) / Wc
        phase = rng.uniform(0, 2 * np.pi)
        shading = shading + 0.025 * np.sin(2 * np.pi * freq * (np.cos(ang) * xx + np.sin(ang) * yy) + phase)
    shading = shading.astype(np.float32)

    canvas = bg.copy()
    shirt_img = shirt[None, None, :] * shading[..., None]
    canvas = canvas * (1 - mask[..., None]) + shirt_img * mask[..., None]
    # paste the photo, feathering its left/right edges into the synthetic background
    alpha = np.ones((ph, pw), np.float32)
    if ox > 0:
        feather = max(2, pw // 40)
        ramp = np.linspace(0, 1, feather, dtype=np.float32)
        alpha[:, :feather] *= ramp[None, :]
        alpha[:, -feather:] *= ramp[::-1][None, :]
    region = canvas[:ph, ox:ox + pw]
    canvas[:ph, ox:ox + pw] = region * (1 - alpha[..., None]) + small * alpha[..., None]
    # blend the photo's bottom rows into the synthetic shirt below
    nb = max(2, ph // 30)
    last = small[-1:, :, :]
    for i in range(min(nb, Hc - ph)):
        a = 1 - (i + 1) / (nb + 1)
        row = canvas[ph + i, ox:ox + pw]
        m = mask[ph + i, ox:ox + pw, None]
        canvas[ph + i, ox:ox + pw] = row * (1 - a * m) + last[0] * (a * m)
    full_shirt = mask.copy()
    full_shirt[:ph, ox:ox + pw] *= (1 - alpha)
    face_box = np.array([cx - 1.3 * d, ey - 1.5 * d, cx + 1.3 * d, ey + 1.95 * d])
    # the print goes below the photo's bottom edge; with ext_y=0 (a photo that already shows the
    # chest, e.g. skimage's astronaut) it goes on the photo's own chest, ~2.6 eye distances below the eyes
    torso_top = float(ph) if cfg.ext_y > 0 else float(min(ph, ey + 2.6 * d))
    return Canvas(image=np.clip(canvas, 0, 255).astype(np.uint8), shading=shading, shirt_mask=full_shirt,
                  photo_box=(ox, 0, ox + pw, ph), eyes=e, eye_dist=d, face_box=face_box, torso_top=torso_top,
                  shirt_colour=shirt, hair_colour=hair)


def _hair_colour(small: np.ndarray, cx: float, ey: float, d: float) -> np.ndarray:
    """Median of the darker third of the pixels in a band above the forehead (hair is usually darker
    than the plain backgrounds and skin around it)."""
    h, w = small.shape[:2]
    y0, y1 = int(np.clip(ey - 2.2 * d, 0, h - 1)), int(np.clip(ey - 1.0 * d, 1, h))
    x0, x1 = int(np.clip(cx - 1.2 * d, 0, w - 1)), int(np.clip(cx + 1.2 * d, 1, w))
    px = small[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)].reshape(-1, 3).astype(np.float64)
    lum = px.mean(axis=1)
    dark = px[lum <= np.quantile(lum, 0.33)]
    return np.median(dark if len(dark) else px, axis=0)


def _shoulder_rows(small: np.ndarray, shirt: np.ndarray) -> tuple[float | None, float | None]:
    """Relative y where the photo's left/right edge columns start showing the shirt (contiguous to
    the bottom), or None when the edge at the bottom is not shirt-coloured."""
    h = small.shape[0]
    out = []
    for col in (small[:, :3].mean(axis=1), small[:, -3:].mean(axis=1)):
        close = np.linalg.norm(col - shirt[None, :], axis=1) < 40.0
        if not close[-1]:
            out.append(None)
            continue
        y = h - 1
        while y > 0 and close[y - 1]:
            y -= 1
        out.append(y / h)
    return out[0], out[1]


def printed_face_crop(image: np.ndarray, eyes: np.ndarray, *, eye_dist_px: float) -> np.ndarray:
    """Eye-aligned crop of a face (3.0 x 3.3 eye distances, eyes at 40% of the height) at the
    requested eye distance in pixels."""
    cv2 = _cv2()
    e = np.asarray(eyes, dtype=np.float64)
    d = float(np.linalg.norm(e[1] - e[0]))
    if d < 2:
        raise FaceNotFoundError("printed face: eyes too close together to align")
    cw, ch = round(3.0 * eye_dist_px), round(3.3 * eye_dist_px)
    dst = np.array([[cw / 2 - eye_dist_px / 2, 0.40 * ch], [cw / 2 + eye_dist_px / 2, 0.40 * ch]])
    v_src, v_dst = e[1] - e[0], dst[1] - dst[0]
    scale = np.linalg.norm(v_dst) / np.linalg.norm(v_src)
    ang = np.arctan2(v_dst[1], v_dst[0]) - np.arctan2(v_src[1], v_src[0])
    c, s_ = scale * np.cos(ang), scale * np.sin(ang)
    R = np.array([[c, -s_], [s_, c]])
    tvec = dst[0] - R @ e[0]
    M = np.hstack([R, tvec[:, None]])
    return cv2.warpAffine(image, M, (cw, ch), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def print_degrade(crop: np.ndarray, cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Textile-print look: lower saturation and contrast, lifted blacks, dot pattern, noise, blur."""
    cv2 = _cv2()
    x = crop.astype(np.float32)
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(*cfg.saturation)
    m = x.mean()
    x = m + (x - m) * rng.uniform(*cfg.contrast)
    x = cfg.black_lift + x * (255.0 - cfg.black_lift) / 255.0
    h, w = x.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    p = cfg.halftone_period
    theta = np.deg2rad(15.0)
    u = np.cos(theta) * xx + np.sin(theta) * yy
    v = -np.sin(theta) * xx + np.cos(theta) * yy
    dots = np.cos(2 * np.pi * u / p) * np.cos(2 * np.pi * v / p)
    x = x * (1 + cfg.halftone * dots)[..., None]
    x = x + rng.normal(0, cfg.noise, size=x.shape).astype(np.float32)
    if cfg.blur_sigma > 0:
        x = cv2.GaussianBlur(x, (0, 0), sigmaX=cfg.blur_sigma)
    return np.clip(x, 0, 255)


def apply_print(canvas: Canvas, crop: np.ndarray, cfg: SynthConfig, rng: np.random.Generator, *,
                angle: float = 0.0, top: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Warp the degraded ``crop`` onto the chest; returns (image, quad (4, 2) TL, TR, BR, BL).

    ``angle``: in-plane rotation of the print in degrees (positive = counter-clockwise in the
    image); ``top``: the print's top edge (default: the torso top plus ``print_offset_y``)."""
    cv2 = _cv2()
    img = canvas.image.astype(np.float32)
    H, W = img.shape[:2]
    ch, cw = crop.shape[:2]
    cx = float(canvas.eyes[:, 0].mean()) + rng.uniform(-0.04, 0.04) * W
    if top is None:
        top = canvas.torso_top + rng.uniform(*cfg.print_offset_y) * canvas.torso_top
    top = min(top, H - 1.04 * ch)
    rect = np.array([[cx - cw / 2, top], [cx + cw / 2, top], [cx + cw / 2, top + ch], [cx - cw / 2, top + ch]])
    if angle:
        t = np.deg2rad(angle)
        R = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])  # y points down: CCW on screen
        c = rect.mean(axis=0)
        rect = (rect - c) @ R.T + c
    jitter = rng.normal(0, cfg.perspective * cw, size=(4, 2))
    keystone = rng.uniform(-1, 1) * cfg.perspective * cw
    jitter[[0, 3], 1] += keystone  # one side taller than the other (turned torso)
    jitter[[1, 2], 1] -= keystone
    quad = rect + jitter
    src = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], dtype=np.float32)
    Mp = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    warped = cv2.warpPerspective(crop, Mp, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    m = cv2.warpPerspective(np.ones((ch, cw), np.float32), Mp, (W, H), flags=cv2.INTER_LINEAR)
    m = cv2.GaussianBlur(m, (0, 0), sigmaX=0.8)
    shade = canvas.shading / max(float(np.median(canvas.shading[int(top):int(top + ch)])), 1e-3)
    printed = warped * shade[..., None]
    out = img * (1 - m[..., None]) + printed * m[..., None]
    return np.clip(out, 0, 255).astype(np.uint8), quad


def occlude_face(image: np.ndarray, face_box: np.ndarray, eyes: np.ndarray, d: float,
                 rng: np.random.Generator) -> np.ndarray:
    """An opaque textured board over the face, eyebrows to chin."""
    cv2 = _cv2()
    img = image.astype(np.float32)
    H, W = img.shape[:2]
    palette = np.array([[150, 110, 70], [95, 95, 100], [40, 50, 90], [200, 190, 160]], np.float32)
    colour = palette[rng.integers(len(palette))]
    ey = float(eyes[:, 1].mean())
    cx = float(eyes[:, 0].mean())
    x0, x1 = cx - 1.35 * d, cx + 1.35 * d
    y0, y1 = ey - 0.75 * d, ey + 2.0 * d
    mask = np.zeros((H, W), np.float32)
    cv2.rectangle(mask, (int(x0), int(y0)), (int(x1), int(y1)), 1.0, thickness=-1)
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=1.0)
    tex = cv2.GaussianBlur(rng.normal(0, 1, size=(H, W)).astype(np.float32), (0, 0), sigmaX=3.0)
    tex = tex / (tex.std() + 1e-6)
    yy = np.arange(H, dtype=np.float32)[:, None]
    grad = 1.0 - 0.12 * np.clip((yy - y0) / max(y1 - y0, 1), 0, 1)
    board = colour[None, None, :] * (grad * (1 + 0.05 * tex))[..., None]
    out = img * (1 - mask[..., None]) + board * mask[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def hair_over_face(image: np.ndarray, eyes: np.ndarray, d: float, hair: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Approximate a head turned away: the face ellipse becomes a streaky hair texture."""
    cv2 = _cv2()
    img = image.astype(np.float32)
    H, W = img.shape[:2]
    colour = np.asarray(hair, np.float32)
    if colour.mean() > 170:  # sampled background or very light hair: use a mid brown
        colour = np.array([95, 70, 50], np.float32)
    cx, ey = float(eyes[:, 0].mean()), float(eyes[:, 1].mean())
    mask = np.zeros((H, W), np.float32)
    cv2.ellipse(mask, (int(cx), int(ey + 0.3 * d)), (int(1.3 * d), int(1.75 * d)), 0, 0, 360, 1.0, thickness=-1)
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=0.12 * d)
    n = rng.normal(0, 1, size=(H, W)).astype(np.float32)
    streaks = cv2.GaussianBlur(n, (0, 0), sigmaX=0.6, sigmaY=0.25 * d)
    streaks = streaks / (streaks.std() + 1e-6)
    xx = np.arange(W, dtype=np.float32)[None, :]
    round_ = 1.0 - 0.25 * np.clip(((xx - cx) / (1.3 * d)) ** 2, 0, 1)
    tex = colour[None, None, :] * (round_ * (1 + 0.18 * streaks))[..., None]
    out = img * (1 - mask[..., None]) + tex * mask[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def _crop_above(img: np.ndarray, quad: np.ndarray, canvas: Canvas) -> tuple[np.ndarray, int]:
    """The frame starts just above the print (below the chin): (cropped image, rows removed)."""
    chin = float(canvas.eyes[:, 1].mean() + 2.0 * canvas.eye_dist)
    y_c = int(max(chin, quad[:, 1].min() - 0.15 * (quad[:, 1].max() - quad[:, 1].min())))
    y_c = min(y_c, int(quad[:, 1].min()) - 1)
    y_c = max(y_c, 0)
    return img[y_c:], y_c


def compose_pair(a: np.ndarray, b: np.ndarray, cfg: SynthConfig, rng: np.random.Generator
                 ) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    """Two extended canvases side by side (``a`` left): ``b`` is shifted vertically by up to
    ``pair_shift`` of the height (edges replicated), the two overlap by ``pair_overlap`` of the
    canvas width with a linear feather. Returns (image, offset of a, offset of b) as (dx, dy)."""
    H = max(a.shape[0], b.shape[0])

    def to_height(x):
        if x.shape[0] < H:
            x = np.pad(x, ((0, H - x.shape[0]), (0, 0), (0, 0)), mode="edge")
        return x

    a, b = to_height(a).astype(np.float32), to_height(b).astype(np.float32)
    dy = round(float(rng.uniform(-cfg.pair_shift, cfg.pair_shift) * H))
    if dy > 0:
        b = np.concatenate([np.repeat(b[:1], dy, axis=0), b[:-dy]], axis=0)
    elif dy < 0:
        b = np.concatenate([b[-dy:], np.repeat(b[-1:], -dy, axis=0)], axis=0)
    ov = max(2, round(float(rng.uniform(*cfg.pair_overlap) * min(a.shape[1], b.shape[1]))))
    W = a.shape[1] + b.shape[1] - ov
    out = np.zeros((H, W, 3), np.float32)
    out[:, :a.shape[1]] = a
    ramp = np.linspace(0.0, 1.0, ov, dtype=np.float32)[None, :, None]
    x0 = a.shape[1] - ov
    out[:, x0:a.shape[1]] = a[:, -ov:] * (1 - ramp) + b[:, :ov] * ramp
    out[:, a.shape[1]:] = b[:, ov:]
    return np.clip(out, 0, 255).astype(np.uint8), (0.0, 0.0), (float(x0), float(dy))

"""Geometry for landmark morphs: similarity alignment, Delaunay triangulation, piecewise-affine warps.

Pure numpy + OpenCV + scipy, no face models. Points are ``(K, 2)`` float arrays of
image coordinates ``(x, y)`` (pixel centres at integer coordinates); images are RGB
uint8 ``(H, W, 3)`` and sizes are ``(width, height)``.

The piecewise-affine warp (:class:`RemapWarpPlan`, :func:`delaunay_triangles`, ...) lives in
:mod:`madpad.face.warp` and is re-exported here. Both contributors of a morph share the target
shape, so a warp plan's triangle-index map is reused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from madpad.face.align import apply_transform, invert_transform, similarity_transform

# triangulation and the remap warp live in the face layer (shared with madpad.mad.demorph); re-exported here
from madpad.face.warp import (  # noqa: F401 (re-exported)
    RemapWarpPlan,
    border_points,
    clip_points,
    delaunay_triangles,
    triangle_affines,
)

# Indices into the 68-point (iBUG 300-W / dlib) scheme.
IBUG68_LEFT_EYE = tuple(range(36, 42))   # image-left eye (the subject's right eye)
IBUG68_RIGHT_EYE = tuple(range(42, 48))
IBUG68_JAW = tuple(range(17))
IBUG68_BROWS = tuple(range(17, 27))


# --------------------------------------------------------------------------- landmarks
def eye_centres(points: np.ndarray) -> np.ndarray:
    """Image-left and image-right eye centres ``(2, 2)`` from a landmark set.

    Understands the 68-point iBUG scheme (mean of each eye's 6 contour points), the
    5-point ArcFace order (points 0 and 1) and the 189-point FRLL/Psychomorph template
    (points 0 and 1 are the pupils).
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"landmarks must have shape (K, 2); got {pts.shape}")
    if len(pts) == 68:
        eyes = np.stack([pts[list(IBUG68_LEFT_EYE)].mean(0), pts[list(IBUG68_RIGHT_EYE)].mean(0)])
    elif len(pts) in (5, 189):
        eyes = pts[:2].copy()
    else:
        raise ValueError(f"cannot find the eyes in a {len(pts)}-point landmark set; "
                         "supported: 68 (iBUG/dlib), 5 (ArcFace order), 189 (FRLL .tem)")
    if eyes[0, 0] > eyes[1, 0]:
        eyes = eyes[::-1].copy()
    return eyes


def read_tem(path) -> np.ndarray:
    """Read the points of a Psychomorph/WebMorph ``.tem`` file (first line = point count)."""
    from pathlib import Path

    from madpad.errors import ManifestError

    p = Path(path)
    lines = p.read_text(encoding="utf-8").split("\n")
    try:
        n = int(lines[0].strip())
        pts = np.array([[float(v) for v in lines[1 + i].split()[:2]] for i in range(n)], dtype=np.float64)
    except (ValueError, IndexError) as exc:
        raise ManifestError(f"not a valid .tem landmark file ({exc})", path=p) from None
    return pts


# --------------------------------------------------------------------------- similarity transforms
# The face toolkit's closed-form least-squares fits, under the names this module's callers use.
similarity_from_points = similarity_transform
apply_affine = apply_transform
invert_affine = invert_transform


def is_identity(M: np.ndarray, *, tol: float = 1e-6) -> bool:
    return bool(np.abs(np.asarray(M) - np.array([[1.0, 0, 0], [0, 1.0, 0]])).max() < tol)


def warp_similarity(image: np.ndarray, M: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Apply the 2x3 transform ``M`` (source -> output) with bilinear sampling; pixels from outside
    the source are mirrored (replicating edge rows would smear hair touching the edge into streaks).

    An identity transform into the same size returns the image unchanged (bit-exact).
    """
    import cv2

    w, h = int(size[0]), int(size[1])
    if is_identity(M) and image.shape[:2] == (h, w):
        return image
    return cv2.warpAffine(image, np.asarray(M, dtype=np.float64), (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


# --------------------------------------------------------------------------- piecewise-affine warps
class TriangleWarpPlan:
    """Reference implementation: one ``cv2.warpAffine`` per triangle on its bounding box, pasted
    through the triangle's mask (slower; used to cross-check :class:`RemapWarpPlan`). Pixels outside
    every triangle keep the source pixel at the same position."""

    def __init__(self, dst_points: np.ndarray, triangles: np.ndarray, size: tuple[int, int]):
        self.dst_points = np.asarray(dst_points, dtype=np.float64)
        self.triangles = np.asarray(triangles, dtype=np.int32)
        self.size = (int(size[0]), int(size[1]))
        self._remap = RemapWarpPlan(dst_points, triangles, size)  # same pixel->triangle assignment

    def __call__(self, image: np.ndarray, src_points: np.ndarray) -> np.ndarray:
        import cv2

        w, h = self.size
        out = np.array(image[:h, :w], copy=True) if image.shape[:2] == (h, w) else np.zeros((h, w, 3), np.uint8)
        A = triangle_affines(src_points, self.dst_points, self.triangles)
        index = self._remap.index
        for t, tri in enumerate(self.triangles):
            d = self.dst_points[tri]
            x0, y0 = np.floor(d.min(0)).astype(int)
            x1, y1 = np.ceil(d.max(0)).astype(int) + 1
            x0, y0 = max(x0, 0), max(y0, 0)
            x1, y1 = min(x1, w), min(y1, h)
            if x1 <= x0 or y1 <= y0:
                continue
            # dst->src affine expressed for the box origin
            M = A[t].copy()
            M[:, 2] += M[:, 0] * x0 + M[:, 1] * y0
            patch = cv2.warpAffine(image, M, (x1 - x0, y1 - y0),
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT_101)
            mask = index[y0:y1, x0:x1] == t
            out[y0:y1, x0:x1][mask] = patch[mask]
        return out


WarpPlanFactory = Callable[[np.ndarray, np.ndarray, Sequence[int]], Callable[[np.ndarray, np.ndarray], np.ndarray]]

WARPS: dict[str, WarpPlanFactory] = {"remap": RemapWarpPlan, "triangle": TriangleWarpPlan}


def get_warp(name: str) -> WarpPlanFactory:
    from madpad.errors import UnknownComponentError

    try:
        return WARPS[name]
    except KeyError:
        raise UnknownComponentError(f"warp {name!r} is not known; available: {sorted(WARPS)}") from None


# --------------------------------------------------------------------------- masks and blending
def polygon_mask(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Filled convex hull of ``points`` as a float32 mask in {0, 1}."""
    import cv2

    w, h = size
    mask = np.zeros((h, w), dtype=np.uint8)
    hull = cv2.convexHull(np.rint(np.asarray(points, dtype=np.float64) * 16).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_AA, shift=4)
    return mask.astype(np.float32)


def feather_mask(mask: np.ndarray, *, erode_px: float, blur_px: float) -> np.ndarray:
    """Erode a binary mask by ``erode_px`` (Euclidean distance) and soften its edge with a Gaussian
    of sigma ``blur_px`` (the feathered edge then lies inside the original mask)."""
    import cv2

    m = (np.asarray(mask) > 0.5).astype(np.uint8)
    if erode_px > 0:
        dist = cv2.distanceTransform(m, cv2.DIST_L2, 5)
        m = (dist > float(erode_px)).astype(np.uint8)
    out = m.astype(np.float32)
    if blur_px > 0:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=float(blur_px), sigmaY=float(blur_px))
    return np.clip(out, 0.0, 1.0)


def alpha_blend(image_a: np.ndarray, image_b: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) * a + alpha * b`` rounded to uint8 (alpha = weight of b). alpha 0 / 1 return
    ``a`` / ``b`` exactly."""
    import cv2

    if alpha <= 0.0:
        return np.array(image_a, copy=True)
    if alpha >= 1.0:
        return np.array(image_b, copy=True)
    return cv2.addWeighted(image_a, 1.0 - float(alpha), image_b, float(alpha), 0.0)


def mask_blend(foreground: np.ndarray, background: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-pixel ``mask * fg + (1 - mask) * bg`` (mask float (H, W) in [0, 1])."""
    m = np.asarray(mask, dtype=np.float32)[..., None]
    out = m * foreground.astype(np.float32) + (1.0 - m) * background.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def laplacian_blend(foreground: np.ndarray, background: np.ndarray, mask: np.ndarray, *, levels: int = 5) -> np.ndarray:
    """Multi-band (Laplacian pyramid) blend: low frequencies blend over a wide band, fine detail
    over a narrow one, so a seam leaves neither a hard edge nor a double contour."""
    import cv2

    h, w = mask.shape[:2]
    levels = int(max(1, min(levels, int(np.log2(max(1, min(h, w)))) - 2)))
    fg = foreground.astype(np.float32)
    bg = background.astype(np.float32)
    m = np.asarray(mask, dtype=np.float32)
    gm = [m]
    lf, lb = [], []
    cf, cb = fg, bg
    for _ in range(levels):
        df, db = cv2.pyrDown(cf), cv2.pyrDown(cb)
        size = (cf.shape[1], cf.shape[0])
        lf.append(cf - cv2.pyrUp(df, dstsize=size))
        lb.append(cb - cv2.pyrUp(db, dstsize=size))
        gm.append(cv2.pyrDown(gm[-1]))
        cf, cb = df, db
    out = gm[levels][..., None] * cf + (1 - gm[levels][..., None]) * cb
    for lvl in range(levels - 1, -1, -1):
        size = (lf[lvl].shape[1], lf[lvl].shape[0])
        out = cv2.pyrUp(out, dstsize=size)
        g = gm[lvl][..., None]
        out = out + g * lf[lvl] + (1 - g) * lb[lvl]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def poisson_blend(foreground: np.ndarray, background: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Poisson (gradient-domain) blend with ``cv2.seamlessClone`` (NORMAL_CLONE) inside ``mask > 0.5``."""
    import cv2

    m = (np.asarray(mask) > 0.5).astype(np.uint8) * 255
    ys, xs = np.nonzero(m)
    if len(xs) == 0:
        return np.array(background, copy=True)
    # seamlessClone needs the mask's bounding box strictly inside the image
    m[[0, -1], :] = 0
    m[:, [0, -1]] = 0
    ys, xs = np.nonzero(m)
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    center = (int((x0 + x1 + 1) // 2), int((y0 + y1 + 1) // 2))
    fg = cv2.cvtColor(foreground, cv2.COLOR_RGB2BGR)
    bg = cv2.cvtColor(background, cv2.COLOR_RGB2BGR)
    out = cv2.seamlessClone(fg, bg, m, center, cv2.NORMAL_CLONE)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def match_colour_lab(source: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift/scale ``source``'s Lab channels so that their mean and standard deviation inside
    ``mask`` match ``reference``'s inside the same mask (Reinhard-style transfer)."""
    import cv2

    m = np.asarray(mask) > 0.5
    if m.sum() < 16:
        return np.array(source, copy=True)
    src = cv2.cvtColor(source.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2Lab)
    # statistics from every second pixel of the mask (plenty for a mean and a deviation)
    step = 2 if m[::2, ::2].sum() >= 16 else 1
    m2 = m[::step, ::step]
    sub_s = src[::step, ::step][m2]
    sub_r = cv2.cvtColor(np.ascontiguousarray(reference[::step, ::step]).astype(np.float32) * (1.0 / 255.0),
                         cv2.COLOR_RGB2Lab)[m2]
    ms, ss = sub_s.mean(0), sub_s.std(0)
    mr, sr = sub_r.mean(0), sub_r.std(0)
    gain = np.where(ss > 1e-6, sr / np.maximum(ss, 1e-6), 1.0).astype(np.float32)
    out = (src - ms) * gain + mr
    rgb = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def mask_bbox(mask: np.ndarray, *, pad: int = 0) -> tuple[slice, slice] | None:
    """``(rows, cols)`` slices of the bounding box of ``mask > 0`` grown by ``pad`` pixels (clipped
    to the image), or None for an empty mask."""
    ys = np.flatnonzero(np.asarray(mask).max(axis=1) > 0)
    if len(ys) == 0:
        return None
    xs = np.flatnonzero(np.asarray(mask).max(axis=0) > 0)
    h, w = mask.shape[:2]
    return (slice(max(0, ys[0] - pad), min(h, ys[-1] + 1 + pad)), slice(max(0, xs[0] - pad), min(w, xs[-1] + 1 + pad)))


BLENDS = {"laplacian": laplacian_blend, "poisson": poisson_blend, "feather": mask_blend}
COLOUR_TRANSFERS = {"lab": match_colour_lab, "none": None}

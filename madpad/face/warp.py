"""Piecewise-affine warps between two landmark sets (the geometry a landmark morph and a demorph share).

Pure numpy + OpenCV + scipy, no face models. Points are ``(K, 2)`` float arrays of image
coordinates ``(x, y)``; images are RGB uint8 ``(H, W, 3)`` and sizes ``(width, height)``.
The warp is done backwards: for every output pixel we know which triangle of the target shape
covers it (a triangle-index map rasterised once per target shape), map it with that triangle's
affine transform into the source image and sample there (``cv2.remap``).
Used by :mod:`madpad.morph.warp` (morphs) and :mod:`madpad.mad.demorph` (demorphing).
"""

from __future__ import annotations

import numpy as np


# --------------------------------------------------------------------------- triangulation
def border_points(size: tuple[int, int], *, per_side: int = 3) -> np.ndarray:
    """Points along the image border: ``per_side`` points on each side including the corners
    (``per_side=3`` gives the 4 corners and 4 edge midpoints). They stay fixed in a morph, so the
    triangulation covers the whole frame."""
    if per_side < 2:
        raise ValueError(f"per_side must be >= 2 (the corners); got {per_side}")
    w, h = int(size[0]), int(size[1])
    xs = np.linspace(0, w - 1, per_side)
    ys = np.linspace(0, h - 1, per_side)
    pts = [(x, 0.0) for x in xs] + [(x, h - 1.0) for x in xs]
    pts += [(0.0, y) for y in ys[1:-1]] + [(w - 1.0, y) for y in ys[1:-1]]
    return np.asarray(pts, dtype=np.float64)


def delaunay_triangles(points: np.ndarray, *, min_area: float = 1e-3) -> np.ndarray:
    """Delaunay triangulation of ``points`` -> ``(T, 3)`` int32 vertex indices (degenerate
    triangles with area < ``min_area`` px^2 removed)."""
    from scipy.spatial import Delaunay

    pts = np.asarray(points, dtype=np.float64)
    # duplicate points make qhull drop vertices; jitter-free fix: QJ is not deterministic in
    # a way we want, so require distinct points instead.
    tri = Delaunay(pts).simplices.astype(np.int32)
    p = pts[tri]
    area = 0.5 * np.abs((p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1])
                        - (p[:, 2, 0] - p[:, 0, 0]) * (p[:, 1, 1] - p[:, 0, 1]))
    return tri[area >= min_area]


def clip_points(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    pts = np.asarray(points, dtype=np.float64).copy()
    pts[:, 0] = np.clip(pts[:, 0], 0, w - 1)
    pts[:, 1] = np.clip(pts[:, 1], 0, h - 1)
    return pts


def triangle_affines(src_points: np.ndarray, dst_points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Per-triangle affine maps **from the destination triangle to the source triangle**,
    ``(T, 2, 3)``: ``src = A[t] @ [x_dst, y_dst, 1]``."""
    s = np.asarray(src_points, dtype=np.float64)[triangles]  # (T,3,2)
    d = np.asarray(dst_points, dtype=np.float64)[triangles]
    D = np.concatenate([d, np.ones(d.shape[:2] + (1,))], axis=2)  # (T,3,3)
    coef = np.linalg.solve(D, s)  # (T,3,2): [x y 1] @ coef = src
    return np.transpose(coef, (0, 2, 1))


# --------------------------------------------------------------------------- piecewise-affine warps
class RemapWarpPlan:
    """Backward piecewise-affine warp onto one target shape, vectorised with ``cv2.remap``.

    ``plan = RemapWarpPlan(dst_points, triangles, size)`` rasterises the triangle-index map
    once; ``plan(image, src_points)`` warps an image whose landmarks are ``src_points``
    (same indexing as ``dst_points``) onto the target shape. Pixels covered by no triangle
    (outside the convex hull of the target points) are sampled at the same position (identity).
    """

    def __init__(self, dst_points: np.ndarray, triangles: np.ndarray, size: tuple[int, int]):
        import cv2

        self.dst_points = np.asarray(dst_points, dtype=np.float64)
        self.triangles = np.asarray(triangles, dtype=np.int32)
        self.size = (int(size[0]), int(size[1]))
        w, h = self.size
        index = np.full((h, w), -1, dtype=np.int32)
        shift = 4
        scaled = np.rint(self.dst_points * (1 << shift)).astype(np.int32)
        for t, tri in enumerate(self.triangles):
            cv2.fillConvexPoly(index, scaled[tri], int(t), lineType=cv2.LINE_8, shift=shift)
        self.index = index
        # index T (one past the last triangle) = identity, for uncovered pixels
        self._lut_index = np.where(index < 0, len(self.triangles), index)
        self._xs = np.arange(w, dtype=np.float32)[None, :]
        self._ys = np.arange(h, dtype=np.float32)[:, None]

    def maps(self, src_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        A = triangle_affines(src_points, self.dst_points, self.triangles)  # (T,2,3)
        A = np.concatenate([A, np.array([[[1.0, 0, 0], [0, 1.0, 0]]])], axis=0).astype(np.float32)
        idx = self._lut_index
        map_x = A[:, 0, 0][idx] * self._xs + A[:, 0, 1][idx] * self._ys + A[:, 0, 2][idx]
        map_y = A[:, 1, 0][idx] * self._xs + A[:, 1, 1][idx] * self._ys + A[:, 1, 2][idx]
        return map_x, map_y

    def __call__(self, image: np.ndarray, src_points: np.ndarray) -> np.ndarray:
        import cv2

        map_x, map_y = self.maps(src_points)
        return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)

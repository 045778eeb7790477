"""Pluggable identity encoders for the identity stream.

The FaceID projection expects a 512-D L2-normalised ArcFace embedding (insightface's
``normed_embedding``). ``resolve_identity_encoder("NAME:key=value,...")`` builds:

* ``dummy`` (ours, for tests/CI/smoke only): a deterministic image hash-projection with a
  configurable ``dim`` -- NOT a face recogniser; it makes the pipeline runnable without weights;
* any other name: ``madpad.face.get_embedder(NAME, **params)`` (e.g. ``arcface_onnx`` with
  ``model_path=...``: 512-D, fits; ``dlib``: 128-D, does not fit FaceID).

:func:`check_identity_dim` refuses an encoder whose dimension differs from the projection's
input, with a message saying which encoder fits.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from madpad.cli import parse_component_spec
from madpad.errors import FaceNotFoundError, UsageError
from madpad.registry import Component, Registry


class IdentityEncoder(Component, abc.ABC):
    """Interface of the dcmorph identity encoders (registry :data:`IDENTITY_ENCODERS`).

    ``embed(images) -> (N, D)`` float32 identity embeddings of RGB uint8 images (L2-normalised by
    the caller); ``dim`` is D (the FaceID projection expects 512); ``id`` identifies the model and
    settings (cache keys). ``madpad.face`` embedders (e.g. ``arcface_onnx``) serve as identity
    encoders too, through :func:`resolve_identity_encoder`.
    """

    dim: int = 0
    id: str = ""

    @abc.abstractmethod
    def embed(self, images) -> np.ndarray:
        """(N, D) float32 identity embeddings; FaceNotFoundError when an image has none."""


IDENTITY_ENCODERS = Registry("dcmorph identity encoder", IdentityEncoder)


class DummyIdentityEncoder(IdentityEncoder):
    """Deterministic stand-in identity encoder (tests only; not a face recogniser).

    The image is resized to 16x16 RGB, centred, multiplied by a fixed random matrix (seeded)
    and L2-normalised: the same image always gives the same unit vector; different images give
    different vectors.
    """

    def __init__(self, *, dim: int = 512, seed: int = 0):
        dim = int(dim)
        if dim < 1:
            raise UsageError(f"dummy identity encoder: dim must be >= 1; got {dim}")
        self.dim = dim
        self.seed = int(seed)
        self.name = "dummy"
        self.id = f"dummy-d{dim}-s{self.seed}"
        self._w = np.random.default_rng(self.seed).standard_normal((16 * 16 * 3, dim)).astype(np.float64)

    def embed(self, images) -> np.ndarray:
        from PIL import Image

        from madpad.io import as_rgb_uint8

        rows = []
        for img in images:
            small = np.asarray(Image.fromarray(as_rgb_uint8(img)).resize((16, 16), Image.BILINEAR), dtype=np.float64)
            x = small.reshape(-1) / 255.0
            v = (x - x.mean()) @ self._w
            n = np.linalg.norm(v)
            if not np.isfinite(n) or n == 0:
                raise FaceNotFoundError("dummy identity encoder: flat image has no identity vector")
            rows.append(v / n)
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), self.dim)


IDENTITY_ENCODERS.register("dummy", DummyIdentityEncoder,
                           description="deterministic test encoder (not a face recogniser)",
                           test_params={"dim": 16})


def parse_encoder_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"arcface_onnx:model_path=/m/w600k_r50.onnx,providers=CUDAExecutionProvider"`` -> (name, params)
    (see :func:`madpad.cli.parse_component_spec`)."""
    return parse_component_spec(spec, what="--face-encoder")


def resolve_identity_encoder(spec: str | Any):
    """Build an identity encoder from a spec string, or pass an encoder object through."""
    if not isinstance(spec, str):
        if not hasattr(spec, "embed"):
            raise UsageError(f"identity encoder object {spec!r} has no embed(images) method")
        return spec
    name, params = parse_encoder_spec(spec)
    if name in IDENTITY_ENCODERS:
        return IDENTITY_ENCODERS.create(name, **params)
    from madpad.io import optional_import

    face = optional_import("madpad.face", extra="face", purpose=f"the identity encoder {name!r}")
    try:
        return face.get_embedder(name, **params)
    except (FileNotFoundError, TypeError, ValueError) as exc:  # bad model path / option: an input error
        raise UsageError(f"--face-encoder {spec!r}: {exc}") from None


def encoder_dim(encoder) -> int | None:
    d = getattr(encoder, "dim", None)
    return int(d) if d is not None else None


def check_identity_dim(encoder, expected: int) -> None:
    """Raise UsageError when the encoder's embedding size does not fit the FaceID projection."""
    dim = encoder_dim(encoder)
    name = getattr(encoder, "name", type(encoder).__name__)
    if dim is not None and dim != int(expected):
        hint = (" dlib's 128-D embeddings are not ArcFace embeddings and cannot drive IP-Adapter FaceID;"
                if dim == 128 else "")
        raise UsageError(f"identity encoder {name!r} gives {dim}-D embeddings but the FaceID projection expects "
                         f"{expected}-D ArcFace embeddings.{hint} Use --face-encoder arcface_onnx:model_path=FILE.onnx "
                         f"(insightface buffalo_l/antelopev2 recognition model)")


def embed_one(encoder, image: np.ndarray, *, expected_dim: int, role: str) -> np.ndarray:
    """One L2-normalised identity embedding (float32, (D,)); FaceNotFoundError on failure."""
    try:
        emb = np.asarray(encoder.embed([image]), dtype=np.float32)
    except FaceNotFoundError:
        raise
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - an encoder failure on one item is a per-item failure
        raise FaceNotFoundError(f"identity encoder failed on image {role}: {exc}") from exc
    if emb.ndim != 2 or emb.shape[0] != 1:
        raise FaceNotFoundError(f"identity encoder returned shape {emb.shape} for image {role}; expected (1, D)")
    if emb.shape[1] != expected_dim:
        check_identity_dim(type("E", (), {"dim": emb.shape[1], "name": getattr(encoder, "name", "?")})(), expected_dim)
    v = emb[0]
    n = float(np.linalg.norm(v))
    if not np.isfinite(v).all() or n == 0.0:
        raise FaceNotFoundError(f"no identity embedding for image {role} (no face found by the identity encoder)")
    return (v / n).astype(np.float32)


__all__ = ["IDENTITY_ENCODERS", "DummyIdentityEncoder", "IdentityEncoder", "parse_encoder_spec", "resolve_identity_encoder",
           "check_identity_dim", "embed_one", "encoder_dim"]

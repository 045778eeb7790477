"""Embedding cache: one ``.npy`` file per (image content, model id).

Layout: ``<directory>/<model-slug>-<sha256(model id)[:12]>/<hash[:2]>/<hash>.npy`` plus a
``model.json`` naming the full model id. ``hash`` is the SHA-256 of the image file's bytes
(for paths) or of the array (for in-memory images, :func:`madpad.io.array_sha256`). Writes
are atomic; the directory is created on the first write only.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np

from madpad.errors import UsageError
from madpad.io import (
    array_sha256,
    atomic_path,
    atomic_write_json,
    env_path,
    file_sha256,
)

CACHE_ENV = "MADPAD_CACHE"


def image_key(image) -> str:
    """Content hash of an image given as a path (file bytes) or an array."""
    if isinstance(image, (str, os.PathLike)):
        return file_sha256(image)
    return array_sha256(np.asarray(image))


class EmbeddingCache:
    """Cache of embeddings keyed by (image content hash, model id).

    ``directory``: where to store; default ``$MADPAD_CACHE/embeddings``. Raises
    :class:`UsageError` when neither is given. Nothing is created until :meth:`put`.
    ``hits`` / ``misses`` count lookups.
    """

    def __init__(self, directory: str | os.PathLike | None = None):
        if directory is None:
            base = env_path(CACHE_ENV)
            if base is None:
                raise UsageError(f"EmbeddingCache needs a directory (argument or ${CACHE_ENV})")
            directory = base / "embeddings"
        self.directory = Path(directory).expanduser()
        self.hits = 0
        self.misses = 0

    def _model_dir(self, model_id: str) -> Path:
        if not model_id:
            raise ValueError("model_id must be a non-empty string")
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_id)[:40].strip("._") or "model"
        return self.directory / f"{slug}-{hashlib.sha256(model_id.encode()).hexdigest()[:12]}"

    def path_for(self, key: str, model_id: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{16,128}", key or ""):
            raise ValueError(f"cache key must be a hex digest; got {key!r}")
        return self._model_dir(model_id) / key[:2] / f"{key}.npy"

    def get(self, key: str, model_id: str) -> np.ndarray | None:
        """The cached embedding or None (a corrupt file counts as a miss)."""
        p = self.path_for(key, model_id)
        if p.is_file():
            try:
                arr = np.load(p, allow_pickle=False)
                self.hits += 1
                return arr
            except (OSError, ValueError):
                pass
        self.misses += 1
        return None

    def put(self, key: str, model_id: str, embedding: np.ndarray) -> Path:
        p = self.path_for(key, model_id)
        mdir = self._model_dir(model_id)
        if not (mdir / "model.json").is_file():
            atomic_write_json(mdir / "model.json", {"model_id": model_id})
        with atomic_path(p) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.asarray(embedding, dtype=np.float32), allow_pickle=False)
        return p

    def __contains__(self, item) -> bool:
        key, model_id = item
        return self.path_for(key, model_id).is_file()

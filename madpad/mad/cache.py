"""Per-image feature cache keyed by (image content hash, model id).

Live captures are usually scored against many suspects (and the same live capture is
reused across runs), so their features are computed once per image. The cache keeps a
dictionary in memory and, when given a directory, stores each vector on disk through the face
toolkit's :class:`madpad.face.EmbeddingCache` (one ``.npy`` per (model, image), written
atomically, read back with ``allow_pickle=False``). A failure (no face) is
stored as a row of NaNs plus the error text, so it is not retried on every call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from madpad.face.cache import EmbeddingCache
from madpad.mad.base import ImageLike, image_key


class FeatureCache:
    """Cache of per-image feature vectors.

    Parameters
    ----------
    directory:
        Folder for the on-disk cache (created when first written), or None for memory only.
    """

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = None if directory is None else Path(directory)
        self._disk = None if directory is None else EmbeddingCache(directory)
        self._mem: dict[tuple[str, str], np.ndarray] = {}
        self._path_keys: dict[tuple[str, float, int], str] = {}
        self.hits = 0
        self.misses = 0

    def key(self, image: ImageLike) -> str:
        """Content key; file hashes are memoised per (path, mtime, size)."""
        if isinstance(image, (str, os.PathLike)):
            st = os.stat(image)
            pk = (str(Path(image).resolve()), st.st_mtime, st.st_size)
            if pk not in self._path_keys:
                self._path_keys[pk] = image_key(image)
            return self._path_keys[pk]
        view_key = getattr(image, "feature_cache_key", None)  # e.g. madpad.mad.augment.AugmentedView
        if view_key is not None:
            return view_key(self.key)
        return image_key(image)

    def get(self, model_id: str, key: str) -> np.ndarray | None:
        v = self._mem.get((model_id, key))
        if v is None and self._disk is not None:
            v = self._disk.get(key, model_id)
            if v is not None:
                self._mem[(model_id, key)] = v
        return v

    def put(self, model_id: str, key: str, value: np.ndarray) -> None:
        value = np.asarray(value, dtype=np.float32)
        self._mem[(model_id, key)] = value
        if self._disk is not None:
            self._disk.put(key, model_id, value)

    def clear_memory(self) -> None:
        self._mem.clear()


def cached_features(images: Sequence[ImageLike], compute: Callable[[list[ImageLike]], np.ndarray], *,
                    model_id: str, cache: FeatureCache | None, dim: int | None = None) -> np.ndarray:
    """Features of ``images`` (N, D) float32, computing each distinct image once.

    ``compute(list_of_images) -> (M, D)`` is called only for images not in ``cache``
    (duplicates within ``images`` are computed once even without a cache).
    """
    cache = cache if cache is not None else FeatureCache()
    keys = [cache.key(im) for im in images]
    out: list[np.ndarray | None] = [None] * len(images)
    todo: dict[str, int] = {}
    for i, k in enumerate(keys):
        v = cache.get(model_id, k)
        if v is not None:
            out[i] = v
            cache.hits += 1
        elif k not in todo:
            todo[k] = i
    if todo:
        cache.misses += len(todo)
        feats = np.asarray(compute([images[i] for i in todo.values()]), dtype=np.float32)
        if feats.ndim != 2 or feats.shape[0] != len(todo):
            raise RuntimeError(f"feature function returned shape {feats.shape}; expected ({len(todo)}, D)")
        for (k, _), f in zip(todo.items(), feats):
            cache.put(model_id, k, f)
    for i, k in enumerate(keys):
        if out[i] is None:
            out[i] = cache.get(model_id, k)
    if not out:
        return np.zeros((0, dim or 0), dtype=np.float32)
    return np.stack(out).astype(np.float32)

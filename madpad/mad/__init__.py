"""Differential morphing attack detection (D-MAD) and single-image baselines.

Given a suspect image (e.g. the passport photo) and a trusted live capture of the claimed
subject, a detector returns a morph score: **higher = more likely a morph**; a pair is
classified as an attack when ``score >= threshold``.

Detectors (registry :data:`DETECTORS`, all with ``fit(pairs, dev=None)``,
``score(pairs) -> float64 (n,)``, ``save(dir)``; :func:`load_detector` reads any of them):

| name | what | trained |
|---|---|---|
| ``embedding_distance`` | ``1 - cosine`` of FR embeddings (dlib by default) | no |
| ``embedding_logreg`` | FR embedding difference -> logistic regression (classic D-MAD) | yes |
| ``embedding_svm`` | FR embedding difference -> RBF SVM (classic D-MAD) | yes |
| ``fr_texture`` | FR embedding pair features + texture statistics -> logistic regression | yes |
| ``foundation`` | DifFoundMAD-style: open_clip ViT + LoRA (peft) + head on embedding differences | yes |
| ``foundation_smad`` | the same backbone on the suspect image alone (S-MAD) | yes |

Importing this package imports nothing heavy; torch, open_clip, peft, dlib and
scikit-learn load when a detector is built or used.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from madpad.mad.base import LABELS, NotFittedError, Pair, read_header
from madpad.registry import Registry

DETECTORS = Registry("morph detector")


def _lazy_class(path: str):
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _register(name: str, cls_path: str, description: str, extra: str, **defaults: Any) -> None:
    def factory(**params):
        return _lazy_class(cls_path)(**params)

    factory.__name__ = f"make_{name}"
    DETECTORS.register(name, factory, description=description, defaults=defaults, extra=extra, cls=cls_path)


_register("embedding_distance", "madpad.mad.baselines:EmbeddingDistanceDetector",
          "untrained: 1 - cosine similarity of FR embeddings (dlib)", "face")
_register("embedding_logreg", "madpad.mad.baselines:EmbeddingClassifierDetector",
          "classic D-MAD: FR embedding difference -> logistic regression", "face",
          features=["diff"], classifier="logreg")
_register("embedding_svm", "madpad.mad.baselines:EmbeddingClassifierDetector",
          "classic D-MAD: FR embedding difference -> RBF SVM", "face",
          features=["diff"], classifier="rbf_svm")
_register("fr_texture", "madpad.mad.baselines:EmbeddingClassifierDetector",
          "FR embedding pair features + face texture statistics -> logistic regression", "face",
          features=["diff", "absdiff", "cos", "texture", "texture_diff"], classifier="logreg", C="auto")
_register("foundation", "madpad.mad.foundation:FoundationDetector",
          "DifFoundMAD-style: open_clip ViT + LoRA + head on the embedding difference (D-MAD)", "detect")
_register("foundation_smad", "madpad.mad.foundation:SingleImageFoundationDetector",
          "single-image MAD on the same open_clip backbone (suspect only)", "detect")

# checkpoint 'detector' field -> class (several registry names share a class)
_CHECKPOINT_CLASSES = {
    "embedding_distance": "madpad.mad.baselines:EmbeddingDistanceDetector",
    "embedding_classifier": "madpad.mad.baselines:EmbeddingClassifierDetector",
    "foundation": "madpad.mad.foundation:FoundationDetector",
    "foundation_smad": "madpad.mad.foundation:SingleImageFoundationDetector",
}


def get_detector(name: str, **params: Any):
    """Build detector ``name`` (see :func:`list_detectors`) with keyword parameters."""
    return DETECTORS.create(name, **params)


def list_detectors() -> list[str]:
    return DETECTORS.names()


def load_detector(path: str | os.PathLike, **overrides: Any):
    """Load a detector saved with ``detector.save(path)`` / ``python -m madpad.detect train``.

    Reads ``path/detector.json`` and plain-array files (safetensors / npz with
    ``allow_pickle=False``): loading never unpickles. ``overrides`` replace runtime options
    (e.g. ``device="cpu"``, ``progress=False``).
    """
    from madpad.errors import ManifestError

    head = read_header(path)
    kind = head.get("detector")
    if kind not in _CHECKPOINT_CLASSES:
        raise ManifestError(f"unknown detector type {kind!r}; known: {sorted(_CHECKPOINT_CLASSES)}",
                            path=os.path.join(str(path), "detector.json"), field="detector")
    return _lazy_class(_CHECKPOINT_CLASSES[kind]).load(path, header=head, **overrides)


__all__ = ["DETECTORS", "LABELS", "NotFittedError", "Pair", "get_detector", "list_detectors", "load_detector"]

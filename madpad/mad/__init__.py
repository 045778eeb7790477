"""Differential morphing attack detection (D-MAD) and single-image baselines.

Given a suspect image (e.g. the passport photo) and a trusted live capture of the claimed
subject, a detector returns a morph score: **higher = more likely a morph**; a pair is
classified as an attack when ``score >= threshold``.

Detectors (registry :data:`MORPH_DETECTORS`, interface :class:`MorphDetector`: ``fit(pairs, dev=None)``,
``score(pairs) -> float64 (n,)``, ``save(dir)``; :func:`load_detector` reads any of them):

| name | what | trained |
|---|---|---|
| ``embedding_distance`` | ``1 - cosine`` of FR embeddings (dlib by default) | no |
| ``embedding_logreg`` | FR embedding difference -> logistic regression (classic D-MAD) | yes |
| ``embedding_svm`` | FR embedding difference -> RBF SVM (classic D-MAD) | yes |
| ``fr_texture`` | FR embedding pair features + texture statistics -> logistic regression | yes |
| ``embedding_distance_<fr>``, ``embedding_svm_<fr>`` | the two above on ``mobileface``, ``hse_faceres``, ``faceapi_resnet128`` | no / yes |
| ``fused_embedding`` | per-system pair features of several FR systems -> one classifier | yes |
| ``upper_face_distance`` | ``1 - cosine`` of upper-face FR embeddings (lower face masked: robust to a smile) | no |
| ``landmark_displacement`` | rigid-landmark displacement and ratio changes, suspect vs live -> logistic regression | yes |
| ``smad_cues`` | single-image cues of the suspect (inside vs outside the face: noise, detail, seams, ghosts) -> LR | yes |
| ``dmad_cues`` | FR embedding difference + landmark displacement + upper-face distance + S-MAD cues -> RBF SVM (parts switchable via ``features``) | yes |
| ``demorph_distance`` | ``1 - cosine`` of FR(suspect demorphed with the live capture) and FR(live) | no |
| ``demorph_svm`` | FR embedding difference + FR embeddings of the demorphed suspect (alpha 0.3, 0.5) minus the live capture's -> RBF SVM | yes |
| ``foundation`` | DifFoundMAD-style: open_clip ViT + LoRA (peft) + head on embedding differences | yes |
| ``foundation_smad`` | the same backbone on the suspect image alone (S-MAD) | yes |
| ``foundation_timm`` | ``foundation`` on a timm ViT (DINOv2 by default) from a local weights file | yes |

Importing this package imports nothing heavy; torch, open_clip, peft, dlib and
scikit-learn load when a detector is built or used.
"""

from __future__ import annotations

import os
from typing import Any

from madpad.mad.base import LABELS, MorphDetector, NotFittedError, Pair, read_header
from madpad.registry import Registry

MORPH_DETECTORS = Registry("morph detector", MorphDetector)

# name -> "module:Class" (imported on first use). test_params: tiny settings for the contract tests.
_TINY_FOUNDATION = {"backbone": "madpad-tiny-vit", "model_config": "madpad-tiny-vit", "pretrained": None,
                    "head_hidden": 8, "head_dropout": 0.0, "lora_rank": 2, "lora_alpha": 4.0, "lora_dropout": 0.0,
                    "epochs": 1, "batch_size": 8, "warmup": 0.0, "device": "cpu", "progress": False, "patience": 0,
                    "resume": False}
MORPH_DETECTORS.register("embedding_distance", "madpad.mad.baselines:EmbeddingDistanceDetector", extra="face",
                         description="untrained: 1 - cosine similarity of FR embeddings (dlib)")
MORPH_DETECTORS.register("embedding_logreg", "madpad.mad.baselines:EmbeddingClassifierDetector", extra="face",
                         description="classic D-MAD: FR embedding difference -> logistic regression",
                         defaults={"features": ["diff"], "classifier": "logreg"})
MORPH_DETECTORS.register("embedding_svm", "madpad.mad.baselines:EmbeddingClassifierDetector", extra="face",
                         description="classic D-MAD: FR embedding difference -> RBF SVM",
                         defaults={"features": ["diff"], "classifier": "rbf_svm"})
MORPH_DETECTORS.register("fr_texture", "madpad.mad.baselines:EmbeddingClassifierDetector", extra="face",
                         description="FR embedding pair features + face texture statistics -> logistic regression",
                         defaults={"features": ["diff", "absdiff", "cos", "texture", "texture_diff"],
                                   "classifier": "logreg", "C": "auto"})
# the same baselines on each ONNX FR network (files from $MADPAD_SHARED/models/fr or embedder_params.model_path),
# and one detector on several FR systems at once
for _fr in ("mobileface", "hse_faceres", "faceapi_resnet128"):
    MORPH_DETECTORS.register(f"embedding_distance_{_fr}", "madpad.mad.baselines:EmbeddingDistanceDetector", extra="face",
                             description=f"untrained: 1 - cosine similarity of {_fr} embeddings", defaults={"embedder": _fr})
    MORPH_DETECTORS.register(f"embedding_svm_{_fr}", "madpad.mad.baselines:EmbeddingClassifierDetector", extra="face",
                             description=f"classic D-MAD: {_fr} embedding difference -> RBF SVM",
                             defaults={"embedder": _fr, "features": ["diff"], "classifier": "rbf_svm"})
del _fr
MORPH_DETECTORS.register("fused_embedding", "madpad.mad.baselines:FusedEmbeddingDetector", extra="face",
                         description="several FR systems (dlib, mobileface, hse_faceres): per-system 1 - cosine "
                                     "-> logistic regression")
MORPH_DETECTORS.register("foundation", "madpad.mad.foundation:FoundationDetector", extra="detect",
                         description="DifFoundMAD-style: open_clip ViT + LoRA + head on the embedding difference "
                                     "(D-MAD)",
                         test_params=_TINY_FOUNDATION)
MORPH_DETECTORS.register("foundation_smad", "madpad.mad.foundation:SingleImageFoundationDetector", extra="detect",
                         description="single-image MAD on the same open_clip backbone (suspect only)",
                         test_params=_TINY_FOUNDATION)
MORPH_DETECTORS.register("foundation_timm", "madpad.mad.foundation:FoundationDetector", extra="detect",
                         description="DifFoundMAD-style on a timm ViT (DINOv2 by default; pretrained = a local "
                                     "weights file) + LoRA + head (D-MAD)",
                         defaults={"backbone_library": "timm", "backbone": "vit_base_patch14_dinov2"},
                         test_params={**_TINY_FOUNDATION, "model_config": None, "backbone": "vit_small_patch14_dinov2",
                                      "backbone_kwargs": {"img_size": 28, "depth": 2, "embed_dim": 32,
                                                          "num_heads": 2}})

# differential cues beyond one FR distance, expression-robust comparison, single-image cues (madpad.mad.cues)
MORPH_DETECTORS.register("upper_face_distance", "madpad.mad.cues:UpperFaceDistanceDetector", extra="face",
                         description="untrained: 1 - cosine of upper-face FR embeddings (mouth and chin masked on both "
                                     "images; a smile barely moves it)")
MORPH_DETECTORS.register("landmark_displacement", "madpad.mad.cues:CueDetector", extra="face",
                         description="rigid-landmark displacement (brows, eyes, nose, upper jaw) and face-ratio changes "
                                     "between suspect and live -> logistic regression",
                         defaults={"features": ["landmarks"], "classifier": "logreg", "C": "auto"})
MORPH_DETECTORS.register("smad_cues", "madpad.mad.cues:CueDetector", extra="face",
                         description="single-image cues of the suspect (face inside vs outside: detail, noise, seams, "
                                     "ghosts) -> logistic regression",
                         defaults={"features": ["smad"], "classifier": "logreg", "C": "auto"})
MORPH_DETECTORS.register("dmad_cues", "madpad.mad.cues:CueDetector", extra="face",
                         description="FR embedding difference + landmark displacement + upper-face distance + S-MAD "
                                     "cues -> RBF SVM",
                         defaults={"features": ["diff", "landmarks", "upper_cos", "smad"], "classifier": "rbf_svm",
                                   "C": "auto"})
MORPH_DETECTORS.register("demorph_distance", "madpad.mad.cues:DemorphDistanceDetector", extra="face",
                         description="untrained: 1 - cosine of FR(suspect demorphed with the live capture, alpha 0.5) "
                                     "and FR(live); a morph demorphs to the accomplice")
MORPH_DETECTORS.register("demorph_svm", "madpad.mad.cues:CueDetector", extra="face",
                         description="FR embedding difference + FR embeddings of the suspect demorphed with the live "
                                     "capture (alpha 0.3, 0.5) minus the live capture's -> RBF SVM",
                         defaults={"features": ["diff", "demorph_diff"], "classifier": "rbf_svm", "C": "auto"})


def get_detector(name: str, **params: Any):
    """Build detector ``name`` (see :func:`list_detectors`) with keyword parameters."""
    return MORPH_DETECTORS.create(name, **params)


def list_detectors() -> list[str]:
    return MORPH_DETECTORS.names()


def detector_class(kind: str, *, path: str | os.PathLike | None = None) -> type[MorphDetector]:
    """The registered class whose ``checkpoint_kind`` is ``kind`` (the ``detector`` field of a
    checkpoint's ``detector.json``); :class:`ManifestError` naming ``path`` when none is."""
    from madpad.errors import ManifestError, MissingDependencyError

    classes: dict[str, type] = {}
    missing: list[str] = []
    for name in MORPH_DETECTORS.names():
        try:
            cls = MORPH_DETECTORS.load(name)
        except MissingDependencyError:
            missing.append(name)
            continue
        classes.setdefault(cls.checkpoint_kind, cls)
    if kind not in classes:
        where = os.path.join(str(path), "detector.json") if path is not None else None
        hint = f" (detectors not loadable here: {missing})" if missing else ""
        raise ManifestError(f"unknown detector type {kind!r}; known: {sorted(classes)}{hint}", path=where,
                            field="detector")
    return classes[kind]


def load_detector(path: str | os.PathLike, **overrides: Any):
    """Load a detector saved with ``detector.save(path)`` / ``python -m madpad.detect train``.

    Reads ``path/detector.json`` and plain-array files (safetensors / npz with
    ``allow_pickle=False``): loading never unpickles. The class is the registered detector whose
    ``checkpoint_kind`` is the checkpoint's ``detector`` field. ``overrides`` replace runtime
    options (e.g. ``device="cpu"``, ``progress=False``).
    """
    head = read_header(path)
    return detector_class(head.get("detector"), path=path).load(path, header=head, **overrides)


__all__ = ["LABELS", "MORPH_DETECTORS", "MorphDetector", "NotFittedError", "Pair", "detector_class",
           "get_detector", "list_detectors", "load_detector"]

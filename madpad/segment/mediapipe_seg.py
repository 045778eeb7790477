"""MediaPipe selfie (person) segmentation as a madpad segmenter.

Uses ``mediapipe.solutions.selfie_segmentation`` whose ``.tflite`` models ship inside the
mediapipe 0.10.14 wheel (no download). ``model_selection=0`` is the general 256x256 model
(better for portraits), ``1`` the faster landscape 144x256 model.
"""

from __future__ import annotations

import threading

import numpy as np

from madpad.io import optional_import
from madpad.segment.base import check_image, finish_matte


class MediapipeSelfieSegmenter:
    """Soft person matte from MediaPipe selfie segmentation (the model's confidence map)."""

    needs_face = False

    def __init__(self, *, model_selection: int = 0):
        if int(model_selection) not in (0, 1):
            raise ValueError(f"model_selection must be 0 (general) or 1 (landscape); got {model_selection}")
        self.model_selection = int(model_selection)
        self._model = None
        self._lock = threading.Lock()

    name = "mediapipe_selfie"

    def params(self) -> dict:
        return {"model_selection": self.model_selection}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_model"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _load(self):
        if self._model is None:
            mp = optional_import("mediapipe", extra="mediapipe", purpose="mediapipe selfie segmentation")
            self._model = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=self.model_selection)
        return self._model

    def segment(self, image, *, face=None) -> np.ndarray:
        """Float32 matte (H, W) in [0, 1], 1 = person. ``face`` is ignored."""
        img = check_image(image)
        with self._lock:  # a mediapipe graph is not re-entrant
            res = self._load().process(img)
        mask = res.segmentation_mask
        if mask is None:
            return np.zeros(img.shape[:2], np.float32)
        return finish_matte(mask, img.shape[:2])

    def close(self) -> None:
        if self._model is not None:
            self._model.close()
            self._model = None

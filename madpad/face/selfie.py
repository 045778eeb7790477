"""MediaPipe selfie segmentation, the raw model: a person confidence map for an RGB image.

One wrapper shared by the person detectors of the T-shirt PAD (:mod:`madpad.pad.persons`) and
the ``mediapipe_selfie`` segmenter (:mod:`madpad.segment.mediapipe_seg`). It uses
``mediapipe.solutions.selfie_segmentation``, whose ``.tflite`` models ship inside the mediapipe
0.10.14 wheel (no download): ``model_selection=0`` is the general 256x256 model (better for
portraits), ``1`` the faster landscape 144x256 model. mediapipe is imported on first use.
"""

from __future__ import annotations

import threading

import numpy as np

from madpad.io import as_rgb_uint8, optional_import


class MediapipeSelfie:
    """``mask(image)`` -> float32 (H, W) in [0, 1], 1 = person, at the image's size.

    The model loads on first use; calls are serialised (a mediapipe graph is not re-entrant);
    pickling drops the loaded model (a worker process loads its own).
    """

    def __init__(self, *, model_selection: int = 0):
        if int(model_selection) not in (0, 1):
            raise ValueError(f"model_selection must be 0 (general) or 1 (landscape); got {model_selection}")
        self.model_selection = int(model_selection)
        self._graph = None
        self._lock = threading.Lock()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_graph"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _load(self):
        if self._graph is None:
            mp = optional_import("mediapipe", extra="mediapipe", purpose="mediapipe selfie segmentation")
            self._graph = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=self.model_selection)
        return self._graph

    def mask(self, image) -> np.ndarray:
        """Person confidence map, float32 (H, W) in [0, 1] (all zeros when the model gives none)."""
        img = as_rgb_uint8(image)
        with self._lock:
            m = self._load().process(img).segmentation_mask
        if m is None:
            return np.zeros(img.shape[:2], np.float32)
        return np.clip(np.asarray(m, dtype=np.float32), 0.0, 1.0)

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None


__all__ = ["MediapipeSelfie"]

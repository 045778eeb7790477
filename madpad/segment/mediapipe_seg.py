"""MediaPipe selfie (person) segmentation as a madpad segmenter.

The model itself is :class:`madpad.face.selfie.MediapipeSelfie` (shipped ``.tflite`` models,
no download; ``model_selection=0`` general 256x256, ``1`` landscape 144x256).
"""

from __future__ import annotations

import numpy as np

from madpad.face.selfie import MediapipeSelfie
from madpad.segment.base import Segmenter, check_image, finish_matte


class MediapipeSelfieSegmenter(Segmenter):
    """Soft person matte from MediaPipe selfie segmentation (the model's confidence map)."""

    needs_face = False

    def __init__(self, *, model_selection: int = 0):
        self._model = MediapipeSelfie(model_selection=model_selection)
        self.model_selection = self._model.model_selection

    name = "mediapipe_selfie"

    def params(self) -> dict:
        return {"model_selection": self.model_selection}

    def segment(self, image, *, face=None) -> np.ndarray:
        """Float32 matte (H, W) in [0, 1], 1 = person. ``face`` is ignored."""
        img = check_image(image)
        return finish_matte(self._model.mask(img), img.shape[:2])

    def close(self) -> None:
        self._model.close()

"""Background segmentation of portraits and background replacement.

Every segmenter (interface :class:`Segmenter`, registry :data:`SEGMENTERS`) has one method,
``segment(image, *, face=None) -> matte``: ``image`` is RGB
uint8 (H, W, 3), the matte float32 (H, W) in [0, 1] with **1 = person (foreground)**.
``face`` is an optional face hint (a :class:`FaceHint`, a :class:`madpad.face.FaceAnalysis`
or ``{"box": ..., "landmarks": ...}``) used by the segmenters that need one; without it they
run :func:`madpad.face.analyze_face` themselves. Build segmenters by name:

| name | what | needs |
|---|---|---|
| ``rembg`` / ``rembg:<model>`` | a rembg session (``model=``, default ``isnet-general-use``; ``u2net``, ``u2net_human_seg``, ``birefnet-portrait``, ... when their files are present) | ``<model>.onnx`` in ``model_dir=`` or ``$U2NET_HOME`` |
| ``rembg_isnet`` | ``rembg:isnet-general-use`` | as above |
| ``rembg_u2net_human_seg`` | ``rembg:u2net_human_seg`` | as above |
| ``rembg_birefnet_portrait`` | ``rembg:birefnet-portrait`` | as above |
| ``mediapipe_selfie`` | MediaPipe selfie segmentation (model shipped in the wheel) | mediapipe |
| ``grabcut`` | OpenCV GrabCut seeded from the face box | face box |
| ``landmark_hull`` | geometric baseline from the 68 landmarks | 68 landmarks |

>>> seg = get_segmenter("grabcut", iterations=3)        # doctest: +SKIP
>>> matte = seg.segment(image)                           # doctest: +SKIP
>>> out = replace_background(image, matte, background="icao_grey")   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from madpad.registry import Registry
from madpad.segment.background import ICAO_LIGHT_GREY, WHITE, replace_background
from madpad.segment.base import FaceHint, ModelFileNotFoundError, Segmenter, check_matte

SEGMENTERS = Registry("segmenter", Segmenter)

__all__ = ["ICAO_LIGHT_GREY", "SEGMENTERS", "WHITE", "FaceHint", "ModelFileNotFoundError", "Segmenter",
           "check_matte", "get_segmenter", "list_segmenters", "replace_background", "segmenter_spec"]

# name -> "module:Class" (imported on first use); a new segmenter is one file plus one line here
SEGMENTERS.register("rembg", "madpad.segment.rembg_seg:RembgSegmenter", extra="segment",
                    description="rembg session by model name (model=..., model_dir= or $U2NET_HOME)")
for _alias, _model in (("rembg_isnet", "isnet-general-use"), ("rembg_u2net", "u2net"),
                       ("rembg_u2net_human_seg", "u2net_human_seg"),
                       ("rembg_birefnet_portrait", "birefnet-portrait")):
    SEGMENTERS.register(_alias, "madpad.segment.rembg_seg:RembgSegmenter", extra="segment",
                        defaults={"model": _model}, description=f"rembg session '{_model}'")
SEGMENTERS.register("mediapipe_selfie", "madpad.segment.mediapipe_seg:MediapipeSelfieSegmenter",
                    extra="mediapipe", description="MediaPipe selfie (person) segmentation")
SEGMENTERS.register("grabcut", "madpad.segment.grabcut:GrabCutSegmenter", extra="face",
                    description="OpenCV GrabCut seeded from the face box (head-and-shoulders prior)")
SEGMENTERS.register("landmark_hull", "madpad.segment.landmark_hull:LandmarkHullSegmenter", extra="face",
                    description="baseline: hull of the 68 landmarks + crown ellipse, neck and shoulders")


def get_segmenter(name: str, **params: Any):
    """Build the segmenter ``name`` (see :func:`list_segmenters`); ``"rembg:<model>"`` picks a
    rembg model by its rembg name (e.g. ``"rembg:isnet-general-use"``)."""
    if isinstance(name, str) and name.startswith("rembg:"):
        model = name.split(":", 1)[1].strip()
        return SEGMENTERS.create("rembg", **{**params, "model": model})
    return SEGMENTERS.create(name, **params)


def list_segmenters() -> list[str]:
    """Registered segmenter names (``rembg:<model>`` is accepted in addition)."""
    return SEGMENTERS.names()


def segmenter_spec(spec: Any) -> tuple[str, str, dict]:
    """Normalise a configuration entry into ``(label, name, params)``.

    Accepts ``"grabcut"``, ``"rembg:u2net"`` or a mapping ``{name: ..., label: ..., **params}``
    (``label`` defaults to the name; used as the folder/column name in studies).
    """
    if isinstance(spec, str):
        name, params = spec.strip(), {}
    elif isinstance(spec, dict):
        if "name" not in spec:
            raise ValueError(f"segmenter entry {spec!r} has no 'name'")
        params = {k: v for k, v in spec.items() if k not in ("name", "label")}
        name = str(spec["name"]).strip()
    else:
        raise TypeError(f"segmenter entry must be a name or a mapping; got {spec!r}")
    label = spec.get("label", name) if isinstance(spec, dict) else name
    label = str(label).replace(":", "_").replace("/", "_")
    if name.split(":", 1)[0] not in SEGMENTERS:
        SEGMENTERS.get(name)  # raises UnknownComponentError with the available names
    return label, name, params

"""Morph generation: landmark morphs and DCMorph-style diffusion morphs.

``MORPH_METHODS`` maps a method name to a morph generator class (interface
:class:`MorphGenerator`, see ``docs/CONTRACTS.md``):
``generator.morph(image_a, image_b, *, alpha, seed) -> RGB uint8`` and ``generator.params() -> dict``;
the classmethods ``add_cli_arguments(group)`` and ``from_cli(args)`` give its options to
``python -m madpad.generate``. Implementations are imported lazily, so listing the methods never
imports torch.
"""

from __future__ import annotations

from typing import Any

from madpad.morph.base import MorphGenerator
from madpad.registry import Registry

MORPH_METHODS = Registry("morph method", MorphGenerator)

# name -> "module:Class" (imported on first use)
MORPH_METHODS.register("landmark", "madpad.morph.landmark:LandmarkMorph", extra="face",
                       description="landmark morph: Delaunay warp of averaged landmarks + alpha blend of the whole "
                                   "image")
MORPH_METHODS.register("landmark_spliced", "madpad.morph.landmark:SplicedLandmarkMorph", extra="face",
                       description="spliced landmark morph: morphed face region pasted into contributor A's image, "
                                   "colour-corrected and seamlessly blended")
MORPH_METHODS.register("tem189", "madpad.morph.template:TemplateMorph",
                       description="full morph from the sources' 189-point Psychomorph/WebMorph .tem templates "
                                   "(another landmark set and triangulation), portrait alignment")
MORPH_METHODS.register("dcmorph", "madpad.morph.dcmorph:DCMorph", extra="diffusion",
                       description="DCMorph-style dual-stream diffusion morph (IP-Adapter FaceID decoupled "
                                   "cross-attention interpolation + DDIM inversion and slerp of both sources)",
                       test_params={"tiny_random": "tiny_sd15", "steps": 1, "cache_size": 0})


def list_morph_methods() -> list[str]:
    return MORPH_METHODS.names()


def get_morph_method(name: str, **params: Any):
    """Build the morph generator ``name`` (keyword parameters go to its class)."""
    return MORPH_METHODS.create(name, **params)


__all__ = ["MORPH_METHODS", "MorphGenerator", "get_morph_method", "list_morph_methods"]

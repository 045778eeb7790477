"""Morph generation: landmark morphs and DCMorph-style diffusion morphs.

``MORPH_METHODS`` maps a method name to a factory of a morph generator (see
``docs/CONTRACTS.md``): ``generator.morph(image_a, image_b, *, alpha, seed) -> RGB uint8``
and ``generator.params() -> dict``. Each entry also carries two CLI hooks in its meta,
``add_cli_arguments(group)`` and ``from_cli(args)``, used by ``python -m madpad.generate``.
Implementations are imported lazily, so listing the methods never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from madpad.registry import Registry

MORPH_METHODS = Registry("morph method")


def _lazy(module: str, attr: str) -> Callable[..., Any]:
    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    call.__name__ = f"{module}.{attr}"
    call.__qualname__ = call.__name__
    return call


def _register(name: str, module: str, factory: str, description: str, extra: str | None) -> None:
    MORPH_METHODS.register(
        name,
        _lazy(module, factory),
        description=description,
        extra=extra,
        add_cli_arguments=_lazy(module, f"add_cli_arguments_{factory.removeprefix('make_')}"),
        from_cli=_lazy(module, f"from_cli_{factory.removeprefix('make_')}"),
    )


# name, implementing module, factory; the module also defines add_cli_arguments_<x>, from_cli_<x>
_register("landmark", "madpad.morph.landmark", "make_landmark",
          "landmark morph: Delaunay warp of averaged landmarks + alpha blend of the whole image", "face")
_register("landmark_spliced", "madpad.morph.landmark", "make_landmark_spliced",
          "spliced landmark morph: morphed face region pasted into contributor A's image, "
          "colour-corrected and seamlessly blended", "face")
_register("dcmorph", "madpad.morph.dcmorph", "make_dcmorph",
          "DCMorph-style dual-stream diffusion morph (IP-Adapter FaceID decoupled cross-attention "
          "interpolation + DDIM inversion and slerp of both sources)", "diffusion")


def list_morph_methods() -> list[str]:
    return MORPH_METHODS.names()


def get_morph_method(name: str, **params: Any):
    """Build the morph generator ``name`` (keyword parameters go to its factory)."""
    return MORPH_METHODS.create(name, **params)


__all__ = ["MORPH_METHODS", "list_morph_methods", "get_morph_method"]

"""The morph generator interface (registry :data:`madpad.morph.MORPH_METHODS`).

A morph generator makes one morph of contributors A and B: ``morph(image_a, image_b, *, alpha, seed)``
with **alpha = weight of B** (0 gives A, 1 gives B). Its command-line options live on the class:
``python -m madpad.generate --method NAME`` calls ``add_cli_arguments(group)`` of the chosen
method's class to add its options, then ``from_cli(args)`` to build it from the parsed namespace.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from madpad.registry import Component


class MorphGenerator(Component, abc.ABC):
    """Interface of the morph methods.

    * ``morph(image_a, image_b, *, alpha=0.5, seed=0) -> np.ndarray``: RGB uint8; raises
      :class:`~madpad.errors.FaceNotFoundError` (or another :class:`~madpad.errors.MadpadError`)
      for a per-item failure;
    * ``params() -> dict``: the settings recorded in the morph manifest;
    * classmethods ``add_cli_arguments(group)`` (add the method's own options to an argparse
      argument group; option names prefixed only where they would clash) and ``from_cli(args)``
      (build the generator from the parsed namespace; :class:`~madpad.errors.UsageError` for bad
      combinations). The defaults add nothing and build with the constructor's defaults.
    """

    @abc.abstractmethod
    def morph(self, image_a, image_b, *, alpha: float = 0.5, seed: int = 0) -> np.ndarray:
        """The morph of A and B (alpha = weight of B), RGB uint8."""

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """Settings recorded in the morph manifest."""

    @classmethod
    def add_cli_arguments(cls, group) -> None:
        """Add this method's options to the argparse argument ``group``."""

    @classmethod
    def from_cli(cls, args) -> MorphGenerator:
        """Build the generator from the parsed command line."""
        return cls()


__all__ = ["MorphGenerator"]

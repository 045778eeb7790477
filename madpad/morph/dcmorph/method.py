"""The registered morph method ``dcmorph``: :class:`DCMorph`, a :class:`DCMorphGenerator` built from
flat keyword options (the fields of :class:`DCMorphSettings`, plus an optional prebuilt
``pipeline``), with its command-line options for ``python -m madpad.generate``."""

from __future__ import annotations

from typing import Any

from madpad.errors import UsageError

from .generator import DCMorphGenerator, make_settings


class DCMorph(DCMorphGenerator):
    """Morph method ``dcmorph`` (see docs/dcmorph.md). Unknown options are a
    :class:`~madpad.errors.UsageError` naming the close match; a real (not ``tiny_random``) model
    needs ``base_model`` and, unless ``stream="latent"``, ``ip_adapter`` and ``face_encoder``."""

    name = "dcmorph"
    required_files = ("base_model", "ip_adapter")

    def __init__(self, *, pipeline: Any = None, **options: Any):
        super().__init__(make_settings(**options), pipeline=pipeline)

    @classmethod
    def add_cli_arguments(cls, group) -> None:
        from .cli import add_arguments

        add_arguments(group)

    @classmethod
    def from_cli(cls, args) -> DCMorph:
        """Build the generator from the parsed namespace (UsageError for bad combinations)."""
        from .cli import settings_from_args

        params = settings_from_args(args)
        if not params:
            raise UsageError("dcmorph options missing from the parsed arguments (add_cli_arguments not called?)")
        return cls(**params)


__all__ = ["DCMorph"]

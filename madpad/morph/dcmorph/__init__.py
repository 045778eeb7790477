"""DCMorph-style dual-stream diffusion morphs (morph method ``dcmorph``).

Identity stream: IP-Adapter FaceID decoupled cross-attention with both identities passed
explicitly (:mod:`.attention`); latent stream: DDIM inversion of both sources + slerp
(:mod:`.pipeline`, :mod:`.slerp`); the generator and its settings (:mod:`.generator`);
FaceID checkpoint loading with the LoRA fused once (:mod:`.faceid`). See docs/dcmorph.md.

Importing this package does not import torch or diffusers; they load when a generator or
pipeline is built.
"""

from __future__ import annotations

from .cli import add_cli_arguments_dcmorph, from_cli_dcmorph
from .generator import DCMorphGenerator, DCMorphSettings, make_dcmorph
from .slerp import lerp, slerp

__all__ = ["make_dcmorph", "add_cli_arguments_dcmorph", "from_cli_dcmorph", "DCMorphGenerator", "DCMorphSettings",
           "slerp", "lerp"]

"""DCMorph-style dual-stream diffusion morphs (morph method ``dcmorph``).

Identity stream: IP-Adapter FaceID decoupled cross-attention with both identities passed
explicitly (:mod:`.attention`); latent stream: DDIM inversion of both sources + slerp
(:mod:`.pipeline`, :mod:`.slerp`); the generator and its settings (:mod:`.generator`), the
registered method :class:`DCMorph` with its command-line options (:mod:`.method`, :mod:`.cli`);
identity encoders (:data:`IDENTITY_ENCODERS`, :mod:`.identity`);
FaceID checkpoint loading with the LoRA fused once (:mod:`.faceid`). See docs/dcmorph.md.

Importing this package does not import torch or diffusers; they load when a generator or
pipeline is built.
"""

from __future__ import annotations

from .generator import DCMorphGenerator, DCMorphSettings, make_dcmorph
from .identity import IDENTITY_ENCODERS, IdentityEncoder
from .method import DCMorph
from .slerp import lerp, slerp

__all__ = ["DCMorph", "DCMorphGenerator", "DCMorphSettings", "IDENTITY_ENCODERS", "IdentityEncoder", "lerp",
           "make_dcmorph", "slerp"]

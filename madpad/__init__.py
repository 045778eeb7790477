"""madpad: face morphing attack detection and presentation attack detection.

Layers (each imports only those below it)::

    madpad.io / madpad.data      images, manifests, caching
    madpad.metrics               pure numpy ISO/IEC 30107-3 and vulnerability metrics
    madpad.face                  detect, align, embed
    madpad.morph / mad / pad / segment
    madpad.report / madpad.pipeline
    CLIs: python -m madpad.generate | detect | report | pipeline | demo

Importing madpad has no side effects: no environment variables, thread settings,
logging handlers, network probes or files are touched.
"""

__version__ = "0.1.0"

from madpad.errors import (  # noqa: E402
    MadpadError,
    ManifestError,
    MissingDependencyError,
    UnknownComponentError,
    UsageError,
)

__all__ = [
    "__version__",
    "MadpadError",
    "ManifestError",
    "MissingDependencyError",
    "UnknownComponentError",
    "UsageError",
]

"""Helpers for tests, benchmarks and the GPU smoke test (tiny random-init components only)."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=4)
def cached_tiny_pipeline(name: str = "tiny_sd15"):
    """A tiny random-init :class:`DCMorphPipeline` built once per process. Do not mutate it:
    build a fresh one with ``DCMorphPipeline.from_tiny_config`` for tests that change weights."""
    from .pipeline import DCMorphPipeline

    return DCMorphPipeline.from_tiny_config(name)


def base_unet_state_dict(unet) -> dict:
    """The UNet's weights without our attention processors' identity weights."""
    return {k: v for k, v in unet.state_dict().items() if ".processor." not in k}


__all__ = ["cached_tiny_pipeline", "base_unet_state_dict"]

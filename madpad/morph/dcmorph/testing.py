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


def _byte_to_unicode() -> dict[int, str]:
    """The reversible byte -> printable-character table of byte-level BPE (GPT-2/CLIP layout).

    Order matters (it fixes the token ids): the printable bytes first, in byte order, then the
    remaining bytes mapped to 256, 257, ...
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in keep}
    rest = [b for b in range(256) if b not in table]
    table.update({b: chr(256 + i) for i, b in enumerate(rest)})
    return table


def clip_tokenizer_offline(model_max_length: int = 77):
    """A real ``transformers.CLIPTokenizer`` (49408 tokens) built from the BPE merges file that
    ``open_clip_torch`` ships (``bpe_simple_vocab_16e6.txt.gz``, the same vocabulary as OpenAI CLIP),
    so tests can save/load diffusers folders without the Hub."""
    import gzip
    import importlib.util
    from pathlib import Path

    from madpad.io import optional_import

    transformers = optional_import("transformers", extra="diffusion")
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("open_clip_torch is not installed; its BPE file is needed for an offline CLIP tokenizer")
    bpe = Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(bpe).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in lines]
    chars = list(_byte_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    tok = transformers.CLIPTokenizer(vocab={v: i for i, v in enumerate(vocab)}, merges=merges)
    tok.model_max_length = int(model_max_length)
    return tok


def save_tiny_diffusers_folder(path, *, seed: int = 0):
    """Write a tiny random-init SD1.5-class ``StableDiffusionPipeline`` folder (real CLIP tokenizer,
    49408-token text encoder) with ``save_pretrained``: exercises ``from_pretrained`` offline."""
    import json

    import torch

    from madpad.io import optional_import

    from .pipeline import make_schedulers, tiny_config_path

    diffusers = optional_import("diffusers", extra="diffusion")
    transformers = optional_import("transformers", extra="diffusion")
    cfg = json.loads(tiny_config_path("tiny_sd15").read_text(encoding="utf-8"))
    torch.manual_seed(seed)
    unet = diffusers.UNet2DConditionModel(**cfg["unet"])
    vae = diffusers.AutoencoderKL(**cfg["vae"])
    te_cfg = dict(cfg["text_encoder"], vocab_size=49408, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
    text_encoder = transformers.CLIPTextModel(transformers.CLIPTextConfig(**te_cfg))
    scheduler, _ = make_schedulers()
    pipe = diffusers.StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=clip_tokenizer_offline(),
                                             unet=unet, scheduler=scheduler, safety_checker=None,
                                             feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(path))
    return pipe


__all__ += ["clip_tokenizer_offline", "save_tiny_diffusers_folder"]

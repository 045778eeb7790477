"""A tiny deterministic word tokenizer for the random-init test models (no files, no downloads).

Real base models bring their own ``CLIPTokenizer`` (loaded by ``from_pretrained``). The tiny
random-init text encoders used by tests need something that works offline and implements the
small interface the pipeline uses: ``tokenizer(texts, padding="max_length", max_length=N,
truncation=True, return_tensors="pt").input_ids`` and ``model_max_length``. Words (lower-cased
runs of letters/digits) map to ids by CRC32, so the same text always gives the same ids.
The shipped tiny configs put EOS at the highest id, as CLIP does (its pooled output reads the
EOS position).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any, Sequence

_WORD = re.compile(r"[a-z0-9]+")


@dataclass
class TokenizerOutput:
    input_ids: Any


class HashWordTokenizer:
    """Word -> id by CRC32 (never a special id); BOS, EOS and padding like CLIP's layout."""

    def __init__(self, *, vocab_size: int = 1000, model_max_length: int = 77, bos_token_id: int = 0,
                 eos_token_id: int = 2, pad_token_id: int = 1):
        specials = {int(bos_token_id), int(eos_token_id), int(pad_token_id)}
        if vocab_size <= len(specials) or max(specials) >= vocab_size or min(specials) < 0:
            raise ValueError(f"vocab_size {vocab_size} must exceed the number of special ids and contain them "
                             f"(bos={bos_token_id}, eos={eos_token_id}, pad={pad_token_id})")
        if model_max_length < 2:
            raise ValueError(f"model_max_length must be >= 2; got {model_max_length}")
        self.vocab_size = int(vocab_size)
        self.model_max_length = int(model_max_length)
        self.bos_token_id, self.eos_token_id = int(bos_token_id), int(eos_token_id)
        self.pad_token_id = int(pad_token_id)

    def _word_id(self, word: str) -> int:
        specials = sorted({self.bos_token_id, self.eos_token_id, self.pad_token_id})
        idx = zlib.crc32(word.encode("utf-8")) % (self.vocab_size - len(specials))
        for s in specials:  # skip over the special ids
            if idx >= s:
                idx += 1
        return idx

    def encode(self, text: str) -> list[int]:
        return [self._word_id(w) for w in _WORD.findall(str(text).lower())]

    def __call__(self, texts: str | Sequence[str], *, padding: str | bool = "max_length", max_length: int | None = None,
                 truncation: bool = True, return_tensors: str | None = "pt") -> TokenizerOutput:
        import torch

        if isinstance(texts, str):
            texts = [texts]
        length = int(max_length or self.model_max_length)
        rows = []
        for text in texts:
            ids = [self.bos_token_id] + self.encode(text)
            if truncation:
                ids = ids[: length - 1]
            ids = ids + [self.eos_token_id]
            if padding in ("max_length", True):
                ids = ids + [self.pad_token_id] * (length - len(ids))
            rows.append(ids)
        if return_tensors != "pt":
            return TokenizerOutput(input_ids=rows)
        width = max(len(r) for r in rows)
        rows = [r + [self.pad_token_id] * (width - len(r)) for r in rows]
        return TokenizerOutput(input_ids=torch.tensor(rows, dtype=torch.long))

    def __repr__(self) -> str:
        return f"HashWordTokenizer(vocab_size={self.vocab_size}, model_max_length={self.model_max_length})"


__all__ = ["HashWordTokenizer", "TokenizerOutput"]

"""A learnable synthetic D-MAD task for tests, demos and smoke runs (no faces involved).

Each "subject" is a random 4x4 colour mosaic upscaled to ``size`` px. A bona fide pair is
(noisy copy of the subject, another noisy copy); an attack pair is (pixel average of the
subject and another subject - a "morph" -, noisy copy of the subject). A differential
detector can learn it; the scores mean nothing about real morphs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from madpad.mad.base import Pair


def _mosaic(rng: np.random.Generator, size: int) -> np.ndarray:
    cells = rng.uniform(0, 255, (4, 4, 3))
    k = size // 4
    return cells.repeat(k, 0).repeat(k, 1)


def _noisy(rng, img, sigma=8.0) -> np.ndarray:
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def synthetic_pairs(n: int = 96, *, seed: int = 0, size: int = 64, attack_every: int = 3) -> list[Pair]:
    """``n`` labelled pairs (every ``attack_every``-th is an attack of species ``blend``)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        base = _mosaic(rng, size)
        live = _noisy(rng, base)
        subj = f"s{seed}_{i}"
        if i % attack_every == 0:
            other = _mosaic(rng, size)
            sus = _noisy(rng, (base + other) / 2.0, sigma=2.0)
            out.append(Pair(id=f"p{i}", suspect=sus, live=live, label="attack", species="blend",
                            subjects=(subj, f"{subj}x")))
        else:
            out.append(Pair(id=f"p{i}", suspect=_noisy(rng, base), live=live, label="bona_fide",
                            subjects=(subj,)))
    return out


def write_synthetic_pairs(directory: str | os.PathLike, n: int = 48, *, seed: int = 0, size: int = 64,
                          name: str = "pairs.csv") -> Path:
    """Write :func:`synthetic_pairs` as PNG files + a pair CSV (relative paths); returns the CSV."""
    from madpad.data import write_table
    from madpad.io import write_image

    d = Path(directory)
    rows = []
    for p in synthetic_pairs(n, seed=seed, size=size):
        s_rel, l_rel = f"img/{seed}_{p.id}_s.png", f"img/{seed}_{p.id}_l.png"
        write_image(d / s_rel, p.suspect)
        write_image(d / l_rel, p.live)
        rows.append({"id": p.id, "suspect": s_rel, "live": l_rel, "label": p.label, "species": p.species,
                     "subjects": ";".join(p.subjects)})
    return write_table(d / name, rows, columns=["id", "suspect", "live", "label", "species", "subjects"])

"""Error rates used for early stopping (dev D-EER) and in training summaries.

Thin wrappers over :mod:`madpad.metrics` (ISO/IEC 30107-3 definitions): scores are
higher = more likely attack, a threshold ``t`` classifies "attack" when ``score >= t``;
APCER is the maximum over attack species; D-EER is interpolated between the two
bracketing thresholds; BPCER@APCER=x uses the largest threshold at which **every**
species' APCER is at most x (conservative).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np


def detection_eer(scores, y, species: Sequence[str] | None = None) -> float:
    """D-EER (fraction) of scores with labels ``y`` (1 = attack); NaN when a class is empty.

    >>> detection_eer([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])
    0.0
    """
    from madpad.metrics import UndefinedMetricWarning, d_eer

    y = np.asarray(y).astype(int)
    if not (y == 0).any() or not (y == 1).any():
        return float("nan")
    sp = None if species is None else [s if yy else "" for s, yy in zip(species, y)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return float(d_eer(np.asarray(scores, dtype=np.float64), y, species=sp).d_eer)


def summarize(scores, y, species: Sequence[str] | None = None) -> dict:
    """Counts, D-EER and BPCER at APCER 1 / 5 / 10 % (all rates as fractions)."""
    from madpad.metrics import bpcer_at_apcer

    y = np.asarray(y).astype(int)
    sp = None if species is None else [s if yy else "" for s, yy in zip(species, y)]
    out = {"n_bona_fide": int((y == 0).sum()), "n_attack": int((y == 1).sum()),
           "d_eer": detection_eer(scores, y, sp)}
    for x in (0.01, 0.05, 0.10):
        key = f"bpcer_at_apcer_{int(round(x * 100))}"
        if out["n_bona_fide"] and out["n_attack"]:
            out[key] = float(bpcer_at_apcer(np.asarray(scores, dtype=np.float64), y, x, species=sp).bpcer)
        else:
            out[key] = float("nan")
    return out

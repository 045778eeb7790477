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


def per_species(scores, y, species: Sequence[str], *, only: Sequence[str] | None = None) -> dict[str, dict]:
    """:func:`summarize` of each attack species against all bona fide pairs (``y`` 0), in the
    order of ``only`` (default: every species of the attack pairs, sorted). The mean over species
    of these figures is the dev key that chooses detectors (``benchmarks/mad_lomo.py``)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y).astype(int)
    sp = np.array([str(x) if yy else "" for x, yy in zip(species, y)], dtype=object)
    names = sorted({x for x in sp if x}) if only is None else [str(x) for x in only]
    out = {}
    for name in names:
        k = (y == 0) | (sp == name)
        out[name] = summarize(s[k], y[k], list(sp[k]))
    return out


def paired_subject_bootstrap(scores_a, scores_b, y, subjects, *, n_resamples: int = 1000, confidence: float = 0.95,
                             seed: int = 0) -> dict:
    """Compare two detectors scored on the **same** pairs: D-EER of each and of ``b - a``
    with a paired percentile bootstrap that resamples whole subjects (all pairs whose live
    capture shows that subject, bona fide and attack together), so detector differences are
    judged against subject-to-subject variation. Scores: higher = more likely attack.

    Returns fractions: ``d_eer_a``, ``d_eer_b``, ``diff`` (= b - a, negative = b better),
    ``ci_a``, ``ci_b``, ``ci_diff`` (lower, upper), ``p_b_better`` / ``p_b_worse`` (share of
    replicates where b's D-EER is below / above a's), ``n_subjects``, ``n_resamples`` (replicates
    with both classes). Deterministic for a given ``seed``.
    """
    a = np.asarray(scores_a, dtype=np.float64)
    b = np.asarray(scores_b, dtype=np.float64)
    y = np.asarray(y).astype(int)
    subj = np.asarray(subjects).astype(str)
    if not (a.shape == b.shape == y.shape == subj.shape) or a.ndim != 1:
        raise ValueError(f"scores_a, scores_b, y and subjects must be 1-D of one length; got shapes "
                         f"{a.shape}, {b.shape}, {y.shape}, {subj.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("scores must be finite (drop pairs without a face from both detectors first)")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    units, inv = np.unique(subj, return_inverse=True)
    members = [np.flatnonzero(inv == u) for u in range(len(units))]
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(int(n_resamples)):
        pick = np.concatenate([members[u] for u in rng.integers(len(units), size=len(units))])
        yy = y[pick]
        if yy.min() == yy.max():
            continue
        reps.append((detection_eer(a[pick], yy), detection_eer(b[pick], yy)))
    r = np.asarray(reps, dtype=np.float64).reshape(-1, 2)
    q = [50 * (1 - confidence), 50 * (1 + confidence)]
    d = r[:, 1] - r[:, 0]

    def ci(v):
        return tuple(float(x) for x in np.percentile(v, q)) if v.size else (float("nan"), float("nan"))

    ea, eb = detection_eer(a, y), detection_eer(b, y)
    return {"d_eer_a": ea, "d_eer_b": eb, "diff": eb - ea, "ci_a": ci(r[:, 0]), "ci_b": ci(r[:, 1]),
            "ci_diff": ci(d), "p_b_better": float((d < 0).mean()) if d.size else float("nan"),
            "p_b_worse": float((d > 0).mean()) if d.size else float("nan"),
            "n_subjects": len(units), "n_resamples": len(r)}

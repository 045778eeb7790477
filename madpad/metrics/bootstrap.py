"""Confidence intervals: seeded bootstrap (by subject when subjects are known) and
binomial intervals for a single error rate at a fixed threshold.

The bootstrap is expressed with *weights*: each replicate draws a multiplicity for every
resampling unit and the statistic is computed on the weighted sample, which avoids
copying the scores. Units are

* subjects, when ``subjects`` is given (all samples of a drawn subject enter together, in
  every class; class sizes then vary between replicates) -- the right unit when a subject
  contributes several samples, since those are not independent;
* single samples otherwise, drawn within each stratum (``strata``, e.g. bona fide and
  each attack species) so class sizes stay fixed.

Intervals are percentile intervals over the replicates whose statistic is finite; a
replicate in which a class is empty yields NaN and is counted in ``n_invalid``.

>>> import numpy as np
>>> x = np.arange(10.0)
>>> r = bootstrap_ci(lambda w: {"mean": float(np.average(x, weights=w))}, 10, n_resamples=200, seed=1)
>>> r["mean"].low < 4.5 < r["mean"].high
True
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["Interval", "bootstrap_weights", "bootstrap_ci", "binomial_ci"]


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    confidence: float
    method: str
    n_resamples: int = 0
    n_invalid: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _encode(values: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size != n:
        raise ValueError(f"{name} must be 1-D with {n} entries; got shape {arr.shape}")
    _, inv = np.unique(arr.astype(str), return_inverse=True)
    return inv.reshape(-1)


def bootstrap_weights(n: int, *, subjects: Any = None, strata: Any = None, n_resamples: int = 1000,
                      seed: int = 0):
    """Yield ``n_resamples`` weight vectors (float64, length n), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    if subjects is not None:
        inv = _encode(subjects, n, "subjects")
        n_units = int(inv.max()) + 1 if n else 0
        for _ in range(int(n_resamples)):
            counts = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units)) if n_units else np.zeros(0)
            yield counts[inv].astype(np.float64)
        return
    if strata is not None:
        inv = _encode(strata, n, "strata")
        groups = [np.flatnonzero(inv == k) for k in range(int(inv.max()) + 1)] if n else []
    else:
        groups = [np.arange(n)]
    for _ in range(int(n_resamples)):
        w = np.zeros(n, dtype=np.float64)
        for g in groups:
            if g.size:
                w[g] = rng.multinomial(g.size, np.full(g.size, 1.0 / g.size))
        yield w


def bootstrap_ci(statistic: Callable[[np.ndarray], float | Mapping[str, float]], n: int, *, subjects: Any = None,
                 strata: Any = None, n_resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> dict[str, Interval]:
    """Percentile bootstrap intervals of ``statistic(weights)`` (a float or a dict of
    floats). The point estimate is ``statistic(ones)``. Returns name -> :class:`Interval`
    (name ``"value"`` for a float statistic). Deterministic for a given ``seed``."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be >= 1; got {n_resamples}")

    def as_dict(v):
        return dict(v) if isinstance(v, Mapping) else {"value": v}

    est = as_dict(statistic(np.ones(n, dtype=np.float64)))
    names = list(est)
    reps = np.full((int(n_resamples), len(names)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, w in enumerate(bootstrap_weights(n, subjects=subjects, strata=strata, n_resamples=n_resamples,
                                                seed=seed)):
            d = as_dict(statistic(w))
            reps[i] = [d.get(k, np.nan) for k in names]
    alpha = (1 - confidence) / 2
    out = {}
    method = "bootstrap-subject" if subjects is not None else "bootstrap"
    for j, k in enumerate(names):
        col = reps[:, j]
        ok = np.isfinite(col)
        n_bad = int((~ok).sum())
        if ok.sum() == 0:
            lo = hi = float("nan")
        else:
            lo, hi = np.quantile(col[ok], [alpha, 1 - alpha])
        out[k] = Interval(estimate=float(est[k]), low=float(lo), high=float(hi), confidence=confidence,
                          method=method, n_resamples=int(n_resamples), n_invalid=n_bad)
    return out


def binomial_ci(k: float, n: float, *, confidence: float = 0.95, method: str = "wilson") -> Interval:
    """Interval for a proportion ``k / n`` (``"wilson"`` or exact ``"clopper-pearson"``).
    Assumes independent samples, so it is too narrow when subjects repeat.

    >>> iv = binomial_ci(5, 100)
    >>> round(iv.low, 4), round(iv.high, 4)
    (0.0215, 0.1118)
    """
    if n <= 0:
        nan = float("nan")
        return Interval(nan, nan, nan, confidence, method)
    p = k / n
    alpha = 1 - confidence
    if method == "wilson":
        from scipy.special import ndtri

        z = float(ndtri(1 - alpha / 2))
        den = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / den
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
        lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    elif method == "clopper-pearson":
        from scipy.stats import beta

        lo = 0.0 if k <= 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
        hi = 1.0 if k >= n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    else:
        raise ValueError(f"method must be 'wilson' or 'clopper-pearson'; got {method!r}")
    return Interval(estimate=float(p), low=float(lo), high=float(hi), confidence=confidence, method=method)

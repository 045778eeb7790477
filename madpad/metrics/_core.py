"""Shared machinery: input checks, weighted sorted score classes, conservative thresholds.

Internally every score set is expressed in the *attack direction*: a sample is
classified "positive" (attack / match) when ``score >= threshold``. Two kinds of error:

* a "negative" class (bona fide; impostor) is in error when ``score >= t``
  (BPCER; FMR): ``rate = W{s >= t} / W``;
* a "positive" class (attack species; genuine) is in error when ``score < t``
  (APCER; FNMR): ``rate = W{s < t} / W``.

Each class is kept sorted ascending (:class:`SortedScores`) with optional sample weights
(used by the bootstrap); all rates at any threshold are then one ``searchsorted``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np

# relative slack when comparing a rate target with a count ratio (x * n is not exact in floats)
_REL_TOL = 1e-12


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined for the given input (e.g. an empty class); NaN is returned."""


def warn_undefined(message: str) -> None:
    warnings.warn(message, UndefinedMetricWarning, stacklevel=3)


# --------------------------------------------------------------------------- validation
def as_scores(values: Any, *, name: str = "scores", allow_empty: bool = True) -> np.ndarray:
    """1-D finite float64 array, or ValueError naming ``name`` and the first bad index."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric; {exc}") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array; got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} is empty")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        kind = "NaN" if np.isnan(arr[i]) else "infinite values"
        raise ValueError(f"{name} contains {kind} ({int(bad.sum())} non-finite value(s); first at index {i}: "
                         f"{arr[i]}); remove or fix them before computing metrics")
    return arr


def check_same_length(**arrays: Sequence | None) -> None:
    lengths = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise ValueError(f"inputs have inconsistent lengths: {desc}")


def check_rate(x: float, *, name: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1]; got {x!r}") from None
    if not (0.0 <= v <= 1.0) or math.isnan(v):
        raise ValueError(f"{name} must be in [0, 1]; got {x!r}")
    return v


def check_threshold(t: float, *, name: str = "threshold") -> float:
    try:
        v = float(t)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number; got {t!r}") from None
    if math.isnan(v):
        raise ValueError(f"{name} is NaN")
    return v


MATCH_RULES = (">=", ">")


def check_rule(rule: str, *, name: str = "match_rule") -> str:
    if rule not in MATCH_RULES:
        raise ValueError(f"{name} must be one of {MATCH_RULES}; got {rule!r}")
    return rule


def to_ge_threshold(t: float, rule: str) -> float:
    """Threshold for the ``>=`` rule giving the same decisions as ``rule`` at ``t``."""
    return float(np.nextafter(t, np.inf)) if rule == ">" else float(t)


def from_ge_threshold(t: float, rule: str) -> float:
    """Inverse of :func:`to_ge_threshold`: ``s >= t`` equals ``s > nextafter(t, -inf)``."""
    return float(np.nextafter(t, -np.inf)) if rule == ">" else float(t)


def safe_rate(num: float, den: float, *, what: str) -> float:
    if den <= 0:
        warn_undefined(f"{what} is undefined: the class is empty; returning NaN")
        return float("nan")
    return float(num) / float(den)


# --------------------------------------------------------------------------- sorted classes
class SortedScores:
    """One class of scores sorted ascending, with optional per-sample weights.

    ``cw`` is the exclusive cumulative weight (length n + 1, ``cw[0] = 0``); with no weights
    every sample weighs 1 and index arithmetic replaces ``cw``.
    """

    __slots__ = ("v", "cw", "n")

    def __init__(self, sorted_values: np.ndarray, weights: np.ndarray | None = None):
        self.v = sorted_values
        self.n = int(sorted_values.size)
        if weights is None:
            self.cw = None
        else:
            cw = np.empty(self.n + 1, dtype=np.float64)
            cw[0] = 0.0
            np.cumsum(weights, dtype=np.float64, out=cw[1:])
            self.cw = cw

    @classmethod
    def from_unsorted(cls, values: np.ndarray) -> "SortedScores":
        return cls(np.sort(np.asarray(values, dtype=np.float64), kind="stable"))

    def with_weights(self, weights: np.ndarray) -> "SortedScores":
        return SortedScores(self.v, weights)

    @property
    def total(self) -> float:
        return float(self.n) if self.cw is None else float(self.cw[-1])

    def weight_below(self, t):
        """Weight of scores ``< t`` (scalar or array ``t``)."""
        idx = np.searchsorted(self.v, t, side="left")
        return idx.astype(np.float64) if self.cw is None else self.cw[idx]

    def weight_at_or_above(self, t):
        return self.total - self.weight_below(t)

    def last_index_cum_le(self, c: float) -> int:
        """Largest j in 0..n with cumulative weight of the first j samples <= c."""
        c = c * (1.0 + _REL_TOL) + _REL_TOL
        if self.cw is None:
            return int(min(self.n, max(0, math.floor(c))))
        return int(np.searchsorted(self.cw, c, side="right")) - 1

    def first_index_cum_ge(self, c: float) -> int:
        """Smallest m in 0..n with cumulative weight of the first m samples >= c."""
        c = c * (1.0 - _REL_TOL) - _REL_TOL
        if self.cw is None:
            return int(min(self.n, max(0, math.ceil(c))))
        return int(np.searchsorted(self.cw, c, side="left"))


def positive_threshold_at_rate(pos: SortedScores, x: float, top: float) -> float:
    """Largest threshold ``t`` with ``W{pos < t} <= x * W`` (conservative: rate <= x).

    ``top`` is returned when every positive may be misclassified (it must lie above every
    score). With ``n`` unit weights this is the order statistic ``v[floor(x n)]``.
    """
    j = pos.last_index_cum_le(x * pos.total)
    return float(top) if j >= pos.n else float(pos.v[j])


def negative_threshold_at_rate(neg: SortedScores, x: float, bottom: float) -> float:
    """Smallest threshold ``t`` with ``W{neg >= t} <= x * W`` (conservative: rate <= x).

    Returns ``nextafter(v[m-1], +inf)`` (just above the m-th smallest score), or ``bottom``
    (at or below every score) when ``x`` allows every negative to be in error.
    """
    m = neg.first_index_cum_ge((1.0 - x) * neg.total) if x < 1.0 else 0
    if m <= 0:
        return float(bottom)
    return float(np.nextafter(neg.v[m - 1], np.inf))


def equal_error_point(negative: SortedScores, positives: Sequence[SortedScores], *, bottom: float, top: float,
                      combine: str = "max") -> dict:
    """Equal error rate by linear interpolation between the two bracketing thresholds.

    The positive error (APCER/FNMR) is the maximum over ``positives`` (``combine="max"``)
    or a single pooled class. f(t) = pos_err(t) - neg_err(t) is non-decreasing in t; the
    smallest candidate threshold (a score value, or ``top``) with f >= 0 is ``t_hi`` and the
    largest candidate below it is ``t_lo``; the operating points at ``t_lo`` and ``t_hi``
    are joined by a straight segment and the point where both errors are equal is returned.
    """
    arrays = [negative] + list(positives)

    def errors(t):
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        neg_err = negative.weight_at_or_above(t) / negative.total
        pos = np.stack([p.weight_below(t) / p.total for p in positives])
        pos_err = pos.max(axis=0) if combine == "max" else pos[0]
        return pos_err, neg_err

    def f(t):
        a, b = errors(t)
        return a - b

    # smallest candidate with f >= 0: binary search in each sorted array, keep the minimum
    t_hi = float(top)
    for arr in arrays:
        lo, hi = 0, arr.n  # search first index i with f(v[i]) >= 0
        if hi == 0:
            continue
        # quick reject: if f at the largest value < 0 nothing here qualifies
        if f(arr.v[-1])[0] < 0:
            continue
        while lo < hi:
            mid = (lo + hi) // 2
            if f(arr.v[mid])[0] >= 0:
                hi = mid
            else:
                lo = mid + 1
        t_hi = min(t_hi, float(arr.v[lo]))
    t_lo = float(bottom)
    for arr in arrays:
        i = int(np.searchsorted(arr.v, t_hi, side="left")) - 1
        if i >= 0:
            t_lo = max(t_lo, float(arr.v[i]))
    (a_lo,), (b_lo,) = errors(t_lo)
    (a_hi,), (b_hi,) = errors(t_hi)
    d_lo, d_hi = a_lo - b_lo, a_hi - b_hi
    if d_hi == d_lo:  # only when t_lo == t_hi, i.e. f(bottom) >= 0 (cannot happen for non-empty classes)
        lam = 1.0
    else:
        lam = float(-d_lo / (d_hi - d_lo))
    lam = min(1.0, max(0.0, lam))
    eer = float(a_lo + lam * (a_hi - a_lo))
    return {
        "eer": eer,
        "threshold": float(t_lo + lam * (t_hi - t_lo)),
        "lambda": lam,
        "threshold_low": t_lo, "pos_err_low": float(a_lo), "neg_err_low": float(b_lo),
        "threshold_high": t_hi, "pos_err_high": float(a_hi), "neg_err_high": float(b_hi),
    }


def grid_indices(n: int, max_points: int) -> np.ndarray:
    """Indices into a sorted array of length n: every index when n <= max_points, else a
    mix of evenly spaced and normal-deviate-spaced positions (dense in both tails, where a
    DET plot needs resolution)."""
    if n <= max_points:
        return np.arange(n)
    from scipy.special import ndtr

    half = max(2, max_points // 2)
    lin = np.linspace(0, n - 1, half)
    z = np.linspace(-6.0, 6.0, half)
    prob = ndtr(z) * (n - 1)
    idx = np.unique(np.concatenate([lin, prob, [0, n - 1]]).round().astype(np.int64))
    return idx[(idx >= 0) & (idx < n)]

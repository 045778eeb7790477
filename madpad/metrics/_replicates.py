"""Vectorised bootstrap replicates over sorted score classes (binned weights, no re-sorting).

A bootstrap replicate of one class of ``n`` sorted scores is a vector of multiplicities
(how often each score was drawn). Every figure of a PAD report only asks of it the
*cumulative weight* of the first ``j`` sorted scores at a few indices ``j``. This module
keeps, per replicate and class, only the weights of **bins** of consecutive sorted scores
and reads the cumulative weight inside a bin by linear interpolation (the conditional mean
of the within-bin allocation given the bin's total):

* the bin totals are exact draws: for the sample bootstrap a multinomial over the bins is
  exactly the sum of the per-sample multinomial over each bin; for the subject bootstrap
  they are exact sums of the subject counts;
* bins are one score wide in both tails and grow geometrically towards the middle:
  the bin starting ``d`` scores from the nearer end of the class holds at most
  ``max(1, floor(eps * d))`` scores. Interpolating inside a bin of ``m`` scores leaves out a
  conditional variance of at most ``m / 4`` counts, against a binomial variance of at least
  ``d / 2`` for the cumulative count at that rank: at most ``eps / 2 + 1 / (2 d)`` of the
  variance (``3 eps / 4`` once ``m >= 2``), i.e. 0.3 % of the variance and 0.15 % of the
  standard deviation for the default ``eps = 1/256``;
* with ``eps = 0`` every bin holds one score and the replicates are exact (O(n) per
  replicate); with all weights 1 the interpolation is exact, so the point estimate is
  reproduced to the last bit.

Every function works on ``R`` replicates at once (arrays of shape ``(R,)`` or ``(R, B)``).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from madpad.metrics._core import _REL_TOL

DEFAULT_BIN_EPS = 1.0 / 256.0


def tail_bins(n: int, eps: float = DEFAULT_BIN_EPS) -> np.ndarray:
    """Bin start indices (length B + 1, ``starts[-1] == n``) for a class of ``n`` sorted
    scores: one-score bins in both tails, growing geometrically (relative width ``eps``)
    towards the middle; symmetric, so both tails get the same resolution."""
    n = int(n)
    if n <= 0:
        return np.zeros(1, dtype=np.int64)
    if eps <= 0 or n <= 2.0 / eps + 2:
        return np.arange(n + 1, dtype=np.int64)
    half = n // 2
    edges = [0]
    d = 0
    while d < half:
        d += max(1, int(math.floor(eps * d)))
        edges.append(min(d, half))
    left = np.asarray(edges, dtype=np.int64)             # 0 .. half
    right = (n - left[::-1])                              # n - half .. n
    out = np.unique(np.concatenate([left, right]))
    return out


class BinnedClass:
    """One class of sorted scores (attack direction) with its bins."""

    __slots__ = ("v", "n", "starts", "sizes", "B")

    def __init__(self, sorted_values: np.ndarray, starts: np.ndarray):
        self.v = sorted_values
        self.n = int(sorted_values.size)
        self.starts = np.asarray(starts, dtype=np.int64)
        self.sizes = np.diff(self.starts).astype(np.float64)
        self.B = int(self.sizes.size)

    def bin_of(self, j: np.ndarray) -> np.ndarray:
        """Bin holding sorted index ``j`` (0..n-1); ``j == n`` maps to B (the end)."""
        return np.searchsorted(self.starts, j, side="right") - 1


class ClassReplicates:
    """Bin weights of ``R`` replicates of one class: ``W`` (R, B) and the exclusive
    cumulative ``CW`` (R, B + 1)."""

    __slots__ = ("cls", "W", "CW", "total", "R")

    def __init__(self, cls: BinnedClass, W: np.ndarray):
        self.cls = cls
        self.W = np.asarray(W, dtype=np.float64)
        self.R = int(self.W.shape[0])
        CW = np.zeros((self.R, cls.B + 1), dtype=np.float64)
        np.cumsum(self.W, axis=1, out=CW[:, 1:])
        self.CW = CW
        self.total = CW[:, -1].copy()

    # ------------------------------------------------------------------ cumulative weights
    def cum_at_index(self, j: np.ndarray) -> np.ndarray:
        """Weight of the first ``j[r]`` sorted scores in replicate r (``j`` of shape (R,))."""
        c = self.cls
        j = np.asarray(j, dtype=np.int64)
        b = c.bin_of(j)
        rows = np.arange(self.R)
        inside = b < c.B
        bb = np.minimum(b, c.B - 1)
        frac = np.where(inside, (j - c.starts[bb]) / c.sizes[bb], 0.0)
        out = self.CW[rows, np.minimum(b, c.B)] + np.where(inside, self.W[rows, bb] * frac, 0.0)
        return out

    def weight_below(self, t: np.ndarray) -> np.ndarray:
        """Weight of scores ``< t[r]`` in replicate r."""
        return self.cum_at_index(searchsorted(self.cls.v, t))

    # ------------------------------------------------------------------ conservative indices
    def last_index_cum_le(self, c: np.ndarray) -> np.ndarray:
        """Largest j in 0..n with cum(j) <= c[r] (the interpolated cumulative weight)."""
        cl = self.cls
        c = np.asarray(c, dtype=np.float64) * (1.0 + _REL_TOL) + _REL_TOL
        # last bin whose start weight is <= c
        b = np.sum(self.CW[:, :cl.B] <= c[:, None], axis=1) - 1
        b = np.maximum(b, 0)
        rows = np.arange(self.R)
        w = self.W[rows, b]
        base = self.CW[rows, b]
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.floor((c - base) / w * cl.sizes[b])
        k = np.where(w > 0, k, cl.sizes[b] - 1)
        k = np.clip(k, 0, cl.sizes[b] - 1).astype(np.int64)
        j = cl.starts[b] + k
        return np.where(self.total <= c, cl.n, j)

    def first_index_cum_ge(self, c: np.ndarray) -> np.ndarray:
        """Smallest j in 0..n with cum(j) >= c[r]."""
        cl = self.cls
        c = np.asarray(c, dtype=np.float64) * (1.0 - _REL_TOL) - _REL_TOL
        b = np.sum(self.CW[:, :cl.B] < c[:, None], axis=1) - 1   # last bin starting below c
        b = np.maximum(b, 0)
        rows = np.arange(self.R)
        w = self.W[rows, b]
        base = self.CW[rows, b]
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.ceil((c - base) / w * cl.sizes[b])
        k = np.where(w > 0, k, cl.sizes[b])
        k = np.clip(k, 0, cl.sizes[b]).astype(np.int64)
        j = cl.starts[b] + k
        return np.where(c <= 0, 0, j)


def searchsorted(v: np.ndarray, t: np.ndarray, side: str = "left") -> np.ndarray:
    """``np.searchsorted`` for many keys, sorting the keys first (much faster on big arrays)."""
    t = np.asarray(t, dtype=np.float64)
    if t.size < 64:
        return np.searchsorted(v, t, side=side)
    o = np.argsort(t, kind="stable")
    out = np.empty(t.size, dtype=np.int64)
    out[o] = np.searchsorted(v, t[o], side=side)
    return out


# --------------------------------------------------------------------------- figures
def bpcer_at_apcer(bf: ClassReplicates, attacks: Sequence[ClassReplicates], x: float, top: float) -> np.ndarray:
    """BPCER at the largest threshold with the APCER of every species <= x (per replicate)."""
    t = np.full(bf.R, np.inf)
    for a in attacks:
        j = a.last_index_cum_le(x * a.total)
        tj = np.where(j >= a.cls.n, top, a.cls.v[np.minimum(j, a.cls.n - 1)])
        t = np.minimum(t, tj)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (bf.total - bf.weight_below(t)) / bf.total


def apcer_at_bpcer(bf: ClassReplicates, attacks: Sequence[ClassReplicates], x: float, bottom: float) -> np.ndarray:
    """APCER (max over species) at the smallest threshold with BPCER <= x (per replicate)."""
    if x < 1.0:
        m = bf.first_index_cum_ge((1.0 - x) * bf.total)
    else:
        m = np.zeros(bf.R, dtype=np.int64)
    t = np.where(m <= 0, bottom, np.nextafter(bf.cls.v[np.maximum(m - 1, 0)], np.inf))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.max(np.stack([a.weight_below(t) / a.total for a in attacks]), axis=0)


def d_eer(bf: ClassReplicates, attacks: Sequence[ClassReplicates], bottom: float, top: float) -> np.ndarray:
    """D-EER (APCER max over species = BPCER) per replicate, by linear interpolation between
    the two bracketing thresholds -- the vectorised twin of ``_core.equal_error_point``."""
    R = bf.R

    def errors(t):
        with np.errstate(divide="ignore", invalid="ignore"):
            neg = (bf.total - bf.weight_below(t)) / bf.total
            pos = np.max(np.stack([a.weight_below(t) / a.total for a in attacks]), axis=0)
        return pos, neg

    def f(t):
        a, b = errors(t)
        return a - b

    t_hi = np.full(R, float(top))
    for arr in [bf] + list(attacks):
        v = arr.cls.v
        n = arr.cls.n
        if n == 0:
            continue
        ok = f(np.full(R, v[-1])) >= 0          # rows with a qualifying value in this array
        lo = np.zeros(R, dtype=np.int64)
        hi = np.full(R, n, dtype=np.int64)
        hi[~ok] = 0
        while True:
            act = lo < hi
            if not act.any():
                break
            mid = (lo + hi) // 2
            tm = v[np.minimum(mid, n - 1)]
            good = f(tm) >= 0
            hi = np.where(act & good, mid, hi)
            lo = np.where(act & ~good, mid + 1, lo)
        cand = np.where(ok, v[np.minimum(lo, n - 1)], np.inf)
        t_hi = np.minimum(t_hi, cand)
    t_lo = np.full(R, float(bottom))
    for arr in [bf] + list(attacks):
        v = arr.cls.v
        if arr.cls.n == 0:
            continue
        i = searchsorted(v, t_hi) - 1
        t_lo = np.where(i >= 0, np.maximum(t_lo, v[np.maximum(i, 0)]), t_lo)
    a_lo, b_lo = errors(t_lo)
    a_hi, b_hi = errors(t_hi)
    d_lo, d_hi = a_lo - b_lo, a_hi - b_hi
    den = d_hi - d_lo
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(den == 0, 1.0, -d_lo / den)
    lam = np.clip(lam, 0.0, 1.0)
    return a_lo + lam * (a_hi - a_lo)


def summary_figures(bf: ClassReplicates, attacks: Sequence[ClassReplicates], targets: Sequence[float], *,
                    bottom: float, top: float) -> dict[str, np.ndarray]:
    """The figures of :func:`madpad.metrics.pad_summary_figures`, one value per replicate;
    NaN where a class has no weight in a replicate."""
    out = {"d_eer": d_eer(bf, attacks, bottom, top)}
    for x in targets:
        out[f"bpcer@apcer={x:g}"] = bpcer_at_apcer(bf, attacks, x, top)
        out[f"apcer@bpcer={x:g}"] = apcer_at_bpcer(bf, attacks, x, bottom)
    invalid = bf.total <= 0
    for a in attacks:
        invalid |= a.total <= 0
    if invalid.any():
        for v in out.values():
            v[invalid] = np.nan
    return out


# --------------------------------------------------------------------------- unit -> bin maps
def unit_bin_matrix(unit_of_sorted: np.ndarray, starts: np.ndarray, n_units: int):
    """Sparse (n_units x B) matrix counting the class's sorted scores of each unit (subject
    or sample) in each bin, so that ``unit_counts @ M`` gives the bin weights."""
    from scipy.sparse import csr_matrix

    n = int(unit_of_sorted.size)
    B = int(starts.size - 1)
    bins = np.searchsorted(starts, np.arange(n), side="right") - 1
    return csr_matrix((np.ones(n, dtype=np.float64), (np.asarray(unit_of_sorted, dtype=np.int64), bins)),
                      shape=(int(n_units), B))


def percentile_intervals(reps: dict, *, confidence: float) -> dict[str, tuple[float, float, int]]:
    """``(low, high, n_invalid)`` per figure: percentile interval over the finite replicates."""
    alpha = (1 - confidence) / 2
    out = {}
    for k, col in reps.items():
        col = np.asarray(col, dtype=np.float64)
        ok = np.isfinite(col)
        if ok.any():
            lo, hi = np.quantile(col[ok], [alpha, 1 - alpha])
        else:
            lo = hi = float("nan")
        out[k] = (float(lo), float(hi), int((~ok).sum()))
    return out

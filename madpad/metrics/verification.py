"""Verification (face recognition) error rates.

Conventions: comparison scores are similarities (**higher = same person**). A comparison
*matches* when ``score >= threshold`` (``match_rule=">="``, default, as bob.measure) or
``score > threshold`` (``match_rule=">"``, as the reference MMPMR code).

* FMR(t)  = share of impostor comparisons that match;
* FNMR(t) = share of genuine comparisons that do not match;
* :func:`threshold_at_fmr` is conservative: the realised FMR is **at most** the target
  (smallest such threshold, i.e. lowest FNMR); it is ``nextafter`` just above an impostor
  score for ``>=`` and exactly an impostor score for ``>``.
* EER by linear interpolation between the two bracketing thresholds (as the D-EER).

>>> imp = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
>>> t = threshold_at_fmr(imp, 0.1)
>>> fmr(imp, t), t > 0.9
(0.1, True)
>>> threshold_at_fmr(imp, 0.1, match_rule=">")
0.9
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from madpad.metrics._core import (
    SortedScores,
    as_scores,
    check_rate,
    check_rule,
    check_threshold,
    equal_error_point,
    from_ge_threshold,
    negative_threshold_at_rate,
    safe_rate,
    to_ge_threshold,
    warn_undefined,
)

__all__ = ["fmr", "fnmr", "fmr_fnmr", "threshold_at_fmr", "fnmr_at_fmr", "eer", "verification_det_curve",
           "VerificationPoint", "EER"]


def fmr(impostor_scores: Any, threshold: float, *, match_rule: str = ">=") -> float:
    """False match rate: share of impostor scores that match at ``threshold``."""
    check_rule(match_rule)
    s = as_scores(impostor_scores, name="impostor_scores")
    t = check_threshold(threshold)
    hits = np.count_nonzero(s >= t) if match_rule == ">=" else np.count_nonzero(s > t)
    return safe_rate(hits, s.size, what="FMR")


def fnmr(genuine_scores: Any, threshold: float, *, match_rule: str = ">=") -> float:
    """False non-match rate: share of genuine scores that do not match at ``threshold``."""
    check_rule(match_rule)
    s = as_scores(genuine_scores, name="genuine_scores")
    t = check_threshold(threshold)
    miss = np.count_nonzero(s < t) if match_rule == ">=" else np.count_nonzero(s <= t)
    return safe_rate(miss, s.size, what="FNMR")


def fmr_fnmr(genuine_scores: Any, impostor_scores: Any, threshold: float, *, match_rule: str = ">=") -> tuple[float, float]:
    """``(FMR, FNMR)`` at ``threshold``."""
    return (fmr(impostor_scores, threshold, match_rule=match_rule),
            fnmr(genuine_scores, threshold, match_rule=match_rule))


def threshold_at_fmr(impostor_scores: Any, fmr_target: float, *, match_rule: str = ">=") -> float:
    """Smallest threshold whose realised FMR is at most ``fmr_target`` (conservative).

    Needs at least one impostor score; with n impostors the achievable FMR steps are 1/n,
    so a target below 1/n gives FMR 0 (a threshold above every impostor score).
    """
    check_rule(match_rule)
    x = check_rate(fmr_target, name="fmr_target")
    s = as_scores(impostor_scores, name="impostor_scores", allow_empty=False)
    srt = SortedScores.from_unsorted(s)
    t = negative_threshold_at_rate(srt, x, float(srt.v[0]))
    return from_ge_threshold(t, match_rule)


@dataclass(frozen=True)
class VerificationPoint:
    target_fmr: float
    threshold: float
    fmr: float
    fnmr: float
    n_genuine: int
    n_impostor: int

    def to_dict(self) -> dict:
        return asdict(self)


def fnmr_at_fmr(genuine_scores: Any, impostor_scores: Any, fmr_target: float, *,
                match_rule: str = ">=") -> VerificationPoint:
    """FNMR at the conservative threshold for ``fmr_target`` (see :func:`threshold_at_fmr`).

    >>> p = fnmr_at_fmr([0.25, 0.7, 0.9, 0.95], [0.1, 0.2, 0.3, 0.6], 0.25)
    >>> p.fmr, p.fnmr
    (0.25, 0.25)
    """
    g = as_scores(genuine_scores, name="genuine_scores")
    t = threshold_at_fmr(impostor_scores, fmr_target, match_rule=match_rule)
    imp = as_scores(impostor_scores, name="impostor_scores")
    return VerificationPoint(target_fmr=float(fmr_target), threshold=t,
                             fmr=fmr(imp, t, match_rule=match_rule),
                             fnmr=fnmr(g, t, match_rule=match_rule) if g.size else _nan_warn("FNMR"),
                             n_genuine=int(g.size), n_impostor=int(imp.size))


def _nan_warn(what: str) -> float:
    warn_undefined(f"{what} is undefined: no genuine scores; returning NaN")
    return float("nan")


@dataclass(frozen=True)
class EER:
    eer: float
    threshold: float
    bracket: dict

    def to_dict(self) -> dict:
        return asdict(self)


def eer(genuine_scores: Any, impostor_scores: Any, *, match_rule: str = ">=") -> EER:
    """Equal error rate (FMR = FNMR), interpolated between the bracketing thresholds.

    >>> eer([0.6, 0.7, 0.8, 0.9], [0.1, 0.2, 0.3, 0.4]).eer
    0.0
    """
    check_rule(match_rule)
    g = as_scores(genuine_scores, name="genuine_scores")
    imp = as_scores(impostor_scores, name="impostor_scores")
    if g.size == 0 or imp.size == 0:
        warn_undefined("EER is undefined without both genuine and impostor scores; returning NaN")
        return EER(float("nan"), float("nan"), {})
    gs, ims = SortedScores.from_unsorted(g), SortedScores.from_unsorted(imp)
    bottom = min(float(gs.v[0]), float(ims.v[0]))
    top = float(np.nextafter(max(float(gs.v[-1]), float(ims.v[-1])), np.inf))
    r = equal_error_point(ims, [gs], bottom=bottom, top=top, combine="pooled")
    bracket = {"threshold_low": from_ge_threshold(r["threshold_low"], match_rule), "fnmr_low": r["pos_err_low"],
               "fmr_low": r["neg_err_low"], "threshold_high": from_ge_threshold(r["threshold_high"], match_rule),
               "fnmr_high": r["pos_err_high"], "fmr_high": r["neg_err_high"]}
    return EER(eer=r["eer"], threshold=from_ge_threshold(r["threshold"], match_rule), bracket=bracket)


def verification_det_curve(genuine_scores: Any, impostor_scores: Any, *, max_points: int | None = 2000,
                           match_rule: str = ">=") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(thresholds, fmr, fnmr)`` for a DET plot (e.g. :func:`madpad.report.plots.det_plot`
    with ``{label: (fmr, fnmr)}``). Thresholds ascend; FMR is non-increasing and FNMR
    non-decreasing. Exact at every distinct score with ``max_points=None``, else at up to
    about ``max_points`` thresholds per class, dense in the tails.

    >>> t, a, b = verification_det_curve([0.6, 0.8], [0.1, 0.7], max_points=None)
    >>> a.tolist(), b.tolist()
    ([1.0, 0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5, 1.0])
    """
    from madpad.metrics.pad import PadScores

    check_rule(match_rule)
    g = as_scores(genuine_scores, name="genuine_scores", allow_empty=False)
    imp = as_scores(impostor_scores, name="impostor_scores", allow_empty=False)
    # impostors play the part of bona fide (error when score >= t), genuine that of attacks
    curve = PadScores.from_groups(imp, {"genuine": g}).det_curve(max_points=max_points)
    thr = np.array([from_ge_threshold(t, match_rule) for t in curve.thresholds])
    return thr, curve.bpcer, curve.apcer


# keep the helper importable for callers converting thresholds between rules
__all__ += ["to_ge_threshold", "from_ge_threshold"]

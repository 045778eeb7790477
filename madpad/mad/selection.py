"""Model selection on a dev set that does not tie, and leave-one-method-out (LOMO) dev selection.

A D-MAD dev set is small and often perfectly separated, so the dev D-EER of several candidates
(values of C, training epochs) ties, typically at 0, and "the first / smallest one" wins by
accident. :func:`selection_key` scores a candidate's dev scores with criteria compared one after
the other (:func:`compare_keys`, :func:`best_candidate`):

1. ``d_eer`` - the detection equal error rate (lower is better);
2. ``bpcer_at_apcer_1``, then ``bpcer_at_apcer_5`` - BPCER at the conservative thresholds with
   APCER (maximum over attack species) at most 1 % / 5 % (lower is better): the low-APCER
   operating points a border control runs at;
3. ``pauc_5`` - normalised partial AUC over APCER in [0, 5 %] (1 = every one of the lowest 5 %
   of attack scores is above every bona fide score; higher is better), worst attack species;
4. ``margin`` - tail margin, the criterion that practically never ties, also when the dev set is
   separated: mean of the lowest 5 % of attack scores minus mean of the highest 5 % of bona fide
   scores (at least one score each), divided by the pooled standard deviation of the two
   classes; worst attack species. Invariant to shifting and scaling the scores, so candidates
   whose scores live on different scales (decision values of an SVM with another C) compare
   fairly; larger = the classes sit further apart at the low-APCER end (higher is better);
5. then the caller's ``prefer`` value (lower wins: e.g. C, so the more regularised candidate).

Two values of a criterion tie when they differ by at most ``tol`` (rates are multiples of
1/n, so exact ties are common; averages over LOMO folds are compared with the same tolerance).
NaN (undefined, e.g. a class missing) is worse than any number and ties with NaN.

Leave-one-method-out selection (:func:`select_candidates` with ``mode="lomo"``): when the dev
pairs hold several attack species (morph methods), a candidate is judged per held-out species
``h``: it is fitted on the training pairs **without** species ``h`` (all bona fide training
pairs kept) and evaluated on the dev bona fide pairs plus the dev attacks of species ``h``; the
fold keys are averaged (criterion by criterion, each species weighted equally). A species that
the training pairs do not hold at all (a dev set with methods absent from training) is a fold
fitted on all training pairs. Selection then rewards the candidate that generalises to a morph
method it did not see, not the one that fits the training methods best. When no fold is
possible (one species, present in training) the pooled key is used and the result says so.

Pure numpy on top of :mod:`madpad.metrics`; scores are higher = more likely attack.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: the criteria of a :class:`SelectionKey` in the order they are compared, with their direction
CRITERIA: tuple[tuple[str, str], ...] = (("d_eer", "min"), ("bpcer_at_apcer_1", "min"), ("bpcer_at_apcer_5", "min"),
                                          ("pauc_5", "max"), ("margin", "max"))
SELECTION_MODES = ("lomo", "pooled")
DEFAULT_TOL = 1e-9
TAIL = 0.05


@dataclass(frozen=True)
class SelectionKey:
    """Dev criteria of one candidate (rates as fractions; see the module docstring)."""

    d_eer: float
    bpcer_at_apcer_1: float = math.nan
    bpcer_at_apcer_5: float = math.nan
    pauc_5: float = math.nan
    margin: float = math.nan

    def as_dict(self) -> dict:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> SelectionKey:
        return cls(**{k: float(d[k]) for k, _ in CRITERIA if k in d})


@dataclass
class Selection:
    """Result of :func:`select_candidates`: ``index`` of the chosen candidate, the ``keys`` of
    all candidates, ``decided_by`` (the criterion that separated the winner from the runner-up,
    ``"prefer"`` when all criteria tied, ``"single candidate"``), the ``mode`` used
    (``"lomo"``/``"pooled"``), the held-out species ``folds`` (LOMO) and a row per candidate in
    ``table`` (``candidate``, the criteria, per-fold D-EER and BPCER@APCER=1 % under ``folds``)."""

    index: int
    keys: list[SelectionKey]
    decided_by: str
    mode: str
    folds: list[str] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)
    note: str = ""


def normalized_pauc(bona_fide: np.ndarray, attack: np.ndarray, max_apcer: float = TAIL) -> float:
    """Partial area under the ROC (1 - BPCER against APCER) for APCER in [0, ``max_apcer``],
    divided by ``max_apcer``: the mean, over the lowest ``max_apcer`` fraction of attack scores
    (fractional weight at the boundary), of the share of bona fide scores below it (ties count
    half). 1 = perfect at the low-APCER end, 0.5 = chance level on average.

    >>> normalized_pauc(np.array([0.0, 1.0]), np.array([2.0, 3.0]))
    1.0
    """
    b = np.sort(np.asarray(bona_fide, dtype=np.float64))
    a = np.sort(np.asarray(attack, dtype=np.float64))
    if not b.size or not a.size:
        return math.nan
    n = a.size
    lo = np.arange(n) / n
    w = np.clip(np.minimum((np.arange(n) + 1) / n, max_apcer) - lo, 0.0, None)
    below = np.searchsorted(b, a, side="left")
    equal = np.searchsorted(b, a, side="right") - below
    f = (below + 0.5 * equal) / b.size
    return float((w * f).sum() / max_apcer)


def tail_margin(bona_fide: np.ndarray, attack: np.ndarray, tail: float = TAIL) -> float:
    """(mean of the lowest ``tail`` fraction of attack scores - mean of the highest ``tail``
    fraction of bona fide scores) / pooled standard deviation of the two classes; at least one
    score per class in each tail. Shift- and scale-invariant. Zero spread: 0 when the tails are
    equal, +-inf otherwise.

    >>> tail_margin(np.array([0.0, 2.0]), np.array([4.0, 6.0]), tail=0.5)
    2.0
    """
    b = np.sort(np.asarray(bona_fide, dtype=np.float64))
    a = np.sort(np.asarray(attack, dtype=np.float64))
    if not b.size or not a.size:
        return math.nan
    ka, kb = max(1, math.ceil(tail * a.size - 1e-12)), max(1, math.ceil(tail * b.size - 1e-12))
    gap = a[:ka].mean() - b[-kb:].mean()
    sd = math.sqrt(0.5 * (a.var() + b.var()))
    if sd <= 1e-300:
        return 0.0 if gap == 0 else math.copysign(math.inf, gap)
    return float(gap / sd)


def selection_key(scores: Any, y: Any, species: Sequence[str] | None = None) -> SelectionKey:
    """The :class:`SelectionKey` of dev ``scores`` (higher = attack) with labels ``y`` (1 =
    attack) and the attack ``species`` per pair (ignored for bona fide; ``None`` = one species).
    Non-finite scores are dropped (pairs without a usable face)."""
    from madpad.metrics import UndefinedMetricWarning, bpcer_at_apcer, d_eer

    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    yy = np.asarray(y).astype(int).reshape(-1)
    if s.shape != yy.shape:
        raise ValueError(f"scores and y must have one length; got {s.shape} and {yy.shape}")
    sp = np.array(["attack"] * yy.size if species is None else [str(v) for v in species], dtype=object)
    if sp.shape != yy.shape:
        raise ValueError(f"species must have one entry per score; got {sp.shape[0]} for {yy.shape[0]}")
    ok = np.isfinite(s)
    s, yy, sp = s[ok], yy[ok], sp[ok]
    if not (yy == 0).any() or not (yy == 1).any():
        return SelectionKey(math.nan)
    sp = np.where(yy == 1, sp, "")
    sp = np.where((yy == 1) & (sp == ""), "attack", sp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        de = float(d_eer(s, yy, species=list(sp)).d_eer)
        b1 = float(bpcer_at_apcer(s, yy, 0.01, species=list(sp)).bpcer)
        b5 = float(bpcer_at_apcer(s, yy, 0.05, species=list(sp)).bpcer)
    bf = s[yy == 0]
    per = [(normalized_pauc(bf, s[(yy == 1) & (sp == k)]), tail_margin(bf, s[(yy == 1) & (sp == k)]))
           for k in sorted(set(sp[yy == 1]))]
    return SelectionKey(de, b1, b5, min(p for p, _ in per), min(m for _, m in per))


def mean_key(keys: Sequence[SelectionKey]) -> SelectionKey:
    """Criterion-by-criterion mean of fold keys (NaN when any fold is NaN)."""
    if not keys:
        return SelectionKey(math.nan)
    return SelectionKey(**{k: float(np.mean([getattr(x, k) for x in keys])) for k, _ in CRITERIA})


def _cmp(a: float, b: float, direction: str, tol: float) -> int:
    """-1 when ``a`` is better, 1 when ``b`` is, 0 on a tie (NaN is worst; inf compares as usual)."""
    na, nb = math.isnan(a), math.isnan(b)
    if na or nb:
        return 0 if na and nb else (1 if na else -1)
    if a == b or (math.isfinite(a) and math.isfinite(b) and abs(a - b) <= tol):
        return 0
    better = a < b if direction == "min" else a > b
    return -1 if better else 1


def compare_keys(a: SelectionKey, b: SelectionKey, *, tol: float = DEFAULT_TOL) -> tuple[int, str]:
    """Lexicographic comparison of two keys with tolerance: ``(-1, criterion)`` when ``a`` is
    better, ``(1, criterion)`` when ``b`` is, ``(0, "")`` when every criterion ties."""
    for name, direction in CRITERIA:
        c = _cmp(getattr(a, name), getattr(b, name), direction, tol)
        if c:
            return c, name
    return 0, ""


def best_candidate(keys: Sequence[SelectionKey], prefer: Sequence[float] | None = None, *,
                   tol: float = DEFAULT_TOL) -> tuple[int, str]:
    """Index of the best key and the criterion that decided against the runner-up. Candidates
    are narrowed criterion by criterion (keep those within ``tol`` of the best value), then by
    the lowest ``prefer`` value (e.g. C: the more regularised candidate), then the first."""
    if not keys:
        raise ValueError("best_candidate needs at least one candidate")
    if prefer is not None and len(prefer) != len(keys):
        raise ValueError(f"prefer has {len(prefer)} values for {len(keys)} candidates")
    alive = list(range(len(keys)))
    decided = "single candidate" if len(keys) == 1 else ""
    for name, direction in CRITERIA:
        if len(alive) == 1:
            break
        best = alive[0]
        for i in alive[1:]:
            if _cmp(getattr(keys[i], name), getattr(keys[best], name), direction, tol) < 0:
                best = i
        keep = [i for i in alive if _cmp(getattr(keys[i], name), getattr(keys[best], name), direction, tol) == 0]
        if len(keep) < len(alive) and len(keep) == 1:
            decided = name
        alive = keep
    if len(alive) > 1:
        decided = "prefer" if prefer is not None else "first"
        if prefer is not None:
            alive = sorted(alive, key=lambda i: (prefer[i], i))
    return alive[0], decided


def lomo_folds(train_species: Sequence[str], train_y: Any, dev_species: Sequence[str], dev_y: Any) -> list[str]:
    """The held-out species of a LOMO selection: every attack species of the dev pairs for which
    the training pairs without it still hold bona fide and attack pairs (sorted)."""
    ty, dy = np.asarray(train_y).astype(int), np.asarray(dev_y).astype(int)
    tsp = np.asarray(list(train_species), dtype=object)
    dsp = np.asarray(list(dev_species), dtype=object)
    out = []
    if not (dy == 0).any():
        return out
    for h in sorted({str(s) for s, v in zip(dsp, dy) if v}):
        rest = ty[(ty == 0) | (tsp != h)]
        if (rest == 0).any() and (rest == 1).any():
            out.append(h)
    return out


#: fit_score(candidate, train_index, dev_index) -> dev scores of the candidate fitted on those rows
FitScore = Callable[[Any, np.ndarray, np.ndarray], np.ndarray]


def select_candidates(candidates: Sequence[Any], fit_score: FitScore, *, train_y: Any, train_species: Sequence[str],
                      dev_y: Any, dev_species: Sequence[str], mode: str = "lomo",
                      prefer: Sequence[float] | None = None, tol: float = DEFAULT_TOL) -> Selection:
    """Choose among ``candidates`` on the dev pairs (see the module docstring).

    ``fit_score(candidate, train_index, dev_index)`` fits the candidate on the training rows
    ``train_index`` and returns its scores (higher = attack) on the dev rows ``dev_index``.
    ``train_species`` / ``dev_species``: attack species per row (ignored for bona fide rows).
    ``mode``: ``"lomo"`` (a fold per held-out dev species, keys averaged; pooled when no fold
    is possible) or ``"pooled"`` (fit on all training rows, one key on all dev rows).
    ``prefer``: last tie-break, lower wins (e.g. the C values).
    """
    if mode not in SELECTION_MODES:
        raise ValueError(f"selection mode must be one of {list(SELECTION_MODES)}; got {mode!r}")
    if not candidates:
        raise ValueError("select_candidates needs at least one candidate")
    ty, dy = np.asarray(train_y).astype(int), np.asarray(dev_y).astype(int)
    tsp = np.asarray([str(s) for s in train_species], dtype=object)
    dsp = np.asarray([str(s) for s in dev_species], dtype=object)
    if tsp.shape != ty.shape or dsp.shape != dy.shape:
        raise ValueError("train_species / dev_species need one entry per training / dev row")
    folds = lomo_folds(tsp, ty, dsp, dy) if mode == "lomo" else []
    note = ""
    used = mode
    if mode == "lomo" and not folds:
        used, note = "pooled", "no leave-one-method-out fold possible (a single attack species): pooled dev key"
    rows, keys = [], []
    for c in candidates:
        row: dict = {"candidate": c}
        if used == "lomo":
            fk = []
            row["folds"] = {}
            for h in folds:
                ti = np.flatnonzero((ty == 0) | (tsp != h))
                di = np.flatnonzero((dy == 0) | (dsp == h))
                k = selection_key(fit_score(c, ti, di), dy[di], dsp[di])
                fk.append(k)
                row["folds"][h] = {"d_eer": k.d_eer, "bpcer_at_apcer_1": k.bpcer_at_apcer_1}
            key = mean_key(fk)
        else:
            ti, di = np.arange(ty.size), np.arange(dy.size)
            key = selection_key(fit_score(c, ti, di), dy, dsp)
        keys.append(key)
        row.update(key.as_dict())
        rows.append(row)
    idx, decided = best_candidate(keys, prefer, tol=tol)
    for i, r in enumerate(rows):
        r["selected"] = i == idx
    return Selection(idx, keys, decided, used, folds, rows, note)


def as_key(value: Any) -> SelectionKey:
    """A :class:`SelectionKey` from a key, a mapping of criteria, or a bare D-EER number (the
    other criteria then undefined, i.e. tied)."""
    if isinstance(value, SelectionKey):
        return value
    if isinstance(value, dict):
        return SelectionKey.from_dict(value)
    return SelectionKey(float(value))


__all__ = ["CRITERIA", "SELECTION_MODES", "Selection", "SelectionKey", "as_key", "best_candidate", "compare_keys",
           "lomo_folds", "mean_key", "normalized_pauc", "select_candidates", "selection_key", "tail_margin"]

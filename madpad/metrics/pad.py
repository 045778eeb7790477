"""Presentation attack detection metrics (ISO/IEC 30107-3).

Conventions (used by every function here, stated once):

* **Score direction**: higher score = more likely an attack (``higher_is_attack=True``).
  With ``higher_is_attack=False`` (bob-style scores, higher = bona fide) the scores are
  negated once at the boundary; thresholds are reported in the caller's score scale, and
  a sample is then classified attack when ``score <= threshold``.
* **Tie rule**: a presentation is classified *attack* when ``score >= threshold``.
* **APCER** of one attack species (PAI species) = share of its attack presentations
  classified bona fide (``score < t``). The reported **APCER is the maximum over
  species**; the per-species values come alongside, and the pooled APCER (all attacks as
  one class) is given separately and labelled ``apcer_pooled``.
* **BPCER** = share of bona fide presentations classified attack (``score >= t``).
* **ACER** = (APCER + BPCER) / 2 is *not* an ISO/IEC 30107-3 metric (deprecated by the
  standard); it is reported as ``acer_non_iso``.
* **BPCER@APCER=x** uses the largest threshold at which the APCER of *every* species is at
  most x (conservative, as Idiap's bob.pad); **APCER@BPCER=x** the smallest threshold with
  BPCER at most x. Both thresholds are order statistics of one class
  (``a[floor(x n)]`` of each species; ``nextafter`` just above a bona fide score).
* **D-EER**: APCER (max over species) = BPCER, by linear interpolation between the
  operating points of the two bracketing thresholds (not the nearest sample).
* Empty classes give a :class:`UndefinedMetricWarning` and NaN, never 0. All scores equal
  gives the defined chance result (D-EER 0.5) with a warning.

Example (two species, ties included)::

    >>> import numpy as np
    >>> scores = [0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 0.5, 0.7, 0.9]
    >>> labels = ["bona_fide"] * 4 + ["attack"] * 5
    >>> species = ["", "", "", "", "print", "print", "replay", "replay", "replay"]
    >>> r = apcer_bpcer(scores, labels, 0.6, species=species)
    >>> r.apcer_per_species, r.apcer, r.bpcer
    ({'print': 0.0, 'replay': 0.3333333333333333}, 0.3333333333333333, 0.0)
    >>> op = bpcer_at_apcer(scores, labels, 0.0, species=species)
    >>> op.threshold, op.apcer, op.bpcer
    (0.5, 0.0, 0.0)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from madpad.metrics._core import (
    SortedScores,
    as_scores,
    check_rate,
    check_same_length,
    check_threshold,
    equal_error_point,
    grid_indices,
    negative_threshold_at_rate,
    positive_threshold_at_rate,
    safe_rate,
    warn_undefined,
)

__all__ = [
    "BONA_FIDE",
    "ATTACK",
    "DEFAULT_SPECIES",
    "PadScores",
    "PadErrorRates",
    "OperatingPoint",
    "DEER",
    "DetCurve",
    "parse_labels",
    "apcer_bpcer",
    "apcer_per_species",
    "apcer",
    "apcer_pooled",
    "bpcer",
    "acer_non_iso",
    "bpcer_at_apcer",
    "apcer_at_bpcer",
    "d_eer",
    "det_curve",
    "iapmr",
]

BONA_FIDE = "bona_fide"
ATTACK = "attack"
#: species name used when attacks carry no species information (``species=None``)
DEFAULT_SPECIES = "attack"


def parse_labels(labels: Any, *, name: str = "labels") -> np.ndarray:
    """Boolean array, True = attack. Accepts the strings ``"bona_fide"`` / ``"attack"`` or
    booleans / integers 0 (bona fide) and 1 (attack)."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 0 else arr
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D; got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind in "iu":
        bad = (arr != 0) & (arr != 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name}[{i}] = {arr[i].item()!r}; integer labels must be 0 (bona fide) or 1 (attack)")
        return arr.astype(bool)
    if arr.dtype.kind in "US" or arr.dtype == object:
        s = arr.astype(str)
        is_att = s == ATTACK
        bad = ~(is_att | (s == BONA_FIDE))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name}[{i}] = {str(s[i])!r}; labels must be one of {{'{BONA_FIDE}', '{ATTACK}'}}")
        return is_att
    raise ValueError(f"{name} must be strings ('{BONA_FIDE}'/'{ATTACK}'), booleans or 0/1; got dtype {arr.dtype}")


def _species_strings(sp: np.ndarray) -> np.ndarray:
    """Species as a numpy unicode array; None/NaN become ''. Fast for str arrays."""
    if sp.dtype.kind == "U":
        return sp
    return np.array(["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()
                     for v in sp.tolist()], dtype=str)


def _group_species(sp: np.ndarray, at_idx: np.ndarray) -> dict[str, np.ndarray]:
    """species name -> indices (into the original arrays) of its attacks, names sorted.

    Factorises by repeated vectorised string comparison on the shrinking remainder
    (O(n * n_species), no string sort): fast for the usual handful of species; beyond 64
    species the rest is grouped with ``np.unique``.
    """
    names = _species_strings(sp)[at_idx]
    groups: dict[str, np.ndarray] = {}
    remaining = np.arange(names.size)
    rest = names
    while remaining.size and len(groups) < 64:
        v = rest[0]
        if v == "":
            i = int(at_idx[remaining[0]])
            raise ValueError(f"species[{i}] is empty for an attack; every attack needs its species "
                             f"(PAI species, e.g. the morph method)")
        m = rest == v
        groups[str(v)] = at_idx[remaining[m]]
        keep = ~m
        remaining, rest = remaining[keep], rest[keep]
    if remaining.size:  # many species: sort-based grouping of what is left
        if np.any(rest == ""):
            i = int(at_idx[remaining[np.flatnonzero(rest == "")[0]]])
            raise ValueError(f"species[{i}] is empty for an attack; every attack needs its species "
                             f"(PAI species, e.g. the morph method)")
        uniq, inv = np.unique(rest, return_inverse=True)
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(len(uniq) + 1))
        for k, name in enumerate(uniq):
            groups[str(name)] = at_idx[remaining[order[bounds[k]:bounds[k + 1]]]]
    return {k: groups[k] for k in sorted(groups)}


# --------------------------------------------------------------------------- prepared scores
@dataclass(frozen=True)
class PadScores:
    """A validated PAD score set, each class sorted once (in the attack direction).

    Build with :meth:`from_arrays`; every metric is then cheap (one ``searchsorted`` per
    class per threshold). ``bona_fide`` and the ``attacks`` arrays hold scores in the
    attack direction (negated when ``higher_is_attack=False``).
    """

    bona_fide: SortedScores
    attacks: dict[str, SortedScores]
    higher_is_attack: bool = True
    # per sorted element: index into the original arrays (kept for the subject bootstrap)
    bona_fide_order: np.ndarray | None = field(default=None, repr=False)
    attack_orders: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def from_arrays(cls, scores: Any, labels: Any, *, species: Any = None, higher_is_attack: bool = True,
                    keep_order: bool = False) -> "PadScores":
        """Validate and prepare.

        ``scores`` finite numbers; ``labels`` ``"bona_fide"``/``"attack"`` (or 0/1, True =
        attack); ``species`` the attack species per sample (ignored for bona fide; required
        and non-empty for every attack when given; ``None`` puts all attacks in one species
        named ``"attack"``). ``keep_order`` keeps the sort permutation (needed by the
        subject bootstrap).
        """
        s = as_scores(scores, name="scores")
        lab = parse_labels(labels)
        sp = None
        if species is not None:
            sp = np.asarray(species)
            if sp.ndim != 1:
                raise ValueError(f"species must be 1-D; got shape {sp.shape}")
        check_same_length(scores=s, labels=lab, species=sp)
        if not higher_is_attack:
            s = -s
        bf_idx = np.flatnonzero(~lab)
        at_idx = np.flatnonzero(lab)
        groups: dict[str, np.ndarray] = {}
        if sp is None:
            if at_idx.size:
                groups[DEFAULT_SPECIES] = at_idx
        else:
            groups = _group_species(sp, at_idx)

        def prep(idx):
            vals = s[idx]
            if keep_order:
                o = np.argsort(vals, kind="stable")
                return SortedScores(vals[o]), idx[o]
            return SortedScores(np.sort(vals)), None

        bf, bf_order = prep(bf_idx)
        attacks, orders = {}, {}
        for name, idx in groups.items():
            attacks[name], orders[name] = prep(idx)
        out = cls(bona_fide=bf, attacks=attacks, higher_is_attack=bool(higher_is_attack),
                  bona_fide_order=bf_order, attack_orders=orders if keep_order else None)
        out._warn_degenerate()
        return out

    @classmethod
    def from_codes(cls, scores: Any, species_codes: Any, species_names: Sequence[str], *,
                   higher_is_attack: bool = True, keep_order: bool = False) -> "PadScores":
        """Build from integer class codes (the fast path for large score files): code ``-1``
        is bona fide, code ``k >= 0`` an attack of species ``species_names[k]``. Species
        without any score are left out. ``keep_order`` keeps the sort permutations (indices
        into ``scores``), as :meth:`from_arrays` does.

        >>> PadScores.from_codes([0.1, 0.9, 0.3], [-1, 0, 0], ["print"]).rates(0.5).apcer
        0.5
        """
        s = as_scores(scores, name="scores")
        codes = np.asarray(species_codes)
        if codes.ndim != 1 or codes.dtype.kind not in "iu":
            raise ValueError(f"species_codes must be a 1-D integer array; got dtype {codes.dtype}, shape {codes.shape}")
        check_same_length(scores=s, species_codes=codes)
        names = [str(x) for x in species_names]
        if any(not x.strip() for x in names):
            raise ValueError("species_names must be non-empty strings")
        if len(set(names)) != len(names):
            raise ValueError(f"species_names must be distinct; got {names}")
        if codes.size and (codes.min() < -1 or codes.max() >= len(names)):
            bad = int(np.flatnonzero((codes < -1) | (codes >= len(names)))[0])
            raise ValueError(f"species_codes[{bad}] = {int(codes[bad])}; codes must be -1 (bona fide) or "
                             f"0..{len(names) - 1}")
        if not higher_is_attack:
            s = -s
        if len(names) > 16:  # many species: one stable argsort of the codes
            order = np.argsort(codes, kind="stable")
            bounds = np.searchsorted(codes[order], np.arange(-1, len(names) + 1))
            groups = {k: order[bounds[k + 1]:bounds[k + 2]] for k in range(-1, len(names))}
        elif keep_order:  # a handful of species: one vectorised comparison per class (no sort)
            groups = {k: np.flatnonzero(codes == k) for k in range(-1, len(names))}
        else:  # boolean masks select faster than index arrays
            groups = {k: codes == k for k in range(-1, len(names))}

        def prep(idx):
            vals = s[idx]  # a fresh copy: sorted in place
            if keep_order:
                o = np.argsort(vals, kind="stable")
                return SortedScores(vals[o]), idx[o]
            vals.sort()
            return SortedScores(vals), None

        bf, bf_order = prep(groups[-1])
        attacks, orders = {}, {}
        for k in sorted(range(len(names)), key=lambda i: names[i]):
            g = groups[k]
            if (g.any() if g.dtype == bool else g.size):
                attacks[names[k]], orders[names[k]] = prep(groups[k])
        out = cls(bona_fide=bf, attacks=attacks, higher_is_attack=bool(higher_is_attack),
                  bona_fide_order=bf_order, attack_orders=orders if keep_order else None)
        out._warn_degenerate()
        return out

    @classmethod
    def from_groups(cls, bona_fide: Any, attacks: Mapping[str, Any], *, higher_is_attack: bool = True) -> "PadScores":
        """Build from bona fide scores and a mapping species -> attack scores (no labels or
        species strings to parse; the fastest path for large score sets).

        >>> PadScores.from_groups([0.1, 0.2], {"print": [0.9, 0.3]}).rates(0.5).apcer
        0.5
        """
        sign = 1.0 if higher_is_attack else -1.0
        bf = as_scores(bona_fide, name="bona_fide")
        att = {}
        for name, vals in attacks.items():
            if not str(name).strip():
                raise ValueError("attacks: species names must be non-empty")
            att[str(name)] = SortedScores(np.sort(sign * as_scores(vals, name=f"attacks[{name!r}]")))
        att = {k: v for k, v in sorted(att.items()) if v.n}
        out = cls(bona_fide=SortedScores(np.sort(sign * bf)), attacks=att, higher_is_attack=bool(higher_is_attack))
        out._warn_degenerate()
        return out

    # ------------------------------------------------------------------ basics
    @property
    def n_bona_fide(self) -> int:
        return self.bona_fide.n

    @property
    def n_attack(self) -> int:
        return sum(a.n for a in self.attacks.values())

    @property
    def species_counts(self) -> dict[str, int]:
        return {k: v.n for k, v in self.attacks.items()}

    def _all_sorted(self) -> list[SortedScores]:
        return [self.bona_fide] + [a for a in self.attacks.values()]

    def _bounds(self) -> tuple[float, float]:
        """(bottom, top): a threshold at/below every score, and one strictly above every score."""
        arrs = [a for a in self._all_sorted() if a.n]
        lo = min(float(a.v[0]) for a in arrs)
        hi = max(float(a.v[-1]) for a in arrs)
        return lo, float(np.nextafter(hi, np.inf))

    def _warn_degenerate(self) -> None:
        if self.n_bona_fide == 0:
            warn_undefined("no bona fide scores: BPCER and every threshold criterion are undefined (NaN)")
        if self.n_attack == 0:
            warn_undefined("no attack scores: APCER and every threshold criterion are undefined (NaN)")
        arrs = [a for a in self._all_sorted() if a.n]
        if self.n_bona_fide and self.n_attack and min(a.v[0] for a in arrs) == max(a.v[-1] for a in arrs):
            warnings.warn("all scores are equal: the detector does not separate bona fide from attacks "
                          "(D-EER = 0.5)", UserWarning, stacklevel=3)

    def _to_user(self, t: float) -> float:
        return float(t) if self.higher_is_attack else float(-t)

    def _to_internal(self, t: float) -> float:
        return float(t) if self.higher_is_attack else float(-t)

    def _usable(self) -> bool:
        return self.n_bona_fide > 0 and self.n_attack > 0 and self.bona_fide.total > 0 and all(
            a.total > 0 for a in self.attacks.values())

    # ------------------------------------------------------------------ rates
    def rates(self, threshold: float) -> "PadErrorRates":
        """APCER (per species, max, pooled), BPCER and ACER at ``threshold`` (user scale)."""
        # with higher_is_attack=False the user rule "attack when score <= T" is "-score >= -T"
        t = self._to_internal(check_threshold(threshold))
        per = {k: safe_rate(a.weight_below(t), a.total, what=f"APCER of species {k!r}")
               for k, a in self.attacks.items()}
        if per:
            vals = list(per.values())
            apc = float("nan") if any(math.isnan(v) for v in vals) else max(vals)
        else:
            warn_undefined("APCER is undefined: there are no attack scores; returning NaN")
            apc = float("nan")
        tot = sum(a.total for a in self.attacks.values())
        pooled = float(sum(a.weight_below(t) for a in self.attacks.values()) / tot) if tot > 0 else float("nan")
        bp = safe_rate(self.bona_fide.weight_at_or_above(t), self.bona_fide.total, what="BPCER")
        return PadErrorRates(threshold=float(threshold), apcer=apc, apcer_per_species=per, apcer_pooled=pooled,
                             bpcer=bp, acer_non_iso=(apc + bp) / 2)

    def bpcer_at_apcer(self, x: float) -> "OperatingPoint":
        """BPCER at the largest threshold whose APCER is <= x for every species."""
        x = check_rate(x, name="APCER target")
        if not self._usable():
            warn_undefined("BPCER@APCER is undefined without both bona fide and attack scores; returning NaN")
            return OperatingPoint.undefined("bpcer@apcer", x)
        _, top = self._bounds()
        t = min(positive_threshold_at_rate(a, x, top) for a in self.attacks.values())
        return OperatingPoint.from_rates("bpcer@apcer", x, self.rates(self._to_user(t)))

    def apcer_at_bpcer(self, x: float) -> "OperatingPoint":
        """APCER (max over species) at the smallest threshold whose BPCER is <= x."""
        x = check_rate(x, name="BPCER target")
        if not self._usable():
            warn_undefined("APCER@BPCER is undefined without both bona fide and attack scores; returning NaN")
            return OperatingPoint.undefined("apcer@bpcer", x)
        bottom, _ = self._bounds()
        t = negative_threshold_at_rate(self.bona_fide, x, bottom)
        return OperatingPoint.from_rates("apcer@bpcer", x, self.rates(self._to_user(t)))

    def d_eer(self, *, apcer_mode: str = "max") -> "DEER":
        """D-EER with APCER = max over species (``apcer_mode="max"``), the pooled APCER
        (``"pooled"``), or one species' APCER (``apcer_mode=<species name>``)."""
        if not self._usable():
            warn_undefined("D-EER is undefined without both bona fide and attack scores; returning NaN")
            return DEER(d_eer=float("nan"), threshold=float("nan"), apcer_mode=apcer_mode, bracket={})
        bottom, top = self._bounds()
        if apcer_mode == "max":
            pos, combine = list(self.attacks.values()), "max"
        elif apcer_mode == "pooled":
            pos, combine = [self._pooled()], "pooled"
        elif apcer_mode in self.attacks:
            pos, combine = [self.attacks[apcer_mode]], "pooled"
        else:
            raise ValueError(f"apcer_mode must be 'max', 'pooled' or a species name {sorted(self.attacks)}; "
                             f"got {apcer_mode!r}")
        r = equal_error_point(self.bona_fide, pos, bottom=bottom, top=top, combine=combine)
        bracket = {
            "threshold_low": self._to_user(r["threshold_low"]), "apcer_low": r["pos_err_low"],
            "bpcer_low": r["neg_err_low"],
            "threshold_high": self._to_user(r["threshold_high"]), "apcer_high": r["pos_err_high"],
            "bpcer_high": r["neg_err_high"],
        }
        return DEER(d_eer=r["eer"], threshold=self._to_user(r["threshold"]), apcer_mode=apcer_mode, bracket=bracket)

    def _pooled(self) -> SortedScores:
        arrs = list(self.attacks.values())
        if len(arrs) == 1:
            return arrs[0]
        if all(a.cw is None for a in arrs):  # sorted runs: the stable (merge) sort merges them in O(n)
            return SortedScores(np.sort(np.concatenate([a.v for a in arrs]), kind="stable"))
        vals = np.concatenate([a.v for a in arrs])
        w = np.concatenate([np.diff(a.cw) if a.cw is not None else np.ones(a.n) for a in arrs])
        o = np.argsort(vals, kind="stable")
        return SortedScores(vals[o], w[o])

    def det_curve(self, *, max_points: int | None = 4000) -> "DetCurve":
        """DET points at score thresholds: exact at every distinct score when
        ``max_points`` is None, else at up to ~``max_points`` thresholds per class chosen
        densely in the tails. Thresholds ascend; APCER is non-decreasing, BPCER non-increasing."""
        if not self._usable():
            warn_undefined("DET curve is undefined without both bona fide and attack scores")
            e = np.empty(0)
            return DetCurve(e, e, e, e, {}, self.higher_is_attack)
        bottom, top = self._bounds()
        parts = []
        for a in self._all_sorted():
            if a.n:
                parts.append(a.v if max_points is None else a.v[grid_indices(a.n, int(max_points))])
        t = np.unique(np.concatenate(parts + [np.array([bottom, top])]))
        per = {k: a.weight_below(t) / a.total for k, a in self.attacks.items()}
        apc = np.max(np.stack(list(per.values())), axis=0)
        tot = sum(a.total for a in self.attacks.values())
        pooled = sum(a.weight_below(t) for a in self.attacks.values()) / tot
        bp = self.bona_fide.weight_at_or_above(t) / self.bona_fide.total
        thr = t if self.higher_is_attack else -t
        return DetCurve(thresholds=thr, apcer=apc, bpcer=bp, apcer_pooled=pooled, apcer_per_species=per,
                        higher_is_attack=self.higher_is_attack)

    def with_weights(self, bona_fide_w: np.ndarray, attack_w: Mapping[str, np.ndarray]) -> "PadScores":
        """Same scores with per-sample weights aligned to the sorted arrays (bootstrap)."""
        return PadScores(bona_fide=self.bona_fide.with_weights(bona_fide_w),
                         attacks={k: a.with_weights(attack_w[k]) for k, a in self.attacks.items()},
                         higher_is_attack=self.higher_is_attack)


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class PadErrorRates:
    """Error rates at one threshold. ``apcer`` is the max over species; ``apcer_pooled``
    treats all attacks as one class (not the ISO APCER); ``acer_non_iso`` is not an ISO metric."""

    threshold: float
    apcer: float
    apcer_per_species: dict[str, float]
    apcer_pooled: float
    bpcer: float
    acer_non_iso: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class OperatingPoint:
    """An operating point chosen by a criterion (``bpcer@apcer`` or ``apcer@bpcer``) at ``target``."""

    criterion: str
    target: float
    threshold: float
    apcer: float
    apcer_per_species: dict[str, float]
    apcer_pooled: float
    bpcer: float
    acer_non_iso: float

    @classmethod
    def from_rates(cls, criterion: str, target: float, r: PadErrorRates) -> "OperatingPoint":
        return cls(criterion=criterion, target=float(target), threshold=r.threshold, apcer=r.apcer,
                   apcer_per_species=dict(r.apcer_per_species), apcer_pooled=r.apcer_pooled, bpcer=r.bpcer,
                   acer_non_iso=r.acer_non_iso)

    @classmethod
    def undefined(cls, criterion: str, target: float) -> "OperatingPoint":
        nan = float("nan")
        return cls(criterion, float(target), nan, nan, {}, nan, nan, nan)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DEER:
    """Detection equal error rate; ``bracket`` holds the two operating points interpolated."""

    d_eer: float
    threshold: float
    apcer_mode: str
    bracket: dict

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DetCurve:
    """DET curve points (thresholds ascending in the attack direction)."""

    thresholds: np.ndarray
    apcer: np.ndarray
    bpcer: np.ndarray
    apcer_pooled: np.ndarray
    apcer_per_species: dict[str, np.ndarray]
    higher_is_attack: bool = True


# --------------------------------------------------------------------------- functional API
def _prep(scores, labels, species, higher_is_attack) -> PadScores:
    return PadScores.from_arrays(scores, labels, species=species, higher_is_attack=higher_is_attack)


def apcer_bpcer(scores: Any, labels: Any, threshold: float, *, species: Any = None,
                higher_is_attack: bool = True) -> PadErrorRates:
    """APCER per species, APCER (max over species), pooled APCER, BPCER and ACER (non-ISO)
    at ``threshold``; attack when ``score >= threshold`` (see the module docstring).

    >>> apcer_bpcer([0.2, 0.5, 0.5, 0.9], [0, 0, 1, 1], 0.5).bpcer   # the tie counts as attack
    0.5
    """
    return _prep(scores, labels, species, higher_is_attack).rates(threshold)


def apcer_per_species(scores, labels, threshold, *, species=None, higher_is_attack=True) -> dict[str, float]:
    """APCER of each attack species at ``threshold``."""
    return apcer_bpcer(scores, labels, threshold, species=species, higher_is_attack=higher_is_attack).apcer_per_species


def apcer(scores, labels, threshold, *, species=None, higher_is_attack=True) -> float:
    """APCER = maximum over attack species of the per-species APCER (ISO/IEC 30107-3)."""
    return apcer_bpcer(scores, labels, threshold, species=species, higher_is_attack=higher_is_attack).apcer


def apcer_pooled(scores, labels, threshold, *, species=None, higher_is_attack=True) -> float:
    """Pooled APCER (all attacks as one class). Not the ISO APCER: label it as pooled."""
    return apcer_bpcer(scores, labels, threshold, species=species, higher_is_attack=higher_is_attack).apcer_pooled


def bpcer(scores, labels, threshold, *, higher_is_attack=True) -> float:
    """BPCER: share of bona fide presentations with ``score >= threshold``."""
    return apcer_bpcer(scores, labels, threshold, higher_is_attack=higher_is_attack).bpcer


def acer_non_iso(scores, labels, threshold, *, species=None, higher_is_attack=True) -> float:
    """(APCER + BPCER) / 2 with APCER = max over species. Not an ISO/IEC 30107-3 metric."""
    return apcer_bpcer(scores, labels, threshold, species=species, higher_is_attack=higher_is_attack).acer_non_iso


def bpcer_at_apcer(scores: Any, labels: Any, apcer_target: float, *, species: Any = None,
                   higher_is_attack: bool = True) -> OperatingPoint:
    """BPCER at the largest threshold where the APCER of **every** species is <= ``apcer_target``
    (conservative; BPCER20 = ``bpcer_at_apcer(..., 0.05)``). The threshold is the order
    statistic ``a[floor(x n)]`` of each species' sorted scores, minimised over species.

    >>> op = bpcer_at_apcer([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [0] * 5 + [1] * 5, 0.2)
    >>> op.threshold, op.apcer, op.bpcer
    (6.0, 0.2, 0.0)
    """
    return _prep(scores, labels, species, higher_is_attack).bpcer_at_apcer(apcer_target)


def apcer_at_bpcer(scores: Any, labels: Any, bpcer_target: float, *, species: Any = None,
                   higher_is_attack: bool = True) -> OperatingPoint:
    """APCER (max over species) at the smallest threshold with BPCER <= ``bpcer_target``
    (conservative: the threshold is ``nextafter`` just above a bona fide score).

    >>> op = apcer_at_bpcer([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [0] * 5 + [1] * 5, 0.2)
    >>> op.bpcer, op.apcer
    (0.2, 0.0)
    """
    return _prep(scores, labels, species, higher_is_attack).apcer_at_bpcer(bpcer_target)


def d_eer(scores: Any, labels: Any, *, species: Any = None, higher_is_attack: bool = True,
          apcer_mode: str = "max") -> DEER:
    """Detection equal error rate (APCER = BPCER), interpolated between the two bracketing
    thresholds. ``apcer_mode``: ``"max"`` (over species, default), ``"pooled"``, or a species.

    >>> r = d_eer([0.1, 0.2, 0.3, 0.6, 0.4, 0.5, 0.55, 0.7, 0.8], [0] * 4 + [1] * 5)
    >>> round(r.d_eer, 6), r.bracket["threshold_low"], r.bracket["threshold_high"]
    (0.25, 0.5, 0.55)
    """
    return _prep(scores, labels, species, higher_is_attack).d_eer(apcer_mode=apcer_mode)


def det_curve(scores: Any, labels: Any, *, species: Any = None, higher_is_attack: bool = True,
              max_points: int | None = None) -> DetCurve:
    """DET curve points (APCER max over species, pooled and per species; BPCER) at every
    distinct score (``max_points=None``), plus one threshold above all scores.

    >>> c = det_curve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    >>> c.thresholds.tolist()[:4], c.apcer.tolist(), c.bpcer.tolist()
    ([0.1, 0.35, 0.4, 0.8], [0.0, 0.0, 0.5, 0.5, 1.0], [1.0, 0.5, 0.5, 0.0, 0.0])
    """
    return _prep(scores, labels, species, higher_is_attack).det_curve(max_points=max_points)


def iapmr(attack_scores: Any, *, threshold: float, match_rule: str = ">=") -> float:
    """Impostor attack presentation match rate: share of attack presentations whose FR
    comparison score with the targeted enrolment *matches* at the FR ``threshold``
    (set on licit genuine/impostor comparisons, e.g. with
    :func:`madpad.metrics.threshold_at_fmr`). FR scores are similarities (higher = same
    person); match when ``score >= threshold`` (or ``>`` with ``match_rule=">"``).

    >>> iapmr([0.2, 0.5, 0.7, 0.9], threshold=0.5)
    0.75
    """
    from madpad.metrics._core import check_rule

    check_rule(match_rule)
    s = as_scores(attack_scores, name="attack_scores")
    t = check_threshold(threshold)
    hits = np.count_nonzero(s >= t) if match_rule == ">=" else np.count_nonzero(s > t)
    return safe_rate(hits, s.size, what="IAPMR")

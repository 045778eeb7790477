"""Subject-disjoint splits (train/dev/test by subject, seeded).

A subject that appears in two splits leaks identity information from training into
evaluation and invalidates every MAD/PAD number measured on that split. Everything here
splits *subjects*, never images:

* :func:`split_by_subject` partitions subject ids into named splits (optionally stratified,
  e.g. by gender, so each split keeps the group proportions);
* :func:`assign_by_subject` places rows (images, D-MAD pairs, morphs) into those splits. A
  row made from several subjects (a morph, an attack pair) lands in a split only when **all**
  its contributing subjects are in that split; rows whose subjects straddle splits are
  dropped and counted in :attr:`SplitAssignment.dropped` (never silently moved);
* :func:`split_manifest` does both for one manifest;
* :func:`check_disjoint` raises :class:`SubjectLeakageError` when any subject occurs in more
  than one split.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from madpad.data.subjects import record_subjects
from madpad.errors import MadpadError

DEFAULT_NAMES = ("train", "dev", "test")


class SubjectLeakageError(MadpadError, ValueError):
    """A subject occurs in more than one split."""


def _counts(n: int, fractions: Sequence[float]) -> list[int]:
    """Largest-remainder rounding of ``n * fractions`` (sums to n); when n allows, every split
    with a positive fraction gets at least one subject (taken from the largest split)."""
    raw = [n * f for f in fractions]
    counts = [int(np.floor(r)) for r in raw]
    rest = n - sum(counts)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[:rest]:
        counts[i] += 1
    positive = [i for i, f in enumerate(fractions) if f > 0]
    if n >= len(positive):
        for i in positive:
            if counts[i] == 0:
                j = max(range(len(counts)), key=lambda k: (counts[k], -k))
                counts[j] -= 1
                counts[i] += 1
    return counts


def _group_counts(sizes: Sequence[int], fractions: Sequence[float]) -> list[list[int]]:
    """Per-group split sizes whose totals equal the unstratified sizes of all subjects: each
    group gets ``floor(n_g * f)`` per split, and its remaining subjects go to the splits furthest
    below their overall target (ties: larger remainder within the group, then split order)."""
    if len(sizes) == 1:
        return [_counts(sizes[0], fractions)]
    target = _counts(sum(sizes), fractions)
    floors = [[int(np.floor(n * f)) for f in fractions] for n in sizes]
    total = [sum(col) for col in zip(*floors)]
    out = []
    for n, c in zip(sizes, floors):
        raw = [n * f for f in fractions]
        for _ in range(n - sum(c)):
            j = max(range(len(c)), key=lambda k: (target[k] - total[k], raw[k] - c[k], -k))
            c[j] += 1
            total[j] += 1
        out.append(c)
    return out


def _check_fractions(fractions: Sequence[float], names: Sequence[str]) -> list[float]:
    fr = [float(f) for f in fractions]
    if len(fr) != len(names):
        raise ValueError(f"fractions has {len(fr)} values but names has {len(names)} ({list(names)}); "
                         f"give one fraction per split")
    if len(set(names)) != len(names):
        raise ValueError(f"split names must be unique; got {list(names)}")
    if any(not np.isfinite(f) or f < 0 for f in fr):
        raise ValueError(f"fractions must be finite and >= 0; got {fr}")
    if abs(sum(fr) - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1; got {fr} (sum {sum(fr):.6g})")
    return fr


def split_by_subject(subjects: Iterable[str], *, fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0,
                     names: Sequence[str] = DEFAULT_NAMES,
                     stratify: Mapping[str, Any] | Callable[[str], Any] | None = None) -> dict[str, set[str]]:
    """Partition subject ids into disjoint named splits.

    Duplicates in ``subjects`` are collapsed; the unique ids are sorted, then shuffled with
    ``numpy.random.default_rng(seed)``, so the result depends only on the set of ids and the
    seed. Split sizes are ``len * fraction`` rounded by largest remainder (they sum to the
    number of subjects); when there are at least as many subjects as splits, every split with
    a positive fraction gets at least one subject.

    ``stratify`` (a mapping or function subject -> group, e.g. gender) splits each group
    separately with the same fractions, so every split keeps the group proportions; the split
    sizes over all groups are the same as without stratification.

    Returns ``{name: set of subject ids}`` in the order of ``names``.
    """
    fr = _check_fractions(fractions, names)
    ids = sorted({str(s) for s in subjects})
    rng = np.random.default_rng(seed)
    out: dict[str, set[str]] = {n: set() for n in names}
    if stratify is None:
        groups = {None: ids}
    else:
        get = stratify if callable(stratify) else (lambda s: stratify.get(s))
        groups = defaultdict(list)
        for s in ids:
            groups[get(s)].append(s)
        missing = [s for s in ids if not callable(stratify) and s not in stratify]
        if missing:
            raise ValueError(f"stratify has no group for {len(missing)} subject(s), e.g. {missing[:5]}")
    keys = sorted(groups, key=lambda k: str(k))
    for key, counts in zip(keys, _group_counts([len(groups[k]) for k in keys], fr)):
        members = groups[key]
        perm = rng.permutation(len(members))
        start = 0
        for name, c in zip(names, counts):
            out[name].update(members[i] for i in perm[start:start + c])
            start += c
    return out


@dataclass
class SplitAssignment:
    """Rows placed into subject-disjoint splits.

    ``parts``: split name -> rows (input order kept); ``subjects``: split name -> subject ids;
    ``dropped``: rows whose subjects straddle splits (or include a subject in no split), with
    :attr:`n_dropped` their count.
    """

    parts: dict
    subjects: dict
    dropped: list = field(default_factory=list)

    @property
    def n_dropped(self) -> int:
        return len(self.dropped)

    def __getitem__(self, name: str) -> list:
        return self.parts[name]

    def counts(self) -> dict:
        out = {n: len(rows) for n, rows in self.parts.items()}
        out["dropped"] = self.n_dropped
        return out


def assign_by_subject(records: Iterable[Any], splits: Mapping[str, Iterable[str]], *,
                      subjects_of: Callable[[Any], Sequence[str]] = record_subjects) -> SplitAssignment:
    """Place each row into the split holding **all** of its subjects.

    ``splits`` maps split name -> subject ids (e.g. from :func:`split_by_subject`); it is
    checked with :func:`check_disjoint` first. A row whose subjects fall into different
    splits, or include a subject in none of them, is dropped and counted.
    """
    split_sets = {n: {str(s) for s in ss} for n, ss in splits.items()}
    check_disjoint(split_sets)
    where = {s: n for n, ss in split_sets.items() for s in ss}
    parts: dict[str, list] = {n: [] for n in split_sets}
    dropped: list = []
    for rec in records:
        subs = subjects_of(rec)
        homes = {where.get(str(s)) for s in subs}
        if len(subs) == 0 or len(homes) != 1 or None in homes:
            dropped.append(rec)
            continue
        parts[homes.pop()].append(rec)
    return SplitAssignment(parts=parts, subjects=split_sets, dropped=dropped)


def split_manifest(records: Iterable[Any], *, fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0,
                   names: Sequence[str] = DEFAULT_NAMES,
                   stratify: Mapping[str, Any] | Callable[[str], Any] | None = None,
                   subjects_of: Callable[[Any], Sequence[str]] = record_subjects) -> SplitAssignment:
    """Split the subjects found in ``records`` (images, pairs or morphs) and assign the rows.

    Rows made from several subjects whose contributors land in different splits are dropped
    and counted (``result.n_dropped``); to keep more of them, split the bona fide subjects
    first with :func:`split_by_subject` and generate morphs within each split.
    """
    recs = list(records)
    subjects = {str(s) for r in recs for s in subjects_of(r)}
    splits = split_by_subject(subjects, fractions=fractions, seed=seed, names=names, stratify=stratify)
    return assign_by_subject(recs, splits, subjects_of=subjects_of)


def check_disjoint(splits: Mapping[str, Iterable[Any]] | SplitAssignment, *,
                   subjects_of: Callable[[Any], Sequence[str]] = record_subjects) -> None:
    """Raise :class:`SubjectLeakageError` when a subject occurs in more than one split.

    ``splits`` maps split name -> subject ids or rows (subjects taken with ``subjects_of``),
    or is a :class:`SplitAssignment` (its rows are checked). The message names up to 5 leaked
    subjects and the splits they occur in.
    """
    if isinstance(splits, SplitAssignment):
        splits = splits.parts
    seen: dict[str, set] = defaultdict(set)
    for name, items in splits.items():
        for item in items:
            subs = (str(item),) if isinstance(item, (str, int)) else subjects_of(item)
            for s in subs:
                seen[str(s)].add(name)
    leaked = sorted(s for s, names in seen.items() if len(names) > 1)
    if leaked:
        listed = ", ".join(f"{s!r} in {sorted(seen[s])}" for s in leaked[:5])
        more = f" and {len(leaked) - 5} more" if len(leaked) > 5 else ""
        raise SubjectLeakageError(f"{len(leaked)} subject(s) occur in more than one split: {listed}{more}; "
                                  f"split by subject (madpad.data.split_by_subject) so no subject is shared")

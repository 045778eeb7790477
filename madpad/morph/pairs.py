"""Choosing which two images to morph: random, same gender (and age band), most similar impostors.

Every strategy takes a sequence of image records (anything with ``id``, ``subject`` and an
``extra`` dict holding optional metadata columns such as ``gender`` and ``age``, e.g.
:class:`madpad.data.ImageRecord`), returns a list of :class:`MorphPair` and guarantees:

* no self-pairs: the two images belong to different subjects;
* no duplicates: ``(a, b)`` and ``(b, a)`` are the same pair, and by default at most one pair
  per unordered *subject* pair (``unique_subjects=True``);
* determinism: the same inputs and ``seed`` give the same pairs in the same order.

Fewer pairs than asked are returned (with a warning) when not enough candidates exist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from madpad.errors import UsageError

log = logging.getLogger(__name__)

_ENUMERATE_MAX = 2000  # above this many images, candidates are sampled instead of enumerated


@dataclass(frozen=True)
class MorphPair:
    """Two source images to morph (``a`` is contributor A) and, for ``most_similar``, their
    comparison score under the chosen FR model (higher = more similar)."""

    a: Any
    b: Any
    score: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return tuple(sorted((str(self.a.id), str(self.b.id))))  # type: ignore[return-value]


def _meta(rec: Any, name: str) -> str:
    extra = getattr(rec, "extra", None) or {}
    v = extra.get(name, getattr(rec, name, ""))
    return "" if v is None else str(v).strip()


def _age(rec: Any) -> float | None:
    v = _meta(rec, "age")
    if not v:
        return None
    try:
        return float(v)
    except ValueError:
        raise UsageError(f"image {rec.id!r}: 'age' must be a number; got {v!r}") from None


def _constraint(images: Sequence[Any], *, same_gender: bool, age_band: float | None) -> tuple[np.ndarray, Callable]:
    """Eligible image indices and a vectorised predicate ok(i_array, j_array) -> bool array."""
    n = len(images)
    subjects = np.array([str(r.subject) for r in images], dtype=object)
    eligible = np.ones(n, dtype=bool)
    genders = np.array([_meta(r, "gender").lower() for r in images], dtype=object)
    if same_gender:
        if not any(genders):
            raise UsageError("the same_gender strategy needs a 'gender' column in the image manifest "
                             "(or in a subjects table); none of the images has one")
        missing = genders == ""
        if missing.any():
            log.warning("%d image(s) without gender are left out of same-gender pairs", int(missing.sum()))
        eligible &= ~missing
    ages = np.full(n, np.nan)
    if age_band is not None:
        if age_band < 0:
            raise UsageError(f"age_band must be >= 0 years; got {age_band}")
        ages = np.array([np.nan if (a := _age(r)) is None else a for r in images], dtype=np.float64)
        if np.isnan(ages).all():
            raise UsageError("age_band needs an 'age' column in the image manifest; none of the images has one")
        if np.isnan(ages).any():
            log.warning("%d image(s) without age are left out (age_band is set)", int(np.isnan(ages).sum()))
        eligible &= ~np.isnan(ages)

    def ok(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        good = (subjects[i] != subjects[j]) & eligible[i] & eligible[j]
        if same_gender:
            good &= genders[i] == genders[j]
        if age_band is not None:
            good &= np.abs(ages[i] - ages[j]) <= age_band
        return good

    return np.flatnonzero(eligible), ok


def _take(images, order_i, order_j, n_pairs, *, unique_subjects, rng=None, scores=None) -> list[MorphPair]:
    out: list[MorphPair] = []
    seen_img: set = set()
    seen_subj: set = set()
    for k, (i, j) in enumerate(zip(order_i, order_j)):
        if len(out) >= n_pairs:
            break
        i, j = int(i), int(j)
        ka = tuple(sorted((str(images[i].id), str(images[j].id))))
        ks = tuple(sorted((str(images[i].subject), str(images[j].subject))))
        if ka in seen_img or (unique_subjects and ks in seen_subj):
            continue
        seen_img.add(ka)
        seen_subj.add(ks)
        if rng is not None and rng.random() < 0.5:
            i, j = j, i
        out.append(MorphPair(images[i], images[j], None if scores is None else float(scores[k])))
    return out


def _check_n(n_pairs: int) -> int:
    if isinstance(n_pairs, bool) or int(n_pairs) != n_pairs or n_pairs < 1:
        raise UsageError(f"n_pairs must be a positive integer; got {n_pairs!r}")
    return int(n_pairs)


def _check_ids_unique(images: Sequence[Any]) -> None:
    ids = [str(r.id) for r in images]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise UsageError(f"image ids must be unique to select pairs; repeated: {dup}")


def random_pairs(images: Sequence[Any], *, n_pairs: int, seed: int = 0, same_gender: bool = False,
                 age_band: float | None = None, unique_subjects: bool = True) -> list[MorphPair]:
    """Uniformly random pairs of images of different subjects (optionally same gender and ages
    within ``age_band`` years). Which image is contributor A is also drawn at random."""
    n_pairs = _check_n(n_pairs)
    _check_ids_unique(images)
    rng = np.random.default_rng(seed)
    idx, ok = _constraint(images, same_gender=same_gender, age_band=age_band)
    if len(idx) <= _ENUMERATE_MAX:
        ii, jj = np.triu_indices(len(idx), k=1)
        i, j = idx[ii], idx[jj]
        keep = ok(i, j)
        i, j = i[keep], j[keep]
        perm = rng.permutation(len(i))
        out = _take(images, i[perm], j[perm], n_pairs, unique_subjects=unique_subjects, rng=rng)
    else:  # sample candidates in rounds (deterministic for a seed)
        out, seen_img, seen_subj = [], set(), set()
        for _ in range(50):
            m = max(4 * n_pairs, 1024)
            i = rng.choice(idx, size=m)
            j = rng.choice(idx, size=m)
            keep = ok(i, j)
            lo, hi = np.minimum(i, j)[keep], np.maximum(i, j)[keep]
            for a, b in zip(lo, hi):
                ka = (str(images[a].id), str(images[b].id))
                ks = tuple(sorted((str(images[a].subject), str(images[b].subject))))
                if ka in seen_img or (unique_subjects and ks in seen_subj):
                    continue
                seen_img.add(ka)
                seen_subj.add(ks)
                if rng.random() < 0.5:
                    a, b = b, a
                out.append(MorphPair(images[int(a)], images[int(b)]))
                if len(out) >= n_pairs:
                    break
            if len(out) >= n_pairs:
                break
    if len(out) < n_pairs:
        log.warning("only %d pair(s) satisfy the constraints; %d were asked for", len(out), n_pairs)
    return out


def same_gender_pairs(images: Sequence[Any], *, n_pairs: int, seed: int = 0, age_band: float | None = None,
                      unique_subjects: bool = True) -> list[MorphPair]:
    """Random pairs of different subjects of the same gender (``gender`` metadata), optionally with
    ages at most ``age_band`` years apart (``age`` metadata)."""
    return random_pairs(images, n_pairs=n_pairs, seed=seed, same_gender=True, age_band=age_band,
                        unique_subjects=unique_subjects)


def most_similar_pairs(images: Sequence[Any], embeddings: np.ndarray, *, n_pairs: int, same_gender: bool = False,
                       age_band: float | None = None, unique_subjects: bool = True,
                       max_per_subject: int | None = None, seed: int = 0) -> list[MorphPair]:
    """The ``n_pairs`` most similar impostor pairs under an FR model: image pairs of different
    subjects ranked by cosine similarity of their (L2-normalised) embeddings, highest first
    (ties broken by manifest order). Rows of ``embeddings`` that are NaN (failed images) are
    left out. ``max_per_subject`` caps how many pairs one subject may appear in. Contributor A
    is the image earlier in the manifest; ``seed`` is unused (the ranking is deterministic)."""
    n_pairs = _check_n(n_pairs)
    _check_ids_unique(images)
    E = np.asarray(embeddings, dtype=np.float64)
    if E.ndim != 2 or len(E) != len(images):
        raise UsageError(f"embeddings must have shape (n_images={len(images)}, D); got {E.shape}")
    if max_per_subject is not None and max_per_subject < 1:
        raise UsageError(f"max_per_subject must be >= 1; got {max_per_subject}")
    idx, ok = _constraint(images, same_gender=same_gender, age_band=age_band)
    valid = np.isfinite(E).all(axis=1)
    if (~valid).any():
        log.warning("%d image(s) without an embedding are left out", int((~valid).sum()))
    idx = idx[valid[idx]]
    if len(idx) > 20000:
        raise UsageError(f"most_similar over {len(idx)} images would compare {len(idx) ** 2 // 2} pairs; "
                         "subsample the manifest first")
    En = E[idx] / np.linalg.norm(E[idx], axis=1, keepdims=True)
    ii, jj = np.triu_indices(len(idx), k=1)
    i, j = idx[ii], idx[jj]
    keep = ok(i, j)
    i, j, ii, jj = i[keep], j[keep], ii[keep], jj[keep]
    sims = np.einsum("nd,nd->n", En[ii], En[jj])
    order = np.lexsort((j, i, -sims))  # highest similarity first, ties by manifest order
    i, j, sims = i[order], j[order], sims[order]
    if max_per_subject is None:
        out = _take(images, i, j, n_pairs, unique_subjects=unique_subjects, scores=sims)
    else:
        count: dict[str, int] = {}
        out, seen_s = [], set()
        for a, b, s in zip(i, j, sims):
            sa, sb = str(images[a].subject), str(images[b].subject)
            ks = tuple(sorted((sa, sb)))
            if count.get(sa, 0) >= max_per_subject or count.get(sb, 0) >= max_per_subject:
                continue
            if unique_subjects and ks in seen_s:
                continue
            seen_s.add(ks)
            count[sa] = count.get(sa, 0) + 1
            count[sb] = count.get(sb, 0) + 1
            out.append(MorphPair(images[int(a)], images[int(b)], float(s)))
            if len(out) >= n_pairs:
                break
    if len(out) < n_pairs:
        log.warning("only %d pair(s) satisfy the constraints; %d were asked for", len(out), n_pairs)
    return out


PAIR_STRATEGIES = ("random", "same_gender", "most_similar")


def select_pairs(images: Sequence[Any], *, strategy: str, n_pairs: int, seed: int = 0,
                 embeddings: np.ndarray | None = None, age_band: float | None = None,
                 same_gender: bool | None = None, unique_subjects: bool = True,
                 max_per_subject: int | None = None) -> list[MorphPair]:
    """Dispatch to a strategy by name (``random``, ``same_gender``, ``most_similar``).

    ``same_gender`` applies to ``random``/``most_similar`` as an extra constraint (``same_gender``
    always has it); ``most_similar`` needs ``embeddings`` (N, D) in the order of ``images``.
    """
    if strategy == "random":
        return random_pairs(images, n_pairs=n_pairs, seed=seed, same_gender=bool(same_gender), age_band=age_band,
                            unique_subjects=unique_subjects)
    if strategy == "same_gender":
        return same_gender_pairs(images, n_pairs=n_pairs, seed=seed, age_band=age_band,
                                 unique_subjects=unique_subjects)
    if strategy == "most_similar":
        if embeddings is None:
            raise UsageError("the most_similar strategy needs embeddings from an FR model (e.g. --fr-system dlib)")
        return most_similar_pairs(images, embeddings, n_pairs=n_pairs, same_gender=bool(same_gender),
                                  age_band=age_band, unique_subjects=unique_subjects,
                                  max_per_subject=max_per_subject, seed=seed)
    import difflib

    close = difflib.get_close_matches(str(strategy), PAIR_STRATEGIES, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UsageError(f"pair strategy {strategy!r} is not known; available: {list(PAIR_STRATEGIES)}.{hint}")


__all__ = [
    "PAIR_STRATEGIES",
    "MorphPair",
    "most_similar_pairs",
    "random_pairs",
    "same_gender_pairs",
    "select_pairs",
]

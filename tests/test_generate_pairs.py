"""Pair selection strategies: invariants (no self-pairs, no duplicates, constraints, determinism)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from madpad.errors import UsageError
from madpad.morph.pairs import (
    most_similar_pairs,
    random_pairs,
    same_gender_pairs,
    select_pairs,
)


@dataclass
class Img:
    id: str
    subject: str
    path: str = ""
    extra: dict = field(default_factory=dict)


def _images(n_subjects=12, per_subject=2, with_meta=True):
    out = []
    for s in range(n_subjects):
        for k in range(per_subject):
            meta = {"gender": "female" if s % 2 else "male", "age": str(20 + 3 * s)} if with_meta else {}
            out.append(Img(f"s{s:02d}_{k}", f"s{s:02d}", f"/x/s{s:02d}_{k}.jpg", meta))
    return out


def _check_invariants(pairs, *, unique_subjects=True):
    keys = [tuple(sorted((p.a.id, p.b.id))) for p in pairs]
    assert len(keys) == len(set(keys)), "(a, b) and (b, a) count as one pair"
    assert all(p.a.subject != p.b.subject for p in pairs), "no self-pairs"
    if unique_subjects:
        sk = [tuple(sorted((p.a.subject, p.b.subject))) for p in pairs]
        assert len(sk) == len(set(sk))


def test_random_pairs_invariants_and_determinism():
    imgs = _images()
    p1 = random_pairs(imgs, n_pairs=30, seed=3)
    p2 = random_pairs(imgs, n_pairs=30, seed=3)
    p3 = random_pairs(imgs, n_pairs=30, seed=4)
    assert len(p1) == 30
    _check_invariants(p1)
    assert [(p.a.id, p.b.id) for p in p1] == [(p.a.id, p.b.id) for p in p2]
    assert [(p.a.id, p.b.id) for p in p1] != [(p.a.id, p.b.id) for p in p3]
    # contributor A is not always the earlier image
    order = {r.id: i for i, r in enumerate(imgs)}
    firsts = [order[p.a.id] < order[p.b.id] for p in p1]
    assert 0 < sum(firsts) < len(firsts)


def test_random_pairs_caps_at_the_number_of_subject_pairs():
    imgs = _images(n_subjects=5, per_subject=3)
    pairs = random_pairs(imgs, n_pairs=100, seed=0)
    assert len(pairs) == 10  # C(5, 2) subject pairs
    _check_invariants(pairs)
    more = random_pairs(imgs, n_pairs=100, seed=0, unique_subjects=False)
    assert len(more) == 10 * 9  # every cross-subject image pair once
    _check_invariants(more, unique_subjects=False)


def test_same_gender_and_age_band():
    imgs = _images(n_subjects=16)
    pairs = same_gender_pairs(imgs, n_pairs=20, seed=1, age_band=10)
    assert pairs
    _check_invariants(pairs)
    for p in pairs:
        assert p.a.extra["gender"] == p.b.extra["gender"]
        assert abs(float(p.a.extra["age"]) - float(p.b.extra["age"])) <= 10
    with pytest.raises(UsageError, match="needs a 'gender' column"):
        same_gender_pairs(_images(with_meta=False), n_pairs=3)


def test_large_manifests_are_sampled_with_the_same_guarantees():
    imgs = [Img(f"i{k}", f"s{k // 2}", extra={"gender": "female" if k % 4 < 2 else "male"}) for k in range(4200)]
    pairs = same_gender_pairs(imgs, n_pairs=300, seed=0)
    assert len(pairs) == 300
    _check_invariants(pairs)
    assert all(p.a.extra["gender"] == p.b.extra["gender"] for p in pairs)
    again = same_gender_pairs(imgs, n_pairs=300, seed=0)
    assert [(p.a.id, p.b.id) for p in pairs] == [(p.a.id, p.b.id) for p in again]


def test_most_similar_ranks_by_cosine_similarity():
    imgs = _images(n_subjects=6, per_subject=1)
    E = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.95, 0.05], [0, 0, 1], [0.5, 0.5, 0.0]], float)
    pairs = most_similar_pairs(imgs, E, n_pairs=3)
    _check_invariants(pairs)
    scores = [p.score for p in pairs]
    assert scores == sorted(scores, reverse=True)
    assert {pairs[0].a.id, pairs[0].b.id} == {"s00_0", "s01_0"} or {pairs[0].a.id, pairs[0].b.id} == {"s02_0", "s03_0"}
    En = E / np.linalg.norm(E, axis=1, keepdims=True)
    assert pairs[0].score == pytest.approx(max(En[0] @ En[1], En[2] @ En[3]))
    # same-subject images are never paired even when identical
    imgs2 = _images(n_subjects=3, per_subject=2)
    E2 = np.repeat(np.eye(3), 2, axis=0)
    _check_invariants(most_similar_pairs(imgs2, E2, n_pairs=3))


def test_most_similar_skips_failed_embeddings_and_caps_subjects():
    imgs = _images(n_subjects=6, per_subject=1)
    rng = np.random.default_rng(0)
    E = rng.normal(size=(6, 8))
    E[2] = np.nan
    pairs = most_similar_pairs(imgs, E, n_pairs=15, max_per_subject=1)
    assert all("s02" not in (p.a.subject, p.b.subject) for p in pairs)
    subjects = [s for p in pairs for s in (p.a.subject, p.b.subject)]
    assert len(subjects) == len(set(subjects))
    with pytest.raises(UsageError, match="shape"):
        most_similar_pairs(imgs, E[:3], n_pairs=2)


def test_select_pairs_dispatch_and_errors():
    imgs = _images()
    assert len(select_pairs(imgs, strategy="same_gender", n_pairs=5, seed=0)) == 5
    with pytest.raises(UsageError, match="Did you mean 'random'"):
        select_pairs(imgs, strategy="randm", n_pairs=5)
    with pytest.raises(UsageError, match="needs embeddings"):
        select_pairs(imgs, strategy="most_similar", n_pairs=5)
    with pytest.raises(UsageError, match="positive integer"):
        select_pairs(imgs, strategy="random", n_pairs=0)
    with pytest.raises(UsageError, match="unique"):
        random_pairs(imgs + imgs[:1], n_pairs=2)

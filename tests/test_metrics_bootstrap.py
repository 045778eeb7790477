"""Vectorised bootstrap over binned sorted scores: exactness, accuracy, pairing, subjects."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from madpad.metrics import PadScores, pad_bootstrap, pad_summary_figures, paired_pad_bootstrap
from madpad.metrics._replicates import BinnedClass, ClassReplicates, summary_figures, tail_bins

TARGETS = (0.0, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0)


def _random_pad(rng, *, rounded=True):
    bf = rng.normal(0, 1, rng.integers(3, 80))
    attacks = {f"s{i}": rng.normal(rng.uniform(0, 2), 1, rng.integers(2, 50)) for i in range(rng.integers(1, 4))}
    if rounded:  # ties everywhere
        bf = np.round(bf, 1)
        attacks = {k: np.round(v, 1) for k, v in attacks.items()}
    return PadScores.from_groups(bf, attacks)


def _binned(pad, eps):
    return ([BinnedClass(pad.bona_fide.v, tail_bins(pad.n_bona_fide, eps))]
            + [BinnedClass(a.v, tail_bins(a.n, eps)) for a in pad.attacks.values()])


def test_one_score_bins_equal_the_per_replicate_computation():
    """With eps=0 (one score per bin) the vectorised figures equal, replicate by replicate,
    what PadScores computes with the same per-sample weights (ties and zero weights included)."""
    rng = np.random.default_rng(1)
    for _ in range(30):
        pad = _random_pad(rng)
        classes = _binned(pad, 0.0)
        R = 20
        Ws = [rng.integers(0, 3, (R, c.n)).astype(float) for c in classes]
        for W in Ws:
            W[:, 0] += 1  # keep every class non-empty
        bottom, top = pad._bounds()
        figs = summary_figures(ClassReplicates(classes[0], Ws[0]),
                               [ClassReplicates(c, W) for c, W in zip(classes[1:], Ws[1:])], TARGETS,
                               bottom=bottom, top=top)
        for r in range(R):
            w = pad.with_weights(Ws[0][r], {k: Ws[i + 1][r] for i, k in enumerate(pad.attacks)})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = pad_summary_figures(w, TARGETS)
            for k, v in ref.items():
                assert figs[k][r] == pytest.approx(v, abs=1e-12), (k, r)


@pytest.mark.parametrize("n", [1000, 30000])
def test_unit_bin_weights_reproduce_the_point_estimate_exactly(n):
    rng = np.random.default_rng(n)
    pad = PadScores.from_groups(rng.normal(0, 1, n), {"a": rng.normal(2, 1, n // 2), "b": rng.normal(1, 1, n // 3)})
    classes = _binned(pad, 1 / 16)  # coarse bins: interpolation is still exact for unit weights
    assert all(c.B < c.n for c in classes)
    bottom, top = pad._bounds()
    figs = summary_figures(ClassReplicates(classes[0], classes[0].sizes[None, :]),
                           [ClassReplicates(c, c.sizes[None, :]) for c in classes[1:]], (0.01, 0.05, 0.1, 0.2),
                           bottom=bottom, top=top)
    est = pad_summary_figures(pad)
    for k, v in est.items():
        assert figs[k][0] == v, k


def test_tail_bins_are_one_score_wide_in_the_tails_and_bounded_relative_width():
    n, eps = 1_000_000, 1 / 256
    s = tail_bins(n, eps)
    assert s[0] == 0 and s[-1] == n and np.all(np.diff(s) >= 1)
    sizes = np.diff(s)
    assert np.all(sizes[:256] == 1) and np.all(sizes[-256:] == 1)
    d = np.minimum(s[:-1], n - s[1:])  # distance of each bin to the nearer end
    assert np.all(sizes <= np.maximum(1, np.floor(eps * d) + 1))
    assert s.size < 6000  # a few thousand bins instead of a million scores
    assert np.array_equal(tail_bins(100, eps), np.arange(101))  # small classes: exact


def test_binned_bootstrap_agrees_with_the_exact_bootstrap():
    """Coarse bins (eps 1/16, much coarser than the default) leave the interval endpoints
    within Monte Carlo noise of the exact per-sample bootstrap."""
    rng = np.random.default_rng(0)
    n = 20000
    pad = PadScores.from_groups(rng.normal(0, 1, n), {"a": rng.normal(2, 1, n // 2), "b": rng.normal(1.5, 1, n // 4)})
    exact = pad_bootstrap(None, None, pad=pad, n_resamples=600, seed=1, bin_eps=0)
    coarse = pad_bootstrap(None, None, pad=pad, n_resamples=600, seed=2, bin_eps=1 / 16)
    for k in ("d_eer", "bpcer@apcer=0.05", "apcer@bpcer=0.1"):
        width = exact[k].high - exact[k].low
        assert width > 0
        assert abs(coarse[k].low - exact[k].low) < 0.2 * width, k
        assert abs(coarse[k].high - exact[k].high) < 0.2 * width, k
        assert coarse[k].estimate == exact[k].estimate


def test_bootstrap_is_seeded_and_chunk_independent_of_machine():
    rng = np.random.default_rng(3)
    pad = _random_pad(rng, rounded=False)
    a = pad_bootstrap(None, None, pad=pad, n_resamples=300, seed=9)
    b = pad_bootstrap(None, None, pad=pad, n_resamples=300, seed=9)
    assert a == b
    assert a["d_eer"].method == "bootstrap-sample"


def test_subject_bootstrap_counts_a_subject_in_every_class():
    """One subject holds every attack: a replicate without it has no attacks (invalid), and
    a subject's samples always move together."""
    bf = np.arange(10.0)
    at = np.array([20.0, 21.0])
    s = np.r_[bf, at]
    lab = [0] * 10 + [1, 1]
    subj = [f"s{i}" for i in range(10)] + ["s0", "s0"]  # s0 has a bona fide and both attacks
    r = pad_bootstrap(s, lab, subjects=subj, n_resamples=400, seed=0)
    # P(s0 not drawn) = (1 - 1/10)^10 ~ 0.35: about a third of the replicates have no attack
    assert 80 < r["d_eer"].n_invalid < 200
    assert r["d_eer"].method == "bootstrap-subject"
    # perfect separation in every valid replicate
    assert r["d_eer"].low == r["d_eer"].high == 0.0
    # linkage across classes: s0's bona fide scores above every attack, so in every replicate
    # that has attacks (s0 drawn) it is drawn too and BPCER@APCER=0 is never 0
    s2 = np.r_[bf[1:], 100.0, at]
    subj2 = [f"s{i}" for i in range(1, 10)] + ["s0", "s0", "s0"]
    r2 = pad_bootstrap(s2, lab, subjects=subj2, targets=(0.0,), n_resamples=400, seed=0)
    assert r2["bpcer@apcer=0"].estimate == pytest.approx(0.1)
    assert r2["bpcer@apcer=0"].low > 0


def test_paired_bootstrap_differences_of_identical_systems_are_exactly_zero():
    rng = np.random.default_rng(5)
    n = 3000
    codes = np.r_[np.full(n // 2, -1), rng.integers(0, 2, n - n // 2)]
    s = np.where(codes >= 0, rng.normal(1.5, 1, n), rng.normal(0, 1, n))
    a = PadScores.from_codes(s, codes, ["x", "y"], keep_order=True)
    perm = rng.permutation(n)  # the same scores in another row order, mapped back by sample_index
    b = PadScores.from_codes(s[perm], codes[perm], ["x", "y"], keep_order=True)
    res = paired_pad_bootstrap([a, b], n_samples=n, sample_index=[np.arange(n), perm], strata=codes,
                               n_resamples=200, seed=0)
    for k, iv in res["differences"][0].items():
        assert iv.estimate == 0 and iv.low == 0 and iv.high == 0, k
    assert res["systems"][0] == res["systems"][1]
    # an unpaired bootstrap of two equal systems would give a wide interval of the difference
    c = PadScores.from_codes(s + rng.normal(0, 0.3, n), codes, ["x", "y"], keep_order=True)
    res2 = paired_pad_bootstrap([a, c], n_samples=n, strata=codes, n_resamples=300, seed=0)
    ind_a = pad_bootstrap(None, None, pad=a, n_resamples=300, seed=1)
    d = res2["differences"][0]["d_eer"]
    assert d.low <= d.estimate <= d.high
    # pairing removes the shared sampling noise: the difference is tighter than one system's own interval
    assert (d.high - d.low) < (ind_a["d_eer"].high - ind_a["d_eer"].low)


def test_paired_bootstrap_by_subject_and_failures_left_out_per_system():
    rng = np.random.default_rng(7)
    n = 400
    codes = np.r_[np.full(200, -1), np.zeros(200, dtype=int)]
    s = np.where(codes >= 0, rng.normal(2, 1, n), rng.normal(0, 1, n))
    subj = rng.integers(0, 40, n)
    a = PadScores.from_codes(s, codes, ["m"], keep_order=True)
    keep = np.ones(n, dtype=bool)
    keep[[3, 250]] = False  # system b failed to acquire two samples
    idx = np.flatnonzero(keep)
    b = PadScores.from_codes(s[idx], codes[idx], ["m"], keep_order=True)
    res = paired_pad_bootstrap([a, b], n_samples=n, sample_index=[np.arange(n), idx], subjects=subj,
                               n_resamples=100, seed=0)
    assert res["systems"][0]["d_eer"].method == "paired-bootstrap-subject"
    assert res["systems"][1]["d_eer"].estimate == b.d_eer().d_eer
    with pytest.raises(ValueError, match="keep_order=True"):
        paired_pad_bootstrap([PadScores.from_codes(s, codes, ["m"])], n_samples=n)


def test_from_codes_equals_from_arrays():
    rng = np.random.default_rng(4)
    n = 500
    codes = rng.integers(-1, 3, n)
    s = np.round(rng.normal(0, 1, n) + (codes >= 0), 1)
    names = ["c", "a", "b"]
    a = PadScores.from_codes(s, codes, names)
    sp = np.where(codes >= 0, np.asarray(names)[np.maximum(codes, 0)], "")
    b = PadScores.from_arrays(s, codes >= 0, species=sp)
    assert list(a.attacks) == ["a", "b", "c"]
    assert a.d_eer() == b.d_eer()
    for x in (0.0, 0.05, 0.3):
        assert a.bpcer_at_apcer(x) == b.bpcer_at_apcer(x)
    with pytest.raises(ValueError, match="codes must be -1"):
        PadScores.from_codes([0.1, 0.2], [-1, 3], ["a"])

"""ISO/IEC 30107-3 PAD metrics: hand-computed cases, invariants, sklearn agreement, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from madpad.metrics import (
    PadScores,
    UndefinedMetricWarning,
    apcer_at_bpcer,
    apcer_bpcer,
    bpcer_at_apcer,
    d_eer,
    det_curve,
    iapmr,
    pad_bootstrap,
)

# bona fide 0..4 (attack direction), two species with a tie at 0.5
BF = [0.1, 0.2, 0.3, 0.4, 0.5]
PRINT = [0.5, 0.6, 0.7, 0.8]
REPLAY = [0.35, 0.9]


def case():
    scores = BF + PRINT + REPLAY
    labels = ["bona_fide"] * 5 + ["attack"] * 6
    species = [""] * 5 + ["print"] * 4 + ["replay"] * 2
    return scores, labels, species


def test_rates_at_threshold_hand_computed_with_ties():
    s, l, sp = case()
    r = apcer_bpcer(s, l, 0.5, species=sp)
    # attack when score >= 0.5: bona fide 0.5 is an error (tie counts as attack)
    assert r.bpcer == pytest.approx(1 / 5)
    assert r.apcer_per_species == {"print": 0.0, "replay": 0.5}  # 0.35 < 0.5 missed
    assert r.apcer == 0.5  # max over species, not pooled
    assert r.apcer_pooled == pytest.approx(1 / 6)
    assert r.acer_non_iso == pytest.approx((0.5 + 0.2) / 2)
    r2 = apcer_bpcer(s, l, 0.50000001, species=sp)
    assert r2.bpcer == 0.0 and r2.apcer_per_species["print"] == 0.25


def test_bpcer_at_apcer_conservative_hand_computed():
    s, l, sp = case()
    # APCER <= 0: every species fully detected -> t = min attack score over species = 0.35
    op = bpcer_at_apcer(s, l, 0.0, species=sp)
    assert op.threshold == 0.35 and op.apcer == 0.0
    assert op.bpcer == pytest.approx(2 / 5)  # bona fide 0.4 and 0.5 are >= 0.35


def test_bpcer_at_apcer_various_targets():
    s, l, sp = case()
    # x = 0.25: print floor(0.25*4)=1 -> t_print = 0.6; replay floor(0.5)=0 -> t_replay = 0.35; t = 0.35
    op = bpcer_at_apcer(s, l, 0.25, species=sp)
    assert op.threshold == 0.35
    # x = 0.5: print floor(2) -> 0.7; replay floor(1) -> 0.9; t = 0.7
    op = bpcer_at_apcer(s, l, 0.5, species=sp)
    assert op.threshold == 0.7
    assert op.apcer_per_species == {"print": 0.5, "replay": 0.5}
    assert op.bpcer == 0.0
    # x = 1: every attack may be missed -> threshold above every score, BPCER 0, APCER 1
    op = bpcer_at_apcer(s, l, 1.0, species=sp)
    assert op.threshold > 0.9 and op.apcer == 1.0 and op.bpcer == 0.0


def test_apcer_at_bpcer_conservative_hand_computed():
    s, l, sp = case()
    # BPCER <= 0.2: at most 1 of 5 bona fide >= t -> t = nextafter(0.4) (0.5 still an error)
    op = apcer_at_bpcer(s, l, 0.2, species=sp)
    assert op.threshold == np.nextafter(0.4, np.inf)
    assert op.bpcer == pytest.approx(0.2)
    assert op.apcer_per_species == {"print": 0.0, "replay": 0.5}
    op0 = apcer_at_bpcer(s, l, 0.0, species=sp)
    assert op0.bpcer == 0.0 and op0.threshold == np.nextafter(0.5, np.inf)
    assert op0.apcer_per_species["print"] == 0.25  # the tie at 0.5 is now missed
    op1 = apcer_at_bpcer(s, l, 1.0, species=sp)
    assert op1.bpcer == 1.0 and op1.apcer == 0.0


def test_conservative_targets_never_exceeded_random():
    rng = np.random.default_rng(3)
    for trial in range(20):
        n_bf, n_a, n_b = rng.integers(5, 200, size=3)
        # integer scores create many ties
        s = np.r_[rng.integers(0, 30, n_bf), rng.integers(10, 40, n_a), rng.integers(5, 35, n_b)].astype(float)
        lab = np.r_[np.zeros(n_bf), np.ones(n_a + n_b)].astype(int)
        sp = np.r_[[""] * n_bf, ["a"] * n_a, ["b"] * n_b]
        pad = PadScores.from_arrays(s, lab, species=sp)
        for x in (0.0, 0.01, 0.05, 0.1, 0.2, 0.5):
            op = pad.bpcer_at_apcer(x)
            assert max(op.apcer_per_species.values()) <= x + 1e-12
            # optimal: any larger threshold (next distinct score) breaks the constraint for some species
            higher = np.unique(s[s > op.threshold])
            if higher.size:
                r = pad.rates(higher[0])
                assert r.apcer > x
            op2 = pad.apcer_at_bpcer(x)
            assert op2.bpcer <= x + 1e-12
            lower = np.unique(s[s < op2.threshold])
            if lower.size:  # the next lower distinct score as threshold exceeds the BPCER target
                assert pad.rates(lower[-1]).bpcer > x


def test_bpcer_at_apcer_non_increasing_in_target():
    rng = np.random.default_rng(0)
    s = np.r_[rng.normal(0, 1, 300), rng.normal(1.5, 1, 150), rng.normal(2, 1, 150)]
    lab = [0] * 300 + [1] * 300
    sp = [""] * 300 + ["x"] * 150 + ["y"] * 150
    pad = PadScores.from_arrays(s, lab, species=sp)
    xs = np.linspace(0, 1, 101)
    b = [pad.bpcer_at_apcer(x).bpcer for x in xs]
    a = [pad.apcer_at_bpcer(x).apcer for x in xs]
    assert np.all(np.diff(b) <= 0) and np.all(np.diff(a) <= 0)


def test_d_eer_interpolates_between_bracketing_thresholds():
    r = d_eer([0.1, 0.2, 0.3, 0.6, 0.4, 0.5, 0.55, 0.7, 0.8], [0] * 4 + [1] * 5)
    # t=0.5: APCER 1/5, BPCER 1/4; t=0.55: APCER 2/5, BPCER 1/4 -> APCER=BPCER at lambda=0.25 -> 0.25
    assert r.d_eer == pytest.approx(0.25)
    assert r.bracket["threshold_low"] == 0.5 and r.bracket["threshold_high"] == 0.55
    assert r.threshold == pytest.approx(0.5125)


def test_d_eer_max_over_species_vs_pooled_and_per_species():
    s, l, sp = case()
    pad = PadScores.from_arrays(s, l, species=sp)
    assert pad.d_eer().d_eer >= pad.d_eer(apcer_mode="pooled").d_eer - 1e-12
    per = [pad.d_eer(apcer_mode=k).d_eer for k in ("print", "replay")]
    assert pad.d_eer().d_eer >= max(per) - 1e-12
    with pytest.raises(ValueError, match="apcer_mode"):
        pad.d_eer(apcer_mode="nope")


def test_d_eer_perfect_and_inverted_separation():
    assert d_eer([0, 1, 2, 10, 11], [0, 0, 0, 1, 1]).d_eer == 0.0
    assert d_eer([10, 11, 12, 0, 1], [0, 0, 0, 1, 1]).d_eer == 1.0


def test_constant_scores_defined_chance_result_with_warning():
    with pytest.warns(UserWarning, match="all scores are equal"):
        pad = PadScores.from_arrays([0.5] * 6, [0, 0, 0, 1, 1, 1])
    assert pad.d_eer().d_eer == pytest.approx(0.5)
    op = pad.bpcer_at_apcer(0.1)
    assert op.apcer == 0.0 and op.bpcer == 1.0


def test_det_curve_exact_and_monotone():
    c = det_curve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    assert c.thresholds[:4].tolist() == [0.1, 0.35, 0.4, 0.8]
    assert c.apcer.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert c.bpcer.tolist() == [1.0, 0.5, 0.5, 0.0, 0.0]
    rng = np.random.default_rng(1)
    s = np.round(rng.normal(0, 1, 5000), 2)
    lab = rng.random(5000) < 0.4
    sp = np.where(rng.random(5000) < 0.5, "a", "b")
    for mp in (None, 100):
        c = det_curve(s, lab, species=sp, max_points=mp)
        assert np.all(np.diff(c.thresholds) > 0)
        assert np.all(np.diff(c.apcer) >= 0) and np.all(np.diff(c.bpcer) <= 0)
        assert np.all(c.apcer >= c.apcer_per_species["a"]) and np.all(c.apcer >= c.apcer_per_species["b"])


def test_agrees_with_sklearn_roc_curve():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    s = np.round(rng.normal(0, 1, 3000), 2)  # rounding creates ties
    y = (rng.random(3000) < 0.3).astype(int)
    fpr, tpr, thr = sk.roc_curve(y, s, drop_intermediate=False)
    c = det_curve(s, y)
    # sklearn: element i is the rate for score >= thr[i]; thr[0] = inf
    i = np.searchsorted(c.thresholds, thr[1:])
    np.testing.assert_array_equal(c.thresholds[i], thr[1:])
    np.testing.assert_allclose(c.bpcer[i], fpr[1:], rtol=0, atol=1e-12)
    np.testing.assert_allclose(1 - c.apcer_pooled[i], tpr[1:], rtol=0, atol=1e-12)
    assert c.thresholds.size == thr.size  # every distinct score plus one threshold above all scores
    # and the D-EER lies between the sklearn-derived bracketing points
    fnr = 1 - tpr
    j = np.flatnonzero(fnr >= fpr)[0]  # thresholds descend in sklearn
    lo, hi = sorted([max(fpr[j - 1], fnr[j - 1]), min(fpr[j], fnr[j])])
    e = d_eer(s, y).d_eer
    assert min(fpr[j], fnr[j - 1]) - 1e-9 <= e <= max(fpr[j - 1], fnr[j]) + 1e-9


def test_higher_is_bona_fide_is_flipped_at_the_boundary():
    s, l, sp = case()
    neg = [-v for v in s]
    a = bpcer_at_apcer(s, l, 0.25, species=sp)
    b = bpcer_at_apcer(neg, l, 0.25, species=sp, higher_is_attack=False)
    assert b.threshold == -a.threshold and b.bpcer == a.bpcer and b.apcer == a.apcer
    assert d_eer(neg, l, species=sp, higher_is_attack=False).d_eer == pytest.approx(d_eer(s, l, species=sp).d_eer)
    # attack when score <= threshold in the bob-style scale
    assert apcer_bpcer(neg, l, -0.5, species=sp, higher_is_attack=False).bpcer == pytest.approx(0.2)


@pytest.mark.parametrize("scores, labels, species, match", [
    ([0.1, float("nan")], [0, 1], None, "NaN"),
    ([0.1, float("inf")], [0, 1], None, "infinite"),
    ([0.1, 0.2, 0.3], [0, 1], None, "inconsistent lengths"),
    ([0.1, 0.2], ["bona_fide", "morph"], None, r"labels\[1\] = 'morph'"),
    ([0.1, 0.2], [0, 2], None, "0 .bona fide. or 1"),
    ([0.1, 0.2, 0.3], [0, 1, 1], ["", "print", ""], r"species\[2\] is empty"),
    ([0.1, 0.2, 0.3], [0, 1, 1], ["", "print", None], r"species\[2\] is empty"),
    ([[0.1, 0.2]], [[0, 1]], None, "1-D"),
])
def test_bad_input_raises_clear_value_error(scores, labels, species, match):
    with pytest.raises(ValueError, match=match):
        apcer_bpcer(scores, labels, 0.5, species=species)


def test_single_class_gives_warning_and_nan_never_zero():
    with pytest.warns(UndefinedMetricWarning):
        pad = PadScores.from_arrays([0.1, 0.2, 0.3], [0, 0, 0])
    with pytest.warns(UndefinedMetricWarning):
        op = pad.bpcer_at_apcer(0.05)
    assert np.isnan(op.bpcer) and np.isnan(op.threshold)
    with pytest.warns(UndefinedMetricWarning):
        assert np.isnan(pad.d_eer().d_eer)
    with pytest.warns(UndefinedMetricWarning):
        r = pad.rates(0.2)
    assert np.isnan(r.apcer) and r.bpcer == pytest.approx(2 / 3)
    with pytest.warns(UndefinedMetricWarning):
        pad2 = PadScores.from_arrays([0.1, 0.2], [1, 1], species=["a", "b"])
    with pytest.warns(UndefinedMetricWarning):
        assert np.isnan(pad2.rates(0.15).bpcer)


def test_rate_target_validation():
    s, l, sp = case()
    with pytest.raises(ValueError, match=r"APCER target must be in \[0, 1\]"):
        bpcer_at_apcer(s, l, 1.5, species=sp)
    with pytest.raises(ValueError, match="threshold is NaN"):
        apcer_bpcer(s, l, float("nan"))


def test_float_target_times_n_rounding():
    # 0.29 * 100 = 28.999999999999996 in floats: the threshold must still allow 29 misses
    s = np.arange(200, dtype=float)
    lab = [0] * 100 + [1] * 100
    op = bpcer_at_apcer(s, lab, 0.29)
    assert op.apcer == pytest.approx(0.29) and op.threshold == 129.0
    for x in (0.07, 0.29, 0.57):
        op2 = apcer_at_bpcer(s, lab, x)
        assert op2.bpcer == pytest.approx(x)  # exactly x * 100 bona fide errors allowed, not one fewer


def test_iapmr():
    assert iapmr([0.2, 0.5, 0.7, 0.9], threshold=0.5) == 0.75
    assert iapmr([0.2, 0.5, 0.7, 0.9], threshold=0.5, match_rule=">") == 0.5
    with pytest.raises(ValueError, match="match_rule"):
        iapmr([0.1], threshold=0.5, match_rule="=>")


def test_pad_bootstrap_deterministic_by_subject_and_changes_with_seed():
    rng = np.random.default_rng(0)
    n = 300
    s = np.r_[rng.normal(0, 1, n), rng.normal(2, 1, n)]
    lab = [0] * n + [1] * n
    sp = [""] * n + ["a"] * (n // 2) + ["b"] * (n // 2)
    subj = [f"s{i % 40}" for i in range(2 * n)]
    a = pad_bootstrap(s, lab, species=sp, subjects=subj, n_resamples=60, seed=5)
    b = pad_bootstrap(s, lab, species=sp, subjects=subj, n_resamples=60, seed=5)
    c = pad_bootstrap(s, lab, species=sp, subjects=subj, n_resamples=60, seed=6)
    assert a == b
    assert a["d_eer"].low != c["d_eer"].low or a["d_eer"].high != c["d_eer"].high
    assert a["d_eer"].method == "bootstrap-subject"
    for k, iv in a.items():
        assert iv.low <= iv.high
    assert a["d_eer"].low <= a["d_eer"].estimate <= a["d_eer"].high
    # sample bootstrap also works and differs in method
    d = pad_bootstrap(s, lab, species=sp, n_resamples=30, seed=1)
    assert d["d_eer"].method == "bootstrap-sample"


def test_weighted_unit_weights_equal_unweighted():
    rng = np.random.default_rng(2)
    s = np.round(rng.normal(0, 1, 400), 1)
    lab = rng.random(400) < 0.5
    sp = np.where(rng.random(400) < 0.5, "a", "b")
    pad = PadScores.from_arrays(s, lab, species=sp)
    w = pad.with_weights(np.ones(pad.n_bona_fide), {k: np.ones(a.n) for k, a in pad.attacks.items()})
    for x in (0.0, 0.05, 0.1, 0.3):
        assert pad.bpcer_at_apcer(x) == w.bpcer_at_apcer(x)
        assert pad.apcer_at_bpcer(x) == w.apcer_at_bpcer(x)
    assert pad.d_eer() == w.d_eer()
    # integer weights equal duplicating samples
    wb = rng.integers(0, 3, pad.n_bona_fide).astype(float)
    wa = {k: rng.integers(1, 3, a.n).astype(float) for k, a in pad.attacks.items()}
    ww = pad.with_weights(wb, wa)
    dup_s = np.r_[np.repeat(pad.bona_fide.v, wb.astype(int))]
    dup_l = [0] * dup_s.size
    dup_sp = [""] * dup_s.size
    for k, a in pad.attacks.items():
        rep = np.repeat(a.v, wa[k].astype(int))
        dup_s = np.r_[dup_s, rep]
        dup_l += [1] * rep.size
        dup_sp += [k] * rep.size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = PadScores.from_arrays(dup_s, dup_l, species=dup_sp)
    for x in (0.0, 0.05, 0.2):
        assert ww.bpcer_at_apcer(x).threshold == ref.bpcer_at_apcer(x).threshold
        assert ww.bpcer_at_apcer(x).bpcer == pytest.approx(ref.bpcer_at_apcer(x).bpcer)
        assert ww.apcer_at_bpcer(x).threshold == ref.apcer_at_bpcer(x).threshold
    assert ww.d_eer().d_eer == pytest.approx(ref.d_eer().d_eer)


def test_from_groups_equals_from_arrays():
    s, l, sp = case()
    a = PadScores.from_arrays(s, l, species=sp)
    b = PadScores.from_groups(BF, {"replay": REPLAY, "print": PRINT})
    assert list(b.attacks) == ["print", "replay"]
    for x in (0.0, 0.25, 0.5):
        assert a.bpcer_at_apcer(x) == b.bpcer_at_apcer(x)
        assert a.apcer_at_bpcer(x) == b.apcer_at_bpcer(x)
    assert a.d_eer() == b.d_eer()
    c = PadScores.from_groups([-v for v in BF], {"print": [-v for v in PRINT], "replay": [-v for v in REPLAY]},
                              higher_is_attack=False)
    assert c.bpcer_at_apcer(0.25).threshold == -a.bpcer_at_apcer(0.25).threshold


def brute_force_d_eer(bf, attacks):
    """Reference: scan every candidate threshold (each distinct score, and one above all)."""
    allv = np.unique(np.concatenate([bf] + list(attacks)))
    cands = np.r_[allv, np.nextafter(allv[-1], np.inf)]
    A = np.array([max(np.mean(a < t) for a in attacks) for t in cands])
    B = np.array([np.mean(bf >= t) for t in cands])
    j = int(np.flatnonzero(A - B >= 0)[0])  # first threshold with APCER >= BPCER
    d_lo, d_hi = A[j - 1] - B[j - 1], A[j] - B[j]
    lam = -d_lo / (d_hi - d_lo)
    return A[j - 1] + lam * (A[j] - A[j - 1])


def test_d_eer_matches_brute_force_scan():
    rng = np.random.default_rng(11)
    for _ in range(25):
        bf = np.round(rng.normal(0, 1, rng.integers(3, 60)), 1)
        attacks = [np.round(rng.normal(rng.uniform(0, 2), 1, rng.integers(2, 40)), 1) for _ in range(rng.integers(1, 4))]
        names = [f"s{i}" for i in range(len(attacks))]
        pad = PadScores.from_groups(bf, dict(zip(names, attacks)))
        assert pad.d_eer().d_eer == pytest.approx(brute_force_d_eer(bf, attacks), abs=1e-12)

"""Comparing D-MAD detectors on the same pairs: paired subject bootstrap of the D-EER."""

from __future__ import annotations

import numpy as np
import pytest

from madpad.mad.evaluation import detection_eer, paired_subject_bootstrap


def _toy(n_subjects=5, per=6):
    """Per subject: `per` bona fide pairs scored 0.1..0.4 and `per` attacks scored 0.6..0.9;
    detector a additionally gives subject s0's bona fide pairs attack-like scores."""
    subj, y, a = [], [], []
    for k in range(n_subjects):
        for i in range(per):
            subj += [f"s{k}", f"s{k}"]
            y += [0, 1]
            a += [0.1 + 0.05 * i, 0.6 + 0.05 * i]
    subj, y, a = np.array(subj), np.array(y), np.array(a, dtype=np.float64)
    b = a.copy()
    a[(subj == "s0") & (y == 0)] = 0.95  # a's errors: every bona fide pair of subject s0
    return a, b, y, subj


def test_identical_detectors_differ_by_exactly_zero():
    a, _, y, subj = _toy()
    r = paired_subject_bootstrap(a, a.copy(), y, subj, n_resamples=200)
    assert r["diff"] == 0.0 and r["ci_diff"] == (0.0, 0.0)
    assert r["p_b_better"] == 0.0 and r["p_b_worse"] == 0.0
    assert r["n_subjects"] == 5 and r["n_resamples"] == 200


def test_better_detector_is_never_worse_and_point_values_match_hand_computation():
    a, b, y, subj = _toy()
    r = paired_subject_bootstrap(a, b, y, subj, n_resamples=500, seed=1)
    # a: the 6 bona fide pairs of s0 (of 30) score above every attack -> D-EER 6/30 = 20 %
    assert r["d_eer_a"] == pytest.approx(detection_eer(a, y)) == pytest.approx(0.2, abs=0.02)
    assert r["d_eer_b"] == 0.0 and r["diff"] < 0
    assert r["p_b_worse"] == 0.0 and r["ci_diff"][1] <= 0.0
    assert r["ci_b"] == (0.0, 0.0)


def test_whole_subjects_are_resampled_together():
    # a errs only on subject s0: a replicate has D-EER 0 for a exactly when s0 is not drawn,
    # probability (1 - 1/n) ** n; resampling single pairs would almost never avoid all 6 of them
    n = 5
    a, b, y, subj = _toy(n_subjects=n)
    r = paired_subject_bootstrap(a, b, y, subj, n_resamples=3000, seed=0)
    expected = (1 - 1 / n) ** n
    assert 1 - r["p_b_better"] == pytest.approx(expected, abs=0.04)


def test_swapping_the_detectors_mirrors_the_result_and_seed_is_deterministic():
    a, b, y, subj = _toy()
    r1 = paired_subject_bootstrap(a, b, y, subj, n_resamples=300, seed=3)
    r2 = paired_subject_bootstrap(b, a, y, subj, n_resamples=300, seed=3)
    assert r1["diff"] == -r2["diff"]
    assert r1["ci_diff"] == pytest.approx((-r2["ci_diff"][1], -r2["ci_diff"][0]))
    assert r1["p_b_better"] == r2["p_b_worse"]
    assert paired_subject_bootstrap(a, b, y, subj, n_resamples=300, seed=3) == r1


def test_bad_input_is_refused_with_a_clear_message():
    a, b, y, subj = _toy()
    with pytest.raises(ValueError, match="one length"):
        paired_subject_bootstrap(a, b[:-1], y, subj)
    bad = a.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        paired_subject_bootstrap(bad, b, y, subj)
    with pytest.raises(ValueError, match="confidence"):
        paired_subject_bootstrap(a, b, y, subj, confidence=95)

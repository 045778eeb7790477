"""Biometric performance metrics in pure numpy.

* :mod:`madpad.metrics.pad` -- presentation attack detection per ISO/IEC 30107-3: APCER
  per attack species and its maximum, pooled APCER (labelled), BPCER, ACER (non-ISO),
  conservative BPCER@APCER / APCER@BPCER, D-EER, DET curves, IAPMR;
* :mod:`madpad.metrics.verification` -- FMR, FNMR, EER, FNMR@FMR, threshold at a target FMR;
* :mod:`madpad.metrics.vulnerability` -- MMPMR, ProdAvg-MMPMR, RMMR and the MAP matrix
  (ISO/IEC 20059) for face morphing attacks;
* :mod:`madpad.metrics.bootstrap` -- seeded bootstrap intervals (by subject when known) and
  binomial intervals; :mod:`madpad.metrics.pad_bootstrap`: :func:`pad_bootstrap` and
  :func:`paired_pad_bootstrap` (several systems on the same samples) draw their replicates as bin weights over the sorted classes and
  evaluate them all at once (:mod:`madpad.metrics._replicates`: 1000 replicates of 10^7
  scores in seconds).

Conventions: PAD/MAD scores are **higher = more likely attack**, classified attack when
``score >= threshold``; FR comparison scores are similarities (higher = same person),
match when ``score >= threshold`` (``match_rule=">"`` available). Thresholds at a target
rate are conservative: the realised rate is at most the target. Bad input (NaN/inf,
mismatched lengths, unknown labels, attacks without species) raises ValueError naming the
input; an empty class gives :class:`UndefinedMetricWarning` and NaN.
"""

from madpad.metrics._core import UndefinedMetricWarning
from madpad.metrics.bootstrap import (
    Interval,
    binomial_ci,
    bootstrap_ci,
    bootstrap_weights,
)
from madpad.metrics.pad import (
    ATTACK,
    BONA_FIDE,
    DEER,
    DetCurve,
    OperatingPoint,
    PadErrorRates,
    PadScores,
    acer_non_iso,
    apcer,
    apcer_at_bpcer,
    apcer_bpcer,
    apcer_per_species,
    apcer_pooled,
    bpcer,
    bpcer_at_apcer,
    d_eer,
    det_curve,
    iapmr,
    parse_labels,
)
from madpad.metrics.pad_bootstrap import (
    pad_bootstrap,
    pad_summary_figures,
    paired_pad_bootstrap,
)
from madpad.metrics.verification import (
    EER,
    VerificationPoint,
    eer,
    fmr,
    fmr_fnmr,
    fnmr,
    fnmr_at_fmr,
    threshold_at_fmr,
    verification_det_curve,
)
from madpad.metrics.vulnerability import (
    MorphMatches,
    map_matrix,
    mmpmr,
    morph_matches,
    prodavg_mmpmr,
    rmmr,
)

__all__ = [
    "UndefinedMetricWarning",
    "Interval", "binomial_ci", "bootstrap_ci", "bootstrap_weights",
    "ATTACK", "BONA_FIDE", "DEER", "DetCurve", "OperatingPoint", "PadErrorRates", "PadScores",
    "acer_non_iso", "apcer", "apcer_at_bpcer", "apcer_bpcer", "apcer_per_species", "apcer_pooled", "bpcer",
    "bpcer_at_apcer", "d_eer", "det_curve", "iapmr", "pad_bootstrap", "pad_summary_figures", "paired_pad_bootstrap",
    "parse_labels",
    "EER", "VerificationPoint", "eer", "fmr", "fmr_fnmr", "fnmr", "fnmr_at_fmr", "threshold_at_fmr",
    "verification_det_curve",
    "MorphMatches", "map_matrix", "mmpmr", "morph_matches", "prodavg_mmpmr", "rmmr",
]

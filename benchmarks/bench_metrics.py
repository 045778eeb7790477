"""Time the figures of a full PAD report (no plotting, no HTML, no bootstrap) for 10^5,
10^6 and 10^7 scores, beside scikit-learn's ``roc_curve`` and one ``numpy.argsort`` of the
same scores.

    python benchmarks/bench_metrics.py [--sizes 100000 1000000 10000000] [--repeat 3]

"Report figures" = validation and per-class preparation (one ``np.sort`` per class),
D-EER (max over species, pooled and per species), BPCER@APCER and APCER@BPCER at 1, 5,
10 and 20 %, and a 2000-point-per-class DET curve: everything ``report.json`` holds
except the bootstrap intervals. The bootstrap is timed separately, per resample.
Scores are synthetic (normal distributions, three attack species).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np


def report_figures(scores, labels, species):
    from madpad.metrics import PadScores

    pad = PadScores.from_arrays(scores, labels, species=species)
    out = {"d_eer": pad.d_eer().d_eer, "d_eer_pooled": pad.d_eer(apcer_mode="pooled").d_eer}
    for k in pad.attacks:
        out[f"d_eer[{k}]"] = pad.d_eer(apcer_mode=k).d_eer
    for x in (0.01, 0.05, 0.1, 0.2):
        out[f"bpcer@apcer={x}"] = pad.bpcer_at_apcer(x).bpcer
        out[f"apcer@bpcer={x}"] = pad.apcer_at_bpcer(x).apcer
    out["det_points"] = pad.det_curve(max_points=2000).thresholds.size
    return pad, out


def best_of(fn, repeat):
    best = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def bench_one(n: int, repeat: int, n_boot: int) -> str:
    from sklearn.metrics import roc_curve

    from madpad.metrics import pad_bootstrap

    rng = np.random.default_rng(0)
    n_bf = n // 2
    scores = np.concatenate([rng.normal(0.0, 1.0, n_bf), rng.normal(2.0, 1.0, n - n_bf)])
    labels = np.zeros(n, dtype=bool)
    labels[n_bf:] = True
    species = np.where(labels, np.array(["sp0", "sp1", "sp2"])[rng.integers(0, 3, n)], "")
    y = labels.astype(np.int8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_rep, (pad, figs) = best_of(lambda: report_figures(scores, labels, species), repeat)
        t_roc, _ = best_of(lambda: roc_curve(y, scores), repeat)
        t_arg, _ = best_of(lambda: np.argsort(scores), repeat)
        t_sort, _ = best_of(lambda: np.sort(scores), repeat)
        t0 = time.perf_counter()
        pad_bootstrap(None, None, pad=pad, n_resamples=n_boot, seed=0)
        t_boot = (time.perf_counter() - t0) / n_boot
    print(f"   n={n}: D-EER {figs['d_eer']:.4f}, BPCER@APCER=5% {figs['bpcer@apcer=0.05']:.4f}", flush=True)
    return (f"| {n:.0e} | {t_rep:.3f} | {t_roc:.3f} | {t_arg:.3f} | {t_sort:.3f} | "
            f"{t_rep / t_arg:.2f} | {t_rep / t_roc:.2f} | {t_boot:.3f} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bootstrap-resamples", type=int, default=200)  # replicates are vectorised: time many
    args = ap.parse_args(argv)

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU(s), {platform.processor() or 'cpu'}; "
          f"python {platform.python_version()}, numpy {np.__version__}")
    header = ("| n scores | report figures (s) | sklearn roc_curve (s) | np.argsort (s) | np.sort (s) | "
              "report / argsort | report / roc_curve | bootstrap per resample (s) |")
    rows = [header, "|" + "---|" * 8]
    for n in args.sizes:
        rows.append(bench_one(n, 1 if n >= 10_000_000 else args.repeat, args.bootstrap_resamples))
        print(rows[-1], flush=True)
    print()
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

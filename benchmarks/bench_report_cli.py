"""The whole ``python -m madpad.report pad`` command on 10^6 and 10^7-row score files, beside
the shortest thing a user could write instead: ``polars.read_csv`` + scikit-learn's
``roc_curve`` on the same file.

    python benchmarks/bench_report_cli.py [--sizes 1000000 10000000] [--subjects] [--keep DIR]

For each size the script writes a synthetic scores CSV (``id,score,label,species``, half bona
fide, half attacks in three species, 6-decimal scores, as ``detect score`` writes it; with
``--subjects`` also a ``subject`` column of n/100 subjects) into a temporary folder, then
times, one after another:

* the baseline, in this process: ``pl.read_csv(path)`` and ``roc_curve(y, score)`` (its
  import and interpreter start-up are not counted -- a stricter baseline than the CLI gets);
* ``python -m madpad.report pad --scores F --out D --bootstrap 0`` as a subprocess;
* ``python -m madpad.report pad --scores F --out D`` (the defaults: 1000 bootstrap
  resamples, JSON + Markdown + HTML with the DET plot and histogram) as a subprocess.

CLI times are wall clock of the whole subprocess (start-up and imports included), with the
child's CPU time and peak resident memory (``os.wait4``). Ratios are CLI / baseline.
Targets (issue #14): ``--bootstrap 0`` at most 2x the baseline at 10^7 rows, defaults at most 5x.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SPECIES = np.array(["print", "replay", "mask"])


def write_scores_csv(path: Path, n: int, *, subjects: bool = False, seed: int = 0, chunk: int = 1_000_000) -> Path:
    """Synthetic PAD scores, written in chunks of ``chunk`` rows (peak memory stays small)."""
    import polars as pl

    rng = np.random.default_rng(seed)
    n_bf = n // 2
    with open(path, "wb") as fh:
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            idx = np.arange(start, stop)
            att = idx >= n_bf
            score = np.where(att, rng.normal(2.0, 1.0, idx.size), rng.normal(0.0, 1.0, idx.size))
            sp = np.where(att, SPECIES[rng.integers(0, 3, idx.size)], "")
            cols = {"id": [f"s{i:09d}" for i in idx.tolist()], "score": np.round(score, 6),
                    "label": np.where(att, "attack", "bona_fide"), "species": sp}
            if subjects:
                cols["subject"] = [f"p{i % max(1, n // 100):07d}" for i in idx.tolist()]
            df = pl.DataFrame(cols).with_columns(  # bona fide species: an empty field, not ""
                pl.when(pl.col("species") == "").then(None).otherwise(pl.col("species")).alias("species"))
            df.write_csv(fh, include_header=start == 0, float_precision=6, null_value="")
    return path


def baseline(path: Path) -> tuple[float, float, float]:
    """(read_csv seconds, roc_curve seconds, CPU seconds of both) -- polars reads (with
    its thread pool), scikit-learn computes the ROC."""
    import polars as pl
    from sklearn.metrics import roc_curve

    c0 = time.process_time()
    t0 = time.perf_counter()
    df = pl.read_csv(path)
    t1 = time.perf_counter()
    y = (df.get_column("label") == "attack").to_numpy()
    fpr, tpr, thr = roc_curve(y, df.get_column("score").to_numpy())
    t2 = time.perf_counter()
    assert fpr.size > 2
    return t1 - t0, t2 - t1, time.process_time() - c0


def run_cli(args: list[str]) -> dict:
    """Run ``python -m madpad.report ...``; wall time, child CPU time and peak RSS (MB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "madpad.report", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        raise RuntimeError(f"madpad.report {' '.join(args)} failed ({rc}): {err.strip()}")
    rss = ru.ru_maxrss / 1024 if sys.platform != "darwin" else ru.ru_maxrss / 2**20
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_mb": rss, "stdout": out.strip()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--subjects", action="store_true", help="add a subject column (subject bootstrap)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the CSVs and reports in this folder")
    args = ap.parse_args(argv)
    import polars as pl
    import sklearn

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU(s); python {platform.python_version()}, "
          f"numpy {np.__version__}, polars {pl.__version__}, scikit-learn {sklearn.__version__}; "
          f"load average at start {load[0]:.1f}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="madpad_bench_cli_") as tmp:
        base = args.keep or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        for n in args.sizes:
            f = base / f"scores_{n}.csv"
            t0 = time.perf_counter()
            write_scores_csv(f, n, subjects=args.subjects)
            mb = f.stat().st_size / 1e6
            print(f"n={n}: wrote {mb:.0f} MB in {time.perf_counter() - t0:.1f} s", flush=True)
            t_read, t_roc, b_cpu = baseline(f)
            b = t_read + t_roc
            print(f"   baseline: read_csv {t_read:.2f} s + roc_curve {t_roc:.2f} s = {b:.2f} s (cpu {b_cpu:.2f} s)",
                  flush=True)
            r0 = run_cli(["pad", "--scores", str(f), "--out", str(base / f"rep0_{n}"), "--bootstrap", "0"])
            print(f"   CLI --bootstrap 0: {r0['wall']:.2f} s (cpu {r0['cpu']:.2f} s, {r0['rss_mb']:.0f} MB)", flush=True)
            rd = run_cli(["pad", "--scores", str(f), "--out", str(base / f"rep_{n}")])
            print(f"   CLI defaults:      {rd['wall']:.2f} s (cpu {rd['cpu']:.2f} s, {rd['rss_mb']:.0f} MB)", flush=True)
            print(f"   {rd['stdout'].splitlines()[0]}", flush=True)
            rows.append(f"| {n:.0e} | {mb:.0f} | {t_read:.2f} | {t_roc:.2f} | {b:.2f} ({b_cpu:.1f}) | {r0['wall']:.2f} "
                        f"({r0['cpu']:.1f}) | **{r0['wall'] / b:.2f}** | {rd['wall']:.2f} ({rd['cpu']:.1f}) | "
                        f"**{rd['wall'] / b:.2f}** | {max(r0['rss_mb'], rd['rss_mb']):.0f} |")
            if args.keep is None:
                f.unlink()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"\nload average at end {load[0]:.1f}\n")
    print("| rows | CSV (MB) | baseline read_csv (s) | baseline roc_curve (s) | baseline total (s, cpu) | "
          "CLI `--bootstrap 0` (s, cpu) | ratio | CLI defaults (s, cpu) | ratio | CLI peak RSS (MB) |")
    print("|" + "---|" * 10)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

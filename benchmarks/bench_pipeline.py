"""Pipeline runner timings: cold run, cached rerun and resume, per executor.

    python benchmarks/bench_pipeline.py [--data frll|sample] [--workers 2] [--out runs/bench_pipeline]

Runs ``pipelines/example_small.yaml`` (per-image statistics + summary) on the shared FRLL set
(160 images of 1350x1350, root $MADPAD_SHARED/data/frll) or the bundled sample (48 images of
600x600) with the serial, local process-pool and local Ray executors, and prints one table:
cold run seconds, rerun seconds (every stage skipped), and the resume case (stage fails after
its items are done; the rerun takes every item from the per-item cache). It also checks that
every executor wrote byte-identical outputs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    from madpad.pipeline import load_pipeline, run_pipeline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=["frll", "sample"], default="frll")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--executors", nargs="+", default=["serial", "local", "ray"])
    ap.add_argument("--out", default=None, help="scratch folder (default: a temporary folder, removed)")
    args = ap.parse_args(argv)

    yaml = REPO / "pipelines" / "example_small.yaml"
    sets = []
    if args.data == "frll":
        shared = Path(os.environ.get("MADPAD_SHARED") or REPO.parent / "shared")
        root = shared / "data" / "frll"
        if not root.is_dir():
            print(f"FRLL not found at {root}; set MADPAD_SHARED or use --data sample", file=sys.stderr)
            return 2
        sets = [f"params.manifest={REPO / 'data_manifests' / 'frll_images.csv'}", f"params.root={root}"]
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_pipeline_"))
    flag = out / "FAIL"
    rows, outputs = [], {}
    for ex in args.executors:
        wd = out / ex
        shutil.rmtree(wd, ignore_errors=True)
        spec = load_pipeline(yaml, set_items=sets, workdir=wd)
        t = time.perf_counter()
        s1 = run_pipeline(spec, executor=ex, workers=args.workers, quiet=True, progress=False)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        s2 = run_pipeline(spec, executor=ex, workers=args.workers, quiet=True, progress=False)
        warm = time.perf_counter() - t
        assert s1.ok and s2.ok and all(r.status == "skipped" for r in s2.stages)
        outputs[ex] = (wd / "stats" / "stats.csv").read_bytes(), (wd / "summary" / "summary.json").read_bytes()
        # resume: the stats stage fails after computing its items; the rerun reuses them
        flag.touch()
        spec_f = load_pipeline(yaml, set_items=[*sets, f"params.fail_if_exists={flag}"], workdir=out / f"{ex}-resume")
        t = time.perf_counter()
        s3 = run_pipeline(spec_f, executor=ex, workers=args.workers, quiet=True, progress=False)
        failed_run = time.perf_counter() - t
        flag.unlink()
        t = time.perf_counter()
        s4 = run_pipeline(spec_f, executor=ex, workers=args.workers, quiet=True, progress=False)
        resumed = time.perf_counter() - t
        assert s3.status_of("stats") == "failed" and s4.ok
        items = s4.stages[0].items
        rows.append((ex, s1.stages[0].items["total"], cold, warm, failed_run, resumed,
                     f"{items['cached']}/{items['total']}"))
    if args.out is None:
        shutil.rmtree(out, ignore_errors=True)
    same = len({v for v in outputs.values()}) == 1
    n = rows[0][1]
    print(f"example_small on {args.data} ({n} images), workers={args.workers}, {os.cpu_count()} CPUs")
    print(f"{'executor':<8} {'cold run s':>10} {'rerun s':>8} {'failing run s':>13} {'resumed s':>9} "
          f"{'items from cache':>16}")
    for ex, _, cold, warm, failed_run, resumed, cached in rows:
        print(f"{ex:<8} {cold:>10.2f} {warm:>8.2f} {failed_run:>13.2f} {resumed:>9.2f} {cached:>16}")
    print(f"outputs byte-identical across executors: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

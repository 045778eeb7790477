"""Manifest and split throughput.

    python benchmarks/bench_data.py [--rows 100000]

Times, on a synthetic image manifest of ROWS rows (ROWS/2 subjects, 10% attacks in 3 species):
write CSV, load+validate CSV (no file checks), write JSONL, load JSONL, split_by_subject over
the subjects, assign_by_subject of the rows, and check_disjoint. With the shared FRLL set
present, also load+validate data_manifests/frll_images.csv with file existence checks.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _t(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main(argv=None) -> int:
    from madpad.data import ImageRecord, assign_by_subject, check_disjoint, load_images, split_by_subject, write_images

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args(argv)
    n = args.rows
    species = ["landmark", "dcmorph", "tshirt_print"]
    recs = []
    for i in range(n):
        s = f"{i // 2:06d}"
        if i % 10 == 9:
            recs.append(ImageRecord(id=f"i{i}", path=f"attack/{i}.png", subject=f"{s};{(i // 2 + 1) % (n // 2):06d}",
                                    label="attack", species=species[i % 3], capture="morph", source="synthetic"))
        else:
            recs.append(ImageRecord(id=f"i{i}", path=f"img/{s}/{i}.jpg", subject=s, label="bona_fide",
                                    capture="enrolment", source="synthetic", extra={"gender": "fm"[i % 2]}))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        csv_p, jl_p = Path(tmp) / "m.csv", Path(tmp) / "m.jsonl"
        rows.append(("write CSV", *_t(lambda: write_images(csv_p, recs))[:1]))
        t, m = _t(lambda: load_images(csv_p, check_files=False))
        rows.append(("load + validate CSV", t))
        rows.append(("write JSONL", _t(lambda: write_images(jl_p, m))[0]))
        rows.append(("load + validate JSONL", _t(lambda: load_images(jl_p, check_files=False))[0]))
        t, splits = _t(lambda: split_by_subject(m.subjects(), seed=0))
        rows.append((f"split_by_subject ({len(m.subjects())} subjects)", t))
        t, res = _t(lambda: assign_by_subject(m, splits))
        rows.append((f"assign_by_subject (dropped {res.n_dropped})", t))
        rows.append(("check_disjoint (rows)", _t(lambda: check_disjoint(res))[0]))
    shared = Path(os.environ.get("MADPAD_SHARED") or REPO.parent / "shared") / "data" / "frll"
    if shared.is_dir():
        t, fm = _t(lambda: load_images(REPO / "data_manifests" / "frll_images.csv", root=shared))
        rows.append((f"FRLL manifest with file checks ({len(fm)} rows)", t))
    print(f"madpad.data on {n} rows ({os.cpu_count()} CPUs)")
    print(f"{'operation':<48} {'seconds':>8} {'rows/s':>10}")
    for name, t in rows:
        k = 160 if name.startswith("FRLL") else n
        print(f"{name:<48} {t:>8.3f} {k / t if t else float('inf'):>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

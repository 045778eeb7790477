"""``python -m madpad.data check|split`` - validate a manifest, or split it by subject.

    python -m madpad.data check data_manifests/frll_images.csv --root /data/frll
    python -m madpad.data split data_manifests/frll_images.csv --root /data/frll --out splits/ \\
        --fractions 0.6 0.2 0.2 --seed 0 --stratify gender

``check`` prints the row, subject, label and species counts (exit 2 with the file, row and
field of the first problem). ``split`` writes one manifest per split (``OUT/train.csv``, ...,
same format and relative paths, so the same root applies) and ``OUT/split.json`` (seed,
fractions, subjects per split, rows dropped because their subjects straddle splits).
The manifest kind (images, pairs, morphs) is recognised from the header unless ``--kind`` is given.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from madpad.cli import run_main
from madpad.errors import UsageError

PROG = "python -m madpad.data"


def detect_kind(path) -> str:
    """``images``, ``pairs`` or ``morphs`` from a manifest's columns."""
    from madpad.data.manifest import read_table

    cols = set(read_table(path).columns)
    if {"suspect", "live"} <= cols:
        return "pairs"
    if {"subject_a", "subject_b"} <= cols:
        return "morphs"
    return "images"


def _load(path, kind, root, check_files):
    from madpad.data import load_images, load_morphs, load_pairs

    kind = kind or detect_kind(path)
    loader = {"images": load_images, "pairs": load_pairs, "morphs": load_morphs}[kind]
    return loader(path, root=root, check_files=check_files)


def _describe(m) -> str:
    labels = Counter(getattr(r, "label", "attack") for r in m)
    species = Counter(getattr(r, "species", "") or getattr(r, "method", "") for r in m)
    species.pop("", None)
    lines = [f"{m.path}: {len(m)} {m.kind} rows, {len(m.subjects())} subjects, root {m.root}",
             f"  labels: {dict(sorted(labels.items()))}"]
    if species:
        lines.append(f"  species: {dict(sorted(species.items()))}")
    if m.extra_columns:
        lines.append(f"  extra columns: {list(m.extra_columns)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("check", "split"):
        p = sub.add_parser(name)
        p.add_argument("manifest", help="CSV or JSONL manifest")
        p.add_argument("--root", help="dataset root the paths are relative to (default: the manifest's folder)")
        p.add_argument("--kind", choices=["images", "pairs", "morphs"], help="default: recognised from the header")
        p.add_argument("--no-files", action="store_true", help="do not check that the files exist")
    sp = sub.choices["split"]
    sp.add_argument("--out", required=True, help="folder for the per-split manifests")
    sp.add_argument("--fractions", type=float, nargs="+", default=[0.6, 0.2, 0.2])
    sp.add_argument("--names", nargs="+", default=["train", "dev", "test"])
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--stratify", metavar="COLUMN", help="extra column to stratify subjects by (e.g. gender)")
    args = ap.parse_args(argv)

    def body():
        m = _load(args.manifest, args.kind, args.root, not args.no_files)
        print(_describe(m))
        if args.command == "check":
            return 0
        from madpad.data import check_disjoint, split_manifest, write_images, write_morphs, write_pairs
        from madpad.io import atomic_write_json

        stratify = None
        if args.stratify:
            if args.stratify not in m.extra_columns:
                raise UsageError(f"--stratify: column {args.stratify!r} not in the manifest's extra columns "
                                 f"{list(m.extra_columns)}")
            stratify = {}
            for r in m:
                for s in r.subjects:
                    stratify.setdefault(s, r.extra.get(args.stratify, ""))
        try:
            res = split_manifest(m, fractions=args.fractions, seed=args.seed, names=args.names, stratify=stratify)
        except ValueError as exc:
            raise UsageError(f"split: {exc}") from None
        check_disjoint(res)
        out = Path(args.out)
        writer = {"images": write_images, "pairs": write_pairs, "morphs": write_morphs}[m.kind]
        suffix = Path(args.manifest).suffix or ".csv"
        for name, rows in res.parts.items():
            writer(out / f"{name}{suffix}", rows)
        atomic_write_json(out / "split.json", {
            "manifest": str(Path(args.manifest)), "seed": args.seed, "fractions": args.fractions,
            "stratify": args.stratify, "counts": res.counts(),
            "subjects": {n: sorted(s) for n, s in res.subjects.items()},
            "dropped_ids": [r.id for r in res.dropped]})
        for name, rows in res.parts.items():
            print(f"  {name}: {len(rows)} rows, {len(res.subjects[name])} subjects -> {out / (name + suffix)}")
        print(f"  dropped (subjects straddle splits): {res.n_dropped}")
        return 0

    return run_main(body, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())

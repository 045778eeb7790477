"""Write morph pair lists for FRLL that respect the subject-disjoint D-MAD split.

The split is the one ``madpad.mad.pairs.build_dmad_pairs`` makes (``split_by_subject`` over
the FRLL subjects with the same fractions and seed), so every morph listed here lands in a
split whole. Pairs: all same-gender pairs of subjects inside dev and inside test, plus
``--train-pairs`` random same-gender pairs inside train. Feed the CSV to
``python -m madpad.generate --method landmark --pairs ...``.

    python benchmarks/frll_split_morph_pairs.py --frll ../shared/data/frll --out pairs.csv
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np


def main(argv=None) -> int:
    from madpad.data import split_by_subject, write_table
    from madpad.data.frll import frll_images

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frll", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--fractions", default="0.6,0.2,0.2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-pairs", type=int, default=100)
    args = ap.parse_args(argv)
    images = [r for r in frll_images(args.frll) if r.capture == "enrolment"]
    by_subject = {r.subject: r for r in images}
    fr = tuple(float(x) for x in args.fractions.split(","))
    splits = split_by_subject(by_subject, fractions=fr, seed=args.seed, names=("train", "dev", "test"))
    rng = np.random.default_rng(args.seed)
    rows = []
    for name, subjects in splits.items():
        cands = [(a, b) for a, b in itertools.combinations(sorted(subjects), 2)
                 if by_subject[a].extra.get("gender") == by_subject[b].extra.get("gender")]
        if name == "train" and len(cands) > args.train_pairs:
            cands = [cands[i] for i in sorted(rng.permutation(len(cands))[:args.train_pairs])]
        for a, b in cands:
            ra, rb = by_subject[a], by_subject[b]
            rows.append({"id": f"{ra.id}__{rb.id}", "a": str(ra.path), "b": str(rb.path), "alpha": 0.5,
                         "subject_a": a, "subject_b": b, "split": name})
    write_table(args.out, rows, columns=["id", "a", "b", "alpha", "subject_a", "subject_b", "split"])
    print(f"{len(rows)} pairs -> {args.out}: " + ", ".join(f"{n} {sum(r['split'] == n for r in rows)}" for n in splits))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Write morph pair lists for FRLL that respect the subject-disjoint D-MAD split.

The split is the one ``madpad.mad.pairs.build_dmad_pairs`` makes (``split_by_subject`` over
the FRLL subjects with the same fractions and seed), so every morph listed here lands in a
split whole. Pairs: all same-gender pairs of subjects inside dev and inside test, plus
``--train-pairs`` random same-gender pairs inside train (or, with ``--by-similarity K``, the
K most similar same-gender partners of every train subject by the dlib FR embedding, as an
attacker picks look-alike accomplices). ``--alphas 0.4,0.5,0.6`` draws the morph weight of
every pair from the list (seeded by ``--seed`` and the pair id; default: 0.5 for all).
Feed the CSV to ``python -m madpad.generate --method landmark --pairs ...``.

    python benchmarks/frll_split_morph_pairs.py --frll ../shared/data/frll --out pairs.csv
    python benchmarks/frll_split_morph_pairs.py --frll ../shared/data/frll --out pairs.csv \
        --alphas 0.4,0.5,0.6 --by-similarity 2
"""

from __future__ import annotations

import argparse
import hashlib
import itertools

import numpy as np


def parse_alphas(text: str) -> list[float]:
    """``"0.4,0.5,0.6"`` -> [0.4, 0.5, 0.6]; each in [0, 1]."""
    from madpad.errors import UsageError

    try:
        vals = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--alphas must be comma-separated numbers in [0, 1]; got {text!r}") from None
    if not vals or any(not 0.0 <= v <= 1.0 for v in vals):
        raise UsageError(f"--alphas must be comma-separated numbers in [0, 1]; got {text!r}")
    return vals


def pair_alpha(alphas: list[float], seed: int, pair_id: str) -> float:
    """The alpha of one pair, drawn from ``alphas`` by a generator seeded by (seed, pair id)."""
    if len(alphas) == 1:
        return alphas[0]
    h = hashlib.sha256(f"{int(seed)}\x1falpha\x1f{pair_id}".encode()).digest()
    return alphas[int(np.random.default_rng(int.from_bytes(h[:8], "little")).integers(len(alphas)))]


def most_similar_partners(subjects: list[str], embeddings: np.ndarray, gender: dict, k: int) -> list[tuple]:
    """The union of every subject's ``k`` most similar same-gender partners (cosine similarity),
    as sorted (a, b) tuples in a deterministic order."""
    e = np.asarray(embeddings, dtype=np.float64)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    sim = e @ e.T
    chosen: set[tuple] = set()
    for i, s in enumerate(subjects):
        cand = [j for j in range(len(subjects)) if j != i and gender.get(subjects[j]) == gender.get(s)]
        cand.sort(key=lambda j: (-sim[i, j], subjects[j]))
        for j in cand[:k]:
            chosen.add(tuple(sorted((s, subjects[j]))))
    return sorted(chosen)


def main(argv=None) -> int:
    from madpad.data import split_by_subject, write_table
    from madpad.data.frll import frll_images

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frll", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--fractions", default="0.6,0.2,0.2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-pairs", type=int, default=100)
    ap.add_argument("--alphas", default="0.5", help="morph weights to draw from per pair (default 0.5)")
    ap.add_argument("--by-similarity", type=int, default=0, metavar="K",
                    help="train pairs: the K most similar same-gender partners of every train subject "
                         "(dlib embedding) instead of --train-pairs random pairs")
    ap.add_argument("--fr-system", default="dlib", help="FR system for --by-similarity (default dlib)")
    args = ap.parse_args(argv)
    alphas = parse_alphas(args.alphas)
    images = [r for r in frll_images(args.frll) if r.capture == "enrolment"]
    by_subject = {r.subject: r for r in images}
    gender = {s: r.extra.get("gender") for s, r in by_subject.items()}
    fr = tuple(float(x) for x in args.fractions.split(","))
    splits = split_by_subject(by_subject, fractions=fr, seed=args.seed, names=("train", "dev", "test"))
    rng = np.random.default_rng(args.seed)
    rows = []
    for name, subjects in splits.items():
        cands = [(a, b) for a, b in itertools.combinations(sorted(subjects), 2) if gender[a] == gender[b]]
        if name == "train" and args.by_similarity > 0:
            from madpad.face import embed_batch, get_embedder
            from madpad.face.comparisons import parse_system

            subs = sorted(subjects)
            spec = parse_system(args.fr_system)
            emb = embed_batch([str(by_subject[s].path) for s in subs], get_embedder(spec.name, **spec.params),
                              progress=False).embeddings
            cands = most_similar_partners(subs, emb, gender, args.by_similarity)
        elif name == "train" and len(cands) > args.train_pairs:
            cands = [cands[i] for i in sorted(rng.permutation(len(cands))[:args.train_pairs])]
        for a, b in cands:
            ra, rb = by_subject[a], by_subject[b]
            pid = f"{ra.id}__{rb.id}"
            rows.append({"id": pid, "a": str(ra.path), "b": str(rb.path), "alpha": pair_alpha(alphas, args.seed, pid),
                         "subject_a": a, "subject_b": b, "split": name})
    write_table(args.out, rows, columns=["id", "a", "b", "alpha", "subject_a", "subject_b", "split"])
    print(f"{len(rows)} pairs -> {args.out}: " + ", ".join(f"{n} {sum(r['split'] == n for r in rows)}" for n in splits))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

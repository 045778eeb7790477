"""More dev subjects for the D-MAD model choice: the four morph families on FRLL-Canada, as dev pairs.

The FRLL dev split has 16 subjects (one bona fide pair = 0.63 points of BPCER), too few to tell
the best D-MAD detectors apart (``benchmarks/results/mad_lomo.md``). The "Young Adult White
Faces" set (``frll_canada``, 40 subjects, 20 female and 20 male, one head-and-shoulders portrait
each, 1350x1800, with 189-point ``.tem`` templates; CC BY 4.0) gives more subjects of another
framing. Every one of them is a **dev** subject: nothing here is trained on or tested on.

* morph pair lists: ``--pairs-per-family`` random same-gender pairs (seeded) for ``landmark``,
  ``landmark_spliced`` (alpha 0.5) and ``tem189`` (alpha drawn from 0.4/0.5/0.6 per pair), and
  the 2 most similar same-gender partners of every subject (dlib) for ``spliced_poisson``
  (alpha 0.4/0.5/0.6), the settings of ``benchmarks/frll_morph_families.sh``;
* the morphs, made by ``python -m madpad.generate`` with the same method options as FRLL's families
  (``tem189``'s portrait alignment at this set's own eye positions, so the frame is not shrunk);
* the pairs (:func:`madpad.mad.pairs.build_dmad_pairs`, every subject in the split ``dev``): bona
  fide = (the portrait as the document image, a simulated live capture of the same portrait;
  FRLL-Canada has one photo per subject, so these bona fide pairs have no change of expression),
  attack = (morph of X and Y, live capture of X) and (same morph, live capture of Y). Live
  captures with the ``gate`` profile and every suspect through the ``attacker`` chains, as the
  FRLL pairs of ``madpad/configs/detect/frll_dmad.yaml``.

    python benchmarks/canada_dev_pairs.py --canada $MADPAD_SHARED/data/frll_canada --out runs/frll_dmad/canada

Writes ``OUT/morphs/<family>/`` (morphs + manifest.csv) and ``OUT/pairs/pairs_dev.csv`` (+ the
processed suspects and live captures; derived from FRLL-Canada, CC BY 4.0: morphed, resized,
post-processed). ``benchmarks/mad_lomo.py --extra-dev OUT/pairs/pairs_dev.csv`` adds them to the
dev pairs. Resumable: morphs and images already made are kept.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frll_split_morph_pairs import most_similar_partners, pair_alpha

FAMILIES = ("landmark", "landmark_spliced", "spliced_poisson", "tem189")


def pair_lists(images, *, per_family: int, seed: int, similar: int = 2, embeddings=None) -> dict:
    """Morph pair rows per pair list: ``alpha05`` (random same-gender pairs, alpha 0.5), ``alphas``
    (the same pairs, alpha 0.4/0.5/0.6 per pair) and ``similar_alphas`` (the ``similar`` most
    similar same-gender partners of every subject by ``embeddings``, alpha 0.4/0.5/0.6)."""
    by_subject = {r.subject: r for r in images}
    gender = {s: r.extra.get("gender") for s, r in by_subject.items()}
    subjects = sorted(by_subject)
    cands = [(a, b) for a, b in itertools.combinations(subjects, 2) if gender[a] == gender[b]]
    rng = np.random.default_rng(seed)
    chosen = [cands[i] for i in sorted(rng.permutation(len(cands))[:per_family])]

    def rows(pairs, alphas):
        out = []
        for a, b in pairs:
            ra, rb = by_subject[a], by_subject[b]
            pid = f"{ra.id}__{rb.id}"
            out.append({"id": pid, "a": str(ra.path), "b": str(rb.path), "alpha": pair_alpha(alphas, seed, pid),
                        "subject_a": a, "subject_b": b, "split": "dev"})
        return out

    lists = {"alpha05": rows(chosen, [0.5]), "alphas": rows(chosen, [0.4, 0.5, 0.6])}
    if embeddings is not None:
        lists["similar_alphas"] = rows(most_similar_partners(subjects, embeddings, gender, similar), [0.4, 0.5, 0.6])
    return lists


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--canada", required=True, help="the frll_canada folder (NNNf.jpg / NNNm.jpg + .tem)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--pairs-per-family", type=int, default=50,
                    help="random same-gender morph pairs of the landmark, landmark_spliced and tem189 families")
    ap.add_argument("--live-variants", type=int, default=4,
                    help="live captures (bona fide pairs) per subject (default 4: 160 bona fide pairs, as FRLL dev)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from madpad.cli import run_main

    return run_main(lambda: _main(args), prog="canada_dev_pairs")


def _main(args) -> int:
    from madpad.data import write_table
    from madpad.data.frll import frll_canada_images
    from madpad.face import embed_batch, get_embedder
    from madpad.mad.pairs import BuildConfig, build_dmad_pairs, load_morph_manifests

    out = Path(args.out)
    m = out / "morphs"
    m.mkdir(parents=True, exist_ok=True)
    images = frll_canada_images(args.canada)
    subjects = sorted({r.subject for r in images})
    by_subject = {r.subject: r for r in images}
    # cached in OUT/embeddings (content hash + embedder id), so a rerun does not embed the 40 photos again
    emb = embed_batch([str(by_subject[s].path) for s in subjects], get_embedder("dlib"), cache=out / "embeddings",
                      progress=False).embeddings
    lists = pair_lists(images, per_family=args.pairs_per_family, seed=args.seed, embeddings=emb)
    cols = ["id", "a", "b", "alpha", "subject_a", "subject_b", "split"]
    for name, rows in lists.items():
        write_table(m / f"pairs_{name}.csv", rows, columns=cols)
    gen = {  # family: (pair list, method options), as benchmarks/frll_morph_families.sh
        "landmark": ("alpha05", ["--method", "landmark"]),
        "landmark_spliced": ("alpha05", ["--method", "landmark_spliced"]),
        "spliced_poisson": ("similar_alphas", ["--method", "landmark_spliced", "--blend", "poisson",
                                               "--colour", "none"]),
        # FRLL-Canada's portraits are already aligned: eye line at 0.4587 H, pupils 0.2637 W apart
        "tem189": ("alphas", ["--method", "tem189", "--tem-dir", str(args.canada), "--tem-images", str(args.canada),
                              "--eye-y", "0.4587", "--eye-dist", "0.2637"]),
    }
    for fam, (lst, opts) in gen.items():
        subprocess.run([sys.executable, "-m", "madpad.generate", *opts, "--pairs", str(m / f"pairs_{lst}.csv"),
                        "--seed", str(args.seed), "--format", "jpg", "--out", str(m / fam), "--no-progress"],
                       check=True)
    morphs = load_morph_manifests([f"{m / fam / 'manifest.csv'}={fam}" for fam in FAMILIES])
    cfg = BuildConfig(fractions=(1.0,), split_names=("dev",), seed=args.seed, enrolment_capture="portrait",
                      live_capture="portrait", live_variants=args.live_variants, suspect_chains="attacker",
                      live_profile="gate")
    built = build_dmad_pairs(images, morphs, out / "pairs", config=cfg)
    print("canada dev pairs:", built.counts, "dropped morphs:", built.dropped_morphs, "failures:", len(built.failures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Regenerate the bundled SYNTHETIC example score files (seeded; no real detector or data).

    python -m madpad.report.examples.make_example [--out DIR]

* ``pad_scores_example.csv`` -- PAD/MAD scores (id,score,label,species,subject): 400 bona
  fide and 400 attack presentations of two species drawn from normal distributions;
* ``comparisons_example.csv`` -- FR comparison scores (system,kind,reference,probe,
  reference_subjects,probe_subject,score) for two made-up FR systems: genuine and impostor
  comparisons of 60 subjects and 40 two-subject morphs, each compared with 3 probes of
  each contributor.

The numbers are synthetic: they exercise the report machinery and say nothing about any
real detector or FR system.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make_pad_scores(path: Path, *, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows = []
    n_subjects = 100
    for i in range(400):  # bona fide: 4 captures of each of 100 subjects
        subj = f"s{i % n_subjects:03d}"
        rows.append((f"synthetic_bf_{i:04d}", rng.normal(0.25, 0.12), "bona_fide", "", subj))
    for i in range(200):  # an easier and a harder attack species
        rows.append((f"synthetic_lm_{i:04d}", rng.normal(0.75, 0.12), "attack", "landmark_morph",
                     f"s{(2 * i) % n_subjects:03d}"))
    for i in range(200):
        rows.append((f"synthetic_df_{i:04d}", rng.normal(0.55, 0.15), "attack", "diffusion_morph",
                     f"s{(2 * i + 1) % n_subjects:03d}"))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "score", "label", "species", "subject"])
        for rid, s, lab, sp, subj in rows:
            w.writerow([rid, f"{s:.6f}", lab, sp, subj])
    return path


def make_comparisons(path: Path, *, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed + 1)
    n_sub, n_img = 60, 3
    systems = {"synthetic_fr_a": (0.70, 0.10, 0.05, 0.10, 0.52), "synthetic_fr_b": (0.65, 0.12, 0.10, 0.12, 0.45)}
    morphs = [(f"morph_{k:03d}", f"s{2 * k:03d}", f"s{2 * k + 1:03d}") for k in range(n_sub // 2 - 10)]
    morphs += [(f"morph_{k:03d}", f"s{k - 20:03d}", f"s{k + 9:03d}") for k in range(n_sub // 2 - 10, 40)]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["system", "kind", "reference", "probe", "reference_subjects", "probe_subject", "score"])
        for name, (g_mu, g_sd, i_mu, i_sd, m_mu) in systems.items():
            for s in range(n_sub):
                ref = f"s{s:03d}_0"
                for j in range(1, n_img):
                    w.writerow([name, "genuine", ref, f"s{s:03d}_{j}", f"s{s:03d}", f"s{s:03d}",
                                f"{rng.normal(g_mu, g_sd):.6f}"])
                for o in range(n_sub):
                    if o != s:
                        w.writerow([name, "impostor", ref, f"s{o:03d}_1", f"s{s:03d}", f"s{o:03d}",
                                    f"{rng.normal(i_mu, i_sd):.6f}"])
            for mid, a, b in morphs:
                strength = rng.normal(m_mu, 0.08)
                for subj in (a, b):
                    for j in range(n_img):
                        w.writerow([name, "morph", mid, f"{subj}_{j}", f"{a};{b}", subj,
                                    f"{strength + rng.normal(0, 0.06):.6f}"])
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE), help="output folder (default: this package folder)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(make_pad_scores(out / "pad_scores_example.csv", seed=args.seed))
    print(make_comparisons(out / "comparisons_example.csv", seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

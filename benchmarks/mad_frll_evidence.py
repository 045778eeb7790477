"""D-MAD evidence on FRLL: baselines and cross-method protocol on subject-disjoint splits.

Builds D-MAD pairs from the FRLL folder and morph manifests (``madpad.mad.pairs``), then for
every detector and protocol (train morph method -> test morph method) fits on the train
split (C chosen on dev by D-EER), scores the test split, and prints a markdown table of
D-EER and BPCER at APCER 1 / 5 / 10 % (madpad.metrics definitions: APCER max over species,
conservative thresholds, attack when score >= t), with 95 % subject-bootstrap intervals
(whole live-capture subjects resampled, ``madpad.metrics.pad_bootstrap``) and a paired subject
bootstrap of the D-EER difference to the untrained dlib distance on the same test pairs
(``madpad.mad.evaluation.paired_subject_bootstrap``). Score CSVs (with a ``subject`` column,
for ``python -m madpad.report pad``) go to ``OUT/scores/``.

    python benchmarks/mad_frll_evidence.py --frll ../shared/data/frll \
        --morphs MORPHS/landmark/manifest.csv MORPHS/landmark_spliced/manifest.csv --out runs/mad_evidence \
        --live-variants 10

``--with-texture`` adds the texture and landmark-geometry detectors (slow: a second face
analysis of every image for the texture crop).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

# the untrained distance first: every other detector is compared with it on the same pairs
DETECTORS = [
    ("dlib distance, untrained (1 - cos)", "embedding_distance", {}),
    ("dlib diff + RBF SVM", "embedding_svm", {"C": "auto"}),
    ("dlib |diff| + (1 - cos) + RBF SVM (swap-invariant)", "embedding_svm",
     {"C": "auto", "features": ["absdiff", "cos"]}),
    ("dlib diff, |diff|, 1 - cos + RBF SVM", "embedding_svm", {"C": "auto", "features": ["diff", "absdiff", "cos"]}),
    ("dlib diff + logistic regression", "embedding_logreg", {"C": "auto"}),
]
SLOW = [
    ("fr_texture: dlib pair + texture + LR", "fr_texture", {"C": "auto"}),
    ("texture S-MAD (suspect only) + LR", "embedding_logreg", {"C": "auto", "features": ["texture"]}),
    ("dlib cos + landmark shape + LR", "embedding_logreg", {"C": "auto", "features": ["cos", "shape_absdiff"]}),
]
FAST = {"embedder_params": {"detector": {"name": "dlib_hog", "upsample": 0, "max_side": 400}}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frll", required=True)
    ap.add_argument("--morphs", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", default=None, help="feature cache folder (default OUT/cache)")
    ap.add_argument("--live-variants", type=int, default=10,
                    help="live captures (bona fide pairs) per subject (default: 10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bootstrap", type=int, default=1000, help="subject-bootstrap resamples (default: 1000)")
    ap.add_argument("--with-texture", action="store_true", help="also run the texture / geometry detectors (slow)")
    args = ap.parse_args(argv)

    import numpy as np

    from madpad.data import load_morphs
    from madpad.data.frll import frll_images
    from madpad.mad import get_detector
    from madpad.mad.cache import FeatureCache
    from madpad.mad.evaluation import paired_subject_bootstrap
    from madpad.mad.pairs import (
        BuildConfig,
        build_dmad_pairs,
        filter_pairs,
        read_pairs_csv,
        write_scores_csv,
    )
    from madpad.metrics import pad_bootstrap
    from mad_fr_systems import dev_and_test_figures

    out = Path(args.out)
    cache = FeatureCache(args.cache or out / "cache")
    morphs = []
    for m in args.morphs:
        morphs += list(load_morphs(m))
    built = build_dmad_pairs(frll_images(args.frll), morphs, out / "pairs",
                             config=BuildConfig(live_variants=args.live_variants, seed=args.seed))
    print("pairs:", json.dumps(built.counts), "dropped morphs:", built.dropped_morphs, "failures:", len(built.failures))
    splits = {k: read_pairs_csv(f, require_labels=True) for k, f in built.files.items()}
    methods = sorted({p.species for p in splits["train"] if p.label == "attack"})
    protocols = [(a, b) for a in methods for b in methods] + [("all", "all")]
    results = []
    baseline: dict[str, np.ndarray] = {}  # test method -> untrained distance scores

    def sel(pairs, sp):
        return pairs if sp == "all" else filter_pairs(pairs, species=[sp])

    for label, name, params in DETECTORS + (SLOW if args.with_texture else []):
        for tr_sp, te_sp in protocols:
            if name == "embedding_distance" and tr_sp != te_sp:
                continue  # untrained: the training method does not matter
            det = get_detector(name, **{**FAST, **params})
            t0 = time.time()
            if name != "embedding_distance":
                det.fit(sel(splits["train"], tr_sp), dev=sel(splits["dev"], tr_sp), cache=cache)
            test = sel(splits["test"], te_sp)
            fig = dev_and_test_figures(det, sel(splits["dev"], tr_sp if tr_sp != "-" else te_sp), test, cache=cache)
            dev_eer, r, ok, tp, y, subj, m = fig.dev_d_eer, fig.result, fig.ok, fig.pairs, fig.y, fig.subjects, fig.metrics
            m.update(detector=label, name=name, train=("-" if name == "embedding_distance" else tr_sp), test=te_sp,
                     n_failed=int((~ok).sum()), seconds=round(time.time() - t0, 1),
                     C=getattr(det, "C_", None), C_selection=getattr(det, "selection_", None),
                     n_subjects=len(set(subj)), dev_d_eer=dev_eer)
            ci = pad_bootstrap(r.scores[ok], y, species=[p.species if p.y else "" for p in tp], subjects=subj,
                               n_resamples=args.bootstrap, seed=args.seed, targets=(0.01, 0.05, 0.1))
            m["ci"] = {k: [v.low, v.high] for k, v in ci.items() if not k.startswith("apcer@")}
            if name == "embedding_distance":
                if ok.all():
                    baseline[te_sp] = r.scores
            elif te_sp in baseline and ok.all():
                cmp = paired_subject_bootstrap(baseline[te_sp], r.scores, y, subj, n_resamples=args.bootstrap,
                                               seed=args.seed)
                m["vs_distance"] = {k: cmp[k] for k in ("diff", "ci_diff", "p_b_better", "p_b_worse")}
            results.append(m)
            tag = {"texture": "_tex", "shape_absdiff": "_shape", "cos": "_inv"}.get((params.get("features") or [""])[-1], "")
            tag = "_all" if params.get("features") == ["diff", "absdiff", "cos"] else tag
            safe = f"{name}{tag}__{m['train']}__{te_sp}"
            write_scores_csv(out / "scores" / f"{safe}.csv", test, r.scores, status=r.status, errors=r.error)
            print(f"{label:40s} train={m['train']:17s} test={te_sp:17s} D-EER={100 * m['d_eer']:6.2f}% "
                  f"BPCER@1/5/10={100 * m['bpcer_at_apcer_1']:6.2f}/{100 * m['bpcer_at_apcer_5']:6.2f}/"
                  f"{100 * m['bpcer_at_apcer_10']:6.2f}%  n={m['n_bona_fide']}+{m['n_attack']} C={m['C']}",
                  flush=True)
    (out / "results.json").write_text(json.dumps({"counts": built.counts, "dropped_morphs": built.dropped_morphs,
                                                  "results": results}, indent=2))
    lines = [("| detector | train morphs | test morphs | C (dev) | dev D-EER | D-EER [95% CI] | BPCER@APCER=1% [CI] "
              "| =5% | =10% | D-EER minus distance [95% CI], P(better) | test pairs (bf+attack) |"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    f = lambda v: "n/a" if v != v else f"{100 * v:.2f}%"
    for m in results:
        c = m["ci"]
        vs = m.get("vs_distance")
        vs_s = "-" if vs is None else (f"{100 * vs['diff']:+.2f} [{100 * vs['ci_diff'][0]:+.2f}, "
                                       f"{100 * vs['ci_diff'][1]:+.2f}], {vs['p_b_better']:.2f}")
        lines.append(f"| {m['detector']} | {m['train']} | {m['test']} | {m['C'] if m['C'] is not None else '-'} | {f(m['dev_d_eer'])} | "
                     f"{f(m['d_eer'])} [{f(c['d_eer'][0])}, {f(c['d_eer'][1])}] | "
                     f"{f(m['bpcer_at_apcer_1'])} [{f(c['bpcer@apcer=0.01'][0])}, {f(c['bpcer@apcer=0.01'][1])}] | "
                     f"{f(m['bpcer_at_apcer_5'])} | {f(m['bpcer_at_apcer_10'])} | {vs_s} | "
                     f"{m['n_bona_fide']}+{m['n_attack']} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

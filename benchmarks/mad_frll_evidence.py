"""D-MAD evidence on FRLL: baselines and cross-method protocol on subject-disjoint splits.

Builds D-MAD pairs from the FRLL folder and morph manifests (``madpad.mad.pairs``), then for
every detector and protocol (train morph method -> test morph method) fits on the train
split (C chosen on dev by D-EER), scores the test split, and prints a markdown table of
D-EER and BPCER at APCER 1 / 5 / 10 % (madpad.metrics definitions: APCER max over species,
conservative thresholds, attack when score >= t). Score CSVs go to ``OUT/scores/``.

    python benchmarks/mad_frll_evidence.py --frll ../shared/data/frll \
        --morphs MORPHS/landmark/manifest.csv MORPHS/landmark_spliced/manifest.csv --out runs/mad_evidence
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

# fr_texture first: its per-image features (embedding + texture) are cached and the
# embedding-only detectors reuse their embedding part
DETECTORS = [
    ("fr_texture: dlib pair + texture + LR", "fr_texture", {"C": "auto"}),
    ("dlib distance, untrained (1 - cos)", "embedding_distance", {}),
    ("dlib diff + logistic regression", "embedding_logreg", {"C": "auto"}),
    ("dlib diff + RBF SVM", "embedding_svm", {"C": "auto"}),
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
    ap.add_argument("--live-variants", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import numpy as np

    from madpad.data import load_morphs
    from madpad.data.frll import frll_images
    from madpad.mad import get_detector
    from madpad.mad.cache import FeatureCache
    from madpad.mad.evaluation import summarize
    from madpad.mad.pairs import (
        BuildConfig,
        build_dmad_pairs,
        filter_pairs,
        read_pairs_csv,
        write_scores_csv,
    )

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

    def sel(pairs, sp):
        return pairs if sp == "all" else filter_pairs(pairs, species=[sp])

    for label, name, params in DETECTORS:
        for tr_sp, te_sp in protocols:
            if name == "embedding_distance" and tr_sp != te_sp:
                continue  # untrained: the training method does not matter
            det = get_detector(name, **{**FAST, **params})
            t0 = time.time()
            if name != "embedding_distance":
                det.fit(sel(splits["train"], tr_sp), dev=sel(splits["dev"], tr_sp), cache=cache)
            test = sel(splits["test"], te_sp)
            r = det.score_pairs(test, cache=cache)
            ok = np.array([s == "ok" for s in r.status]) & np.isfinite(r.scores)
            tp = [p for p, k in zip(test, ok) if k]
            m = summarize(r.scores[ok], np.array([p.y for p in tp]), [p.species for p in tp])
            m.update(detector=label, name=name, train=("-" if name == "embedding_distance" else tr_sp), test=te_sp,
                     n_failed=int((~ok).sum()), seconds=round(time.time() - t0, 1),
                     C=getattr(det, "C_", None))
            results.append(m)
            tag = {"texture": "_tex", "shape_absdiff": "_shape"}.get((params.get("features") or [""])[-1], "")
            safe = f"{name}{tag}__{m['train']}__{te_sp}"
            write_scores_csv(out / "scores" / f"{safe}.csv", test, r.scores, status=r.status, errors=r.error)
            print(f"{label:40s} train={m['train']:17s} test={te_sp:17s} D-EER={100 * m['d_eer']:6.2f}% "
                  f"BPCER@1/5/10={100 * m['bpcer_at_apcer_1']:6.2f}/{100 * m['bpcer_at_apcer_5']:6.2f}/"
                  f"{100 * m['bpcer_at_apcer_10']:6.2f}%  n={m['n_bona_fide']}+{m['n_attack']} C={m['C']}",
                  flush=True)
    (out / "results.json").write_text(json.dumps({"counts": built.counts, "dropped_morphs": built.dropped_morphs,
                                                  "results": results}, indent=2))
    lines = ["| detector | train morphs | test morphs | D-EER | BPCER@APCER=1% | =5% | =10% | test pairs (bf+attack) |",
             "|---|---|---|---|---|---|---|---|"]
    for m in results:
        f = lambda v: "n/a" if v != v else f"{100 * v:.2f}%"
        lines.append(f"| {m['detector']} | {m['train']} | {m['test']} | {f(m['d_eer'])} | {f(m['bpcer_at_apcer_1'])} | "
                     f"{f(m['bpcer_at_apcer_5'])} | {f(m['bpcer_at_apcer_10'])} | {m['n_bona_fide']}+{m['n_attack']} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""D-MAD with several face-recognition systems: per-system and fused FR-embedding detectors on a
leave-one-morph-method-out protocol (FRLL, subject-disjoint splits).

Pairs come from ``madpad.mad.pairs.build_dmad_pairs`` (bona fide: enrolment photo of X vs a
simulated live capture of X; attack: morph of X and Y vs a live capture of X or of Y;
subject-disjoint train/dev/test). For every detector of :func:`detector_table` and every
protocol of :func:`protocols` (train on one morph method, test on another one it never saw; an
untrained detector is scored once per test method) the detector is fitted on the train split
(``C="auto"``: C chosen on the dev split of the training method by D-EER), then the test split is
scored. Reported per row: dev D-EER, test D-EER and BPCER at APCER = 1 % and 5 % (madpad.metrics:
APCER max over species, conservative thresholds, attack when score >= t) with 95 % intervals from
a bootstrap over whole live-capture subjects, and the paired subject-bootstrap difference of the
test D-EER to a reference detector on the same test pairs.

    python benchmarks/mad_fr_systems.py --frll $MADPAD_SHARED/data/frll \\
        --morphs MORPHS/landmark/manifest.csv MORPHS/landmark_spliced/manifest.csv --out runs/mad_fr_systems

Per-image FR features are cached per system (``OUT/cache``), so adding detectors or protocols
reuses them. Extending the table (e.g. with foundation-model detectors): import this module,
append entries to the list :func:`detector_table` returns and call :func:`run`; or pass
``--detector LABEL=NAME:JSON_PARAMS``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: FR systems run offline (faceapi_resnet128 is a port of dlib's ResNet: not an independent system)
SYSTEMS = ("dlib", "mobileface", "hse_faceres", "faceapi_resnet128")
#: the three independent systems a fused detector combines
INDEPENDENT = ("dlib", "mobileface", "hse_faceres")
#: face finding for every system (as the earlier D-MAD evidence: suspects are 600 px)
FAST_DETECTOR = {"name": "dlib_hog", "upsample": 0, "max_side": 400}


@dataclass
class DetectorEntry:
    """One row family of the table: ``label`` (shown), registry ``name`` and ``params``;
    ``trained`` False = scored once per test method; ``group`` orders the table."""

    label: str
    name: str
    params: dict = field(default_factory=dict)
    trained: bool = True
    group: str = ""


def _sys(name: str) -> dict:
    return {"name": name, "detector": dict(FAST_DETECTOR)}


def detector_table(systems: Sequence[str] = SYSTEMS) -> list[DetectorEntry]:
    """Per system: the untrained distance (1 - cos) and the classic D-MAD (embedding difference ->
    RBF SVM); then fused detectors over the independent systems found in ``systems``."""
    out = []
    for s in systems:
        ep = {"detector": dict(FAST_DETECTOR)}
        out.append(DetectorEntry(f"{s} distance (1 - cos), untrained", "embedding_distance",
                                 {"embedder": s, "embedder_params": ep}, trained=False, group=s))
        out.append(DetectorEntry(f"{s} diff + RBF SVM", "embedding_svm",
                                 {"embedder": s, "embedder_params": ep, "C": "auto"}, group=s))
    ind = [s for s in INDEPENDENT if s in systems]
    if len(ind) >= 2:
        tag = "+".join(ind)
        out.append(DetectorEntry(f"fused {tag}: 1 - cos per system -> LR (fused_embedding)", "fused_embedding",
                                 {"embedders": [_sys(s) for s in ind], "features": ["cos"], "C": "auto"},
                                 group="fused"))
        out.append(DetectorEntry(f"fused {tag}: diff per system -> RBF SVM", "fused_embedding",
                                 {"embedders": [_sys(s) for s in ind], "features": ["diff"], "classifier": "rbf_svm",
                                  "C": "auto"}, group="fused"))
        out.append(DetectorEntry(f"fused {tag}: diff + 1 - cos per system -> RBF SVM", "fused_embedding",
                                 {"embedders": [_sys(s) for s in ind], "features": ["diff", "cos"],
                                  "classifier": "rbf_svm", "C": "auto"}, group="fused"))
    if len(systems) > len(ind) and len(ind) >= 2:
        out.append(DetectorEntry(f"fused all {len(systems)}: 1 - cos per system -> LR", "fused_embedding",
                                 {"embedders": [_sys(s) for s in systems], "features": ["cos"], "C": "auto"},
                                 group="fused"))
    return out


def protocols(methods: Sequence[str]) -> list[tuple[str, str]]:
    """Leave-one-morph-method-out: (train method, test method) for every ordered pair of
    different methods."""
    return [(a, b) for a in methods for b in methods if a != b]


def _select(pairs, species):
    from madpad.mad.pairs import filter_pairs

    return filter_pairs(pairs, species=[species])


@dataclass
class ScoredSplit:
    """Figures of a fitted detector on dev and test pairs (see :func:`dev_and_test_figures`)."""

    dev_d_eer: float
    result: object          # ScoreResult of the test pairs
    ok: np.ndarray          # test pairs with a usable face and a finite score
    pairs: list             # the test pairs kept (ok)
    y: np.ndarray
    subjects: list          # live-capture subject of each kept pair
    metrics: dict           # madpad.mad.evaluation.summarize of the kept pairs


def dev_and_test_figures(det, dev, test, *, cache) -> ScoredSplit:
    """Score ``dev`` (its D-EER) and ``test`` (summary figures of the pairs with a usable face)."""
    from madpad.mad.evaluation import summarize

    rd = det.score_pairs(dev, cache=cache)
    okd = np.isfinite(rd.scores)
    dev_eer = summarize(rd.scores[okd], np.array([p.y for p, k in zip(dev, okd) if k]))["d_eer"]
    r = det.score_pairs(test, cache=cache)
    ok = np.array([st == "ok" for st in r.status]) & np.isfinite(r.scores)
    tp = [p for p, k in zip(test, ok) if k]
    y = np.array([p.y for p in tp])
    subj = [p.extra.get("live_subject") or p.subjects[0] for p in tp]
    m = summarize(r.scores[ok], y, [p.species for p in tp])
    return ScoredSplit(dev_eer, r, ok, tp, y, subj, m)


def evaluate(entry: DetectorEntry, splits: dict, train: str | None, test: str, *, cache, n_boot: int, seed: int):
    """Fit (unless untrained) and score; returns (metrics dict, test pairs, test scores, ok mask)."""
    from madpad.mad import get_detector
    from madpad.metrics import pad_bootstrap

    det = get_detector(entry.name, **entry.params)
    t0 = time.time()
    if entry.trained:
        det.fit(_select(splits["train"], train), dev=_select(splits["dev"], train), cache=cache)
    pairs = _select(splits["test"], test)
    fig = dev_and_test_figures(det, _select(splits["dev"], train if entry.trained else test), pairs, cache=cache)
    dev_eer, r, ok, tp, y, subj, m = fig.dev_d_eer, fig.result, fig.ok, fig.pairs, fig.y, fig.subjects, fig.metrics
    ci = pad_bootstrap(r.scores[ok], y, species=[p.species if p.y else "" for p in tp], subjects=subj,
                       n_resamples=n_boot, seed=seed, targets=(0.01, 0.05))
    m.update(detector=entry.label, name=entry.name, group=entry.group, train=train if entry.trained else "-",
             test=test, dev_d_eer=dev_eer, n_failed=int((~ok).sum()), seconds=round(time.time() - t0, 1),
             C=getattr(det, "C_", None), n_subjects=len(set(subj)),
             ci={k: [v.low, v.high] for k, v in ci.items() if not k.startswith("apcer@")})
    return m, pairs, r, ok


def run(entries: Sequence[DetectorEntry], splits: dict, methods: Sequence[str], *, cache, out: Path,
        reference: str | None = None, n_boot: int = 1000, seed: int = 0, log=print) -> list[dict]:
    """Every entry on every protocol; the paired subject-bootstrap difference to the entry labelled
    ``reference`` (same test pairs) is added as ``vs_reference``. Score CSVs go to ``out/scores``."""
    from madpad.mad.evaluation import paired_subject_bootstrap
    from madpad.mad.pairs import write_scores_csv

    results, ref_scores = [], {}
    order = sorted(entries, key=lambda e: e.label != reference)  # the reference first
    for e in order:
        runs = [(None, te) for te in methods] if not e.trained else protocols(methods)
        for tr, te in runs:
            m, pairs, r, ok = evaluate(e, splits, tr, te, cache=cache, n_boot=n_boot, seed=seed)
            key = (tr if e.trained else "-", te)
            if ok.all():
                y = np.array([p.y for p in pairs])
                subj = [p.extra.get("live_subject") or p.subjects[0] for p in pairs]
                if e.label == reference:
                    ref_scores[te] = r.scores
                elif te in ref_scores:
                    cmp = paired_subject_bootstrap(ref_scores[te], r.scores, y, subj, n_resamples=n_boot, seed=seed)
                    m["vs_reference"] = {k: cmp[k] for k in ("diff", "ci_diff", "p_b_better", "p_b_worse")}
            safe = "".join(c if c.isalnum() else "_" for c in e.label).strip("_")[:60]
            write_scores_csv(out / "scores" / f"{safe}__{key[0]}__{te}.csv", pairs, r.scores, status=r.status,
                             errors=r.error)
            results.append(m)
            log(f"{e.label:62s} train={m['train']:17s} test={te:17s} D-EER={100 * m['d_eer']:6.2f}% "
                f"BPCER@1/5={100 * m['bpcer_at_apcer_1']:6.2f}/{100 * m['bpcer_at_apcer_5']:6.2f}% "
                f"n={m['n_bona_fide']}+{m['n_attack']} C={m['C']} ({m['seconds']} s)")
    return results


def markdown_table(results: Sequence[dict], reference: str | None = None) -> str:
    """The leave-one-morph-method-out table (rates in %)."""
    def f(v):
        return "n/a" if v is None or math.isnan(v) else f"{100 * v:.2f}"

    head = ("| detector | train | test (unseen) | C | dev D-EER | test D-EER [95% CI] | BPCER@APCER=1% [CI] "
            "| BPCER@APCER=5% [CI] | test D-EER minus reference [95% CI], P(better) | pairs bf+attack |")
    lines = [head, "|" + "---|" * 10]
    for m in results:
        c = m["ci"]
        vs = m.get("vs_reference")
        vs_s = ("(reference)" if m["detector"] == reference else "-") if vs is None else (
            f"{100 * vs['diff']:+.2f} [{100 * vs['ci_diff'][0]:+.2f}, {100 * vs['ci_diff'][1]:+.2f}], "
            f"{vs['p_b_better']:.2f}")
        lines.append(
            f"| {m['detector']} | {m['train']} | {m['test']} | {m['C'] if m['C'] is not None else '-'} | "
            f"{f(m['dev_d_eer'])} | {f(m['d_eer'])} [{f(c['d_eer'][0])}, {f(c['d_eer'][1])}] | "
            f"{f(m['bpcer_at_apcer_1'])} [{f(c['bpcer@apcer=0.01'][0])}, {f(c['bpcer@apcer=0.01'][1])}] | "
            f"{f(m['bpcer_at_apcer_5'])} [{f(c['bpcer@apcer=0.05'][0])}, {f(c['bpcer@apcer=0.05'][1])}] | "
            f"{vs_s} | {m['n_bona_fide']}+{m['n_attack']} |")
    return "\n".join(lines) + "\n"


def _parse_extra(specs: Sequence[str]) -> list[DetectorEntry]:
    out = []
    for s in specs or []:
        label, _, rest = s.partition("=")
        name, _, params = rest.partition(":")
        if not label or not name:
            raise SystemExit(f"--detector {s!r}: expected LABEL=NAME[:JSON_PARAMS]")
        p = json.loads(params) if params else {}
        out.append(DetectorEntry(label, name, p, trained=p.pop("_trained", True), group="extra"))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frll", required=True, help="FRLL folder (neutral/, smiling/, subjects.csv)")
    ap.add_argument("--morphs", nargs="+", required=True, help="morph manifests (one per method)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", default=None, help="feature cache folder (default OUT/cache)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated FR systems (default: all four)")
    ap.add_argument("--only", default=None, help="comma-separated groups to run (systems and/or 'fused')")
    ap.add_argument("--detector", action="append", default=[], help="extra row: LABEL=NAME[:JSON_PARAMS]")
    ap.add_argument("--reference", default="dlib diff + RBF SVM",
                    help="label of the detector the others are compared with (default: the shipped dlib SVM)")
    ap.add_argument("--live-variants", type=int, default=5, help="live captures (bona fide pairs) per subject")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args(argv)

    from madpad.data import load_morphs
    from madpad.data.frll import frll_images
    from madpad.mad.cache import FeatureCache
    from madpad.mad.pairs import BuildConfig, build_dmad_pairs, read_pairs_csv

    out = Path(args.out)
    cache = FeatureCache(args.cache or out / "cache")
    morphs = [m for path in args.morphs for m in load_morphs(path)]
    built = build_dmad_pairs(frll_images(args.frll), morphs, out / "pairs", progress=False,
                             config=BuildConfig(live_variants=args.live_variants, seed=args.seed))
    print("pairs:", json.dumps(built.counts), "dropped morphs:", built.dropped_morphs, "failures:", len(built.failures))
    splits = {k: read_pairs_csv(f, require_labels=True) for k, f in built.files.items()}
    methods = sorted({p.species for p in splits["train"] if p.label == "attack"})
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    entries = detector_table(systems) + _parse_extra(args.detector)
    if args.only:
        groups = {g.strip() for g in args.only.split(",")}
        entries = [e for e in entries if e.group in groups or e.label == args.reference]
    results = run(entries, splits, methods, cache=cache, out=out, reference=args.reference, n_boot=args.bootstrap,
                  seed=args.seed)
    prev = out / "results.json"
    data = {"counts": built.counts, "dropped_morphs": built.dropped_morphs, "methods": methods,
            "live_variants": args.live_variants, "results": results}
    if args.only and prev.is_file():  # keep the rows of the groups not rerun
        old = json.loads(prev.read_text())
        labels = {m["detector"] for m in results}
        data["results"] = [m for m in old.get("results", []) if m["detector"] not in labels] + results
    prev.write_text(json.dumps(data, indent=2))
    table = markdown_table(data["results"], reference=args.reference)
    (out / "results.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

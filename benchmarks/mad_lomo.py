"""Leave-one-morph-family-out D-MAD table (issue 11): train on all morph families but one, select
on dev with nested leave-one-method-out over the training families, test on the family left out.

Pairs come from ``madpad.mad.pairs.build_dmad_pairs`` (bona fide: neutral FRLL photo of X as the
document image vs a simulated live capture of X made from the smiling photo; attack: morph of X
and Y vs a live capture of X or of Y; subject-disjoint train/dev/test), one attack species per
morph family (``--morphs PATH=SPECIES``). For every detector of the list and every family F:

* trained detectors are fitted on the **train** pairs of all other families (all bona fide train
  pairs), with ``dev`` = the **dev** pairs of the same other families; the FR-embedding and cue
  detectors choose C there by the tie-free key of :mod:`madpad.mad.selection` with
  ``selection="lomo"`` (each candidate judged on every training family held out in turn, so
  selection rewards generalisation to an unseen method); F is never seen before the test;
* every detector (untrained ones once per F) scores the **test** pairs of F (+ all bona fide
  test pairs).

Per row: D-EER, BPCER at APCER = 1 % and 5 % (:mod:`madpad.metrics`: APCER max over species,
conservative thresholds, attack when score >= t) with 95 % intervals from a bootstrap over whole
live-capture subjects, and the paired subject-bootstrap difference to the untrained
``embedding_distance`` (dlib, the reference) on the same pairs, **reference minus detector**
(positive = the detector is better; the target is an interval above zero), for the D-EER and
for BPCER@APCER=1 %. Also per row: the **expression decile** (test subjects ranked by the dlib
distance between their neutral and smiling FRLL photos, the top 10 %, at least 2 subjects): the
BPCER of their bona fide pairs at the APCER = 1 % and 5 % thresholds of the whole test set. Every
figure is given twice: on the pairs as built and with **all suspects re-encoded by one chain**
(``--reencode``, :func:`madpad.mad.pairs.reencode_suspects`), with the same fitted detectors.

    python benchmarks/mad_lomo.py --frll $MADPAD_SHARED/data/frll --out runs/lomo/table \\
        --morphs M/landmark/manifest.csv=landmark M/landmark_spliced/manifest.csv=landmark_spliced \\
                 M/spliced_poisson/manifest.csv=spliced_poisson M/tem189/manifest.csv=tem189

Outputs: ``OUT/results.json``, ``OUT/results.md`` (tables + a summary against the targets
D-EER <= 1 %, BPCER@APCER=1 % <= 5 %, interval of the difference above zero), score CSVs in
``OUT/scores``. Per-image features are cached (``OUT/cache`` or ``--cache``), so re-runs and
added detectors are fast. Detectors: :func:`default_entries` (those registered here), or
``--detector LABEL=NAME[:JSON_PARAMS]`` (as ``benchmarks/mad_fr_systems.py``, whose
:class:`DetectorEntry` and parser this script reuses); ``--only NAME,...`` keeps some defaults.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mad_fr_systems import FAST_DETECTOR, INDEPENDENT, DetectorEntry, _parse_extra, _sys

#: label of the untrained reference every detector is compared with
REFERENCE = "embedding_distance (dlib 1 - cos, untrained)"
#: issue 11 targets on held-out families
TARGETS = {"d_eer": 0.01, "bpcer_at_apcer_1": 0.05}
AS_BUILT = "as built"


def default_entries(registered: Sequence[str] | None = None, *, selection: str = "lomo") -> list[DetectorEntry]:
    """The reference (untrained dlib distance), the classic trained detectors and the cue
    detectors registered in :data:`madpad.mad.MORPH_DETECTORS` (``C="auto"``, dev selection
    ``selection``); face finding as the earlier D-MAD evidence (dlib HOG at 400 px)."""
    if registered is None:
        from madpad.mad import MORPH_DETECTORS

        registered = MORPH_DETECTORS.names()
    ep = {"detector": dict(FAST_DETECTOR)}
    auto = {"C": "auto", "selection": selection}
    rows = [DetectorEntry(REFERENCE, "embedding_distance", {"embedder": "dlib", "embedder_params": ep},
                          trained=False, group="reference"),
            DetectorEntry("embedding_svm (dlib diff -> RBF SVM)", "embedding_svm",
                          {"embedder": "dlib", "embedder_params": ep, **auto}, group="fr"),
            DetectorEntry("fr_texture (dlib pair features + texture -> LR)", "fr_texture",
                          {"embedder": "dlib", "embedder_params": ep, **auto}, group="fr"),
            DetectorEntry("fused_embedding (dlib+mobileface+hse_faceres 1 - cos -> LR)", "fused_embedding",
                          {"embedders": [_sys(s) for s in INDEPENDENT], "features": ["cos"], **auto}, group="fused")]
    cue = [("upper_face_distance", "upper_face_distance (upper-face dlib 1 - cos, untrained)", False),
           ("demorph_distance", "demorph_distance (dlib 1 - cos, demorphed suspect vs live, untrained)", False),
           ("demorph_svm", "demorph_svm (dlib diff + demorphed-suspect minus live, alpha 0.3/0.5 -> RBF SVM)", True),
           ("landmark_displacement", "landmark_displacement (landmark cues -> LR)", True),
           ("smad_cues", "smad_cues (single-image cues -> LR)", True),
           ("dmad_cues", "dmad_cues (diff + landmarks + upper face + S-MAD -> RBF SVM)", True)]
    for name, label, trained in cue:
        if name in registered:
            params = {"embedder_params": ep, **(auto if trained else {})}
            rows.append(DetectorEntry(label, name, params, trained=trained, group="cues"))
    if "demorph_svm" in registered:  # the demorph part of demorph_svm alone
        rows.append(DetectorEntry("dmad_cues [demorph_diff] (demorphed-suspect minus live only -> RBF SVM)", "dmad_cues",
                                  {"embedder_params": ep, "features": ["demorph_diff"], "classifier": "rbf_svm", **auto},
                                  group="cues"))
    # training-time augmentation (madpad.mad.augment) of the strongest trained detectors: candidates too
    for name in ("embedding_svm", "fr_texture", "demorph_svm"):
        if name in registered:
            rows.append(DetectorEntry(f"{name} + 2 augmented views per training pair", name,
                                      {"embedder_params": ep, **auto, "augment_copies": 2}, group="augmented"))
    if "demorph_svm" in registered:
        rows.append(DetectorEntry("dmad_cues [demorph_diff] + 2 augmented views per training pair", "dmad_cues",
                                  {"embedder_params": ep, "features": ["demorph_diff"], "classifier": "rbf_svm", **auto,
                                   "augment_copies": 2}, group="augmented"))
        low_res = {"embedder_params": ep, "features": ["demorph_diff"], "classifier": "rbf_svm", **auto,
                   "augment_copies": 2, "augment_low_res": 0.5}
        rows.append(DetectorEntry("dmad_cues [demorph_diff] + 2 augmented views, half with a low-resolution live capture",
                                  "dmad_cues", low_res, group="augmented"))
        # the row above, demorphed at the live capture's sharpness, and the SVMs of C = 0.1, 1, 10
        # averaged instead of one chosen C (shipped in an earlier round)
        rows.append(DetectorEntry("dmad_cues [demorph_diff] + 2 augmented views (half low-res), demorphed at the "
                                  "live capture's sharpness, C ensemble", "dmad_cues",
                                  {**low_res, "C": "ensemble", "demorph_sharpness": True}, group="augmented"))
        # the shipped configuration (madpad/configs/detect/frll_dmad.yaml): the row above with the whole
        # demorphed image made at the live capture's level
        rows.append(DetectorEntry("dmad_cues [demorph_diff] + 2 augmented views (half low-res), demorphed wholly at "
                                  "the live capture's level, C ensemble", "dmad_cues",
                                  {**low_res, "C": "ensemble", "demorph_sharpness": "whole"}, group="augmented"))
    return rows


def lomo_protocols(families: Sequence[str]) -> list[tuple[list[str], str]]:
    """(training families, held-out family) for every family: train on all the others."""
    fam = sorted(set(families))
    return [([f for f in fam if f != held], held) for held in fam]


def _keep(pairs, species):
    from madpad.mad.pairs import filter_pairs

    return filter_pairs(pairs, species=list(species))


def _subject(p) -> str:
    from madpad.mad.pairs import pair_subject

    return pair_subject(p)


# --------------------------------------------------------------------------- figures
def expression_decile(distances: dict, subjects: Sequence[str], *, fraction: float = 0.1,
                      minimum: int = 2) -> list[str]:
    """The ``fraction`` of ``subjects`` (at least ``minimum``) with the largest ``distances``
    (subject -> FR distance between the neutral and the smiling photo); ties by subject id."""
    have = sorted({str(s) for s in subjects if str(s) in distances}, key=lambda s: (-distances[s], s))
    k = min(len(have), max(minimum, math.ceil(fraction * len(have) - 1e-9)))
    return have[:k]


def decile_bpcer(scores, y, subjects, decile: Sequence[str], thresholds: dict) -> dict:
    """BPCER of the bona fide pairs of the ``decile`` subjects at each of ``thresholds``
    (name -> threshold of the whole test set; attack when score >= t)."""
    s, yy = np.asarray(scores, dtype=np.float64), np.asarray(y).astype(int)
    sel = (yy == 0) & np.isin(np.asarray(subjects).astype(str), list(decile))
    out = {"subjects": list(decile), "n_bona_fide": int(sel.sum())}
    for name, t in thresholds.items():
        out[name] = float(np.mean(s[sel] >= t)) if sel.any() and np.isfinite(t) else float("nan")
    return out


def figures(pairs, scores, status, *, n_boot: int, seed: int, decile: Sequence[str] = ()) -> dict:
    """Counts, D-EER and BPCER@APCER=1/5 % with subject-bootstrap intervals, the two thresholds
    and the expression-decile BPCERs, of the pairs scored ``ok``."""
    from madpad.mad.evaluation import summarize
    from madpad.metrics import bpcer_at_apcer, pad_bootstrap

    ok = np.array([st == "ok" for st in status], dtype=bool) & np.isfinite(scores)
    tp = [p for p, k in zip(pairs, ok) if k]
    y = np.array([p.y for p in tp], dtype=int)
    sp = [p.species if p.y else "" for p in tp]
    subj = [_subject(p) for p in tp]
    s = np.asarray(scores, dtype=np.float64)[ok]
    m = summarize(s, y, sp)
    m["n_failed"] = int((~ok).sum())
    m["n_subjects"] = len(set(subj))
    if not ((y == 0).any() and (y == 1).any()):
        m["ci"] = {}
        return m
    ci = pad_bootstrap(s, y, species=sp, subjects=subj, n_resamples=n_boot, seed=seed, targets=(0.01, 0.05))
    m["ci"] = {k: [v.low, v.high] for k, v in ci.items() if not k.startswith("apcer@")}
    th = {f"bpcer_at_apcer_{int(x * 100)}": float(bpcer_at_apcer(s, y, x, species=sp).threshold) for x in (0.01, 0.05)}
    m["thresholds"] = th
    if decile:
        m["expression_decile"] = decile_bpcer(s, y, subj, decile, th)
    return m


def paired_difference(pairs, ref_scores, scores, *, n_boot: int, seed: int) -> dict:
    """Reference minus detector (positive = detector better) of the D-EER and BPCER@APCER=1 %
    and 5 % on the pairs both scored, with paired subject-bootstrap 95 % intervals
    (:func:`madpad.metrics.paired_pad_bootstrap`)."""
    from madpad.metrics import PadScores, paired_pad_bootstrap

    a, b = np.asarray(ref_scores, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    tp = [p for p, k in zip(pairs, ok) if k]
    y = np.array([p.y for p in tp], dtype=int)
    if not ((y == 0).any() and (y == 1).any()):
        return {}
    sp = [p.species if p.y else "" for p in tp]
    pads = [PadScores.from_arrays(x[ok], y, species=sp, keep_order=True) for x in (b, a)]
    res = paired_pad_bootstrap(pads, n_samples=len(tp), subjects=[_subject(p) for p in tp], targets=(0.01, 0.05),
                               n_resamples=n_boot, seed=seed)
    d = res["differences"][0]  # system 1 (reference) minus system 0 (detector)
    out = {"n_pairs": len(tp)}
    for key, fig in (("d_eer", "d_eer"), ("bpcer_at_apcer_1", "bpcer@apcer=0.01"),
                     ("bpcer_at_apcer_5", "bpcer@apcer=0.05")):
        iv = d[fig]
        out[key] = {"diff": float(iv.estimate), "ci": [float(iv.low), float(iv.high)]}
    return out


# --------------------------------------------------------------------------- protocol
def dev_figures(entry, det, selection: Sequence[dict], dev_pairs, train_fams: Sequence[str], *, cache,
                memo: dict) -> dict | None:
    """What the detector looks like on **dev** data only, for choosing the shipped detector:
    the mean over the training families G of the D-EER and BPCER@APCER=1 % on G's dev pairs (+ all
    bona fide dev pairs). A trained detector with dev selection gives the key of its selected C
    (each G judged with the detector fitted without G: nested leave-one-method-out); an untrained
    one is scored on the dev pairs of each G (once per detector, ``memo``). None otherwise."""
    from madpad.mad.evaluation import per_species
    from madpad.mad.scoring import score_with_status

    chosen = [r for r in selection if r.get("selected")]
    if chosen:
        return {"d_eer": chosen[0]["d_eer"], "bpcer_at_apcer_1": chosen[0]["bpcer_at_apcer_1"], "how": "selection"}
    if entry.trained or not dev_pairs:
        return None
    if entry.label not in memo:
        s, st, _ = score_with_status(det, dev_pairs, cache=cache)
        memo[entry.label] = (np.asarray(s, dtype=np.float64), [x == "ok" for x in st])
    s, ok = memo[entry.label]
    m = np.array(ok, dtype=bool) & np.isfinite(s)  # each family g: bona fide + family g, as every other figure
    figs = per_species(s[m], [p.y for p, k in zip(dev_pairs, m) if k],
                       [p.species for p, k in zip(dev_pairs, m) if k], only=train_fams).values()
    return {"d_eer": float(np.mean([f["d_eer"] for f in figs])),
            "bpcer_at_apcer_1": float(np.mean([f["bpcer_at_apcer_1"] for f in figs])), "how": "scored"}


def _call_with_cache(fn: Callable, *args, cache=None, **kwargs):
    if cache is not None and "cache" in inspect.signature(fn).parameters:
        kwargs["cache"] = cache
    return fn(*args, **kwargs)


def run(entries: Sequence[DetectorEntry], splits: dict, *, cache, out: Path, families: Sequence[str] | None = None,
        variants: dict | None = None, expression: dict | None = None, n_boot: int = 1000, seed: int = 0,
        log=print) -> list[dict]:
    """Every entry on every held-out family (see the module docstring).

    ``splits``: ``{"train", "dev", "test"}`` -> labelled pairs; ``families``: the held-out
    families (default: every attack species of the test pairs); ``variants``: name -> test pairs
    of the same ids with other suspects (e.g. ``{"re-encoded jpeg75": ...}``), scored with the same
    fitted detectors; ``expression``: subject -> neutral-vs-smiling FR distance (for the
    expression decile). The entry labelled :data:`REFERENCE` is run first and every other row
    gets ``vs_reference`` on the same pairs. A detector that fails on one family gives a row with
    ``error`` and the run carries on. Score CSVs go to ``out/scores``."""
    from madpad.mad import get_detector
    from madpad.mad.scoring import score_with_status

    families = sorted(families or {p.species for p in splits["test"] if p.label == "attack"})
    test_sets = {AS_BUILT: splits["test"], **(variants or {})}
    decile = expression_decile(expression, [_subject(p) for p in splits["test"]]) if expression else []
    order = sorted(entries, key=lambda e: e.label != REFERENCE)
    results: list[dict] = []
    ref: dict = {}
    dev_memo: dict = {}
    for train_fams, held in lomo_protocols(families):
        for e in order:
            t0 = time.time()
            base = {"detector": e.label, "name": e.name, "group": e.group, "test": held,
                    "train": train_fams if e.trained else "-"}
            try:
                det = get_detector(e.name, **e.params)
                if e.trained:
                    _call_with_cache(det.fit, _keep(splits["train"], train_fams),
                                     dev=_keep(splits["dev"], train_fams) or None, cache=cache)
            except Exception as exc:  # noqa: BLE001 - per-item failure: record and carry on
                results.append({**base, "variant": AS_BUILT, "error": f"{type(exc).__name__}: {exc}"})
                log(f"{e.label:60s} test={held:17s} FAILED: {type(exc).__name__}: {exc}")
                continue
            sel = [{k: v for k, v in r.items() if k != "folds"} for r in getattr(det, "selection_", []) or []]
            dev = dev_figures(e, det, sel, splits["dev"], train_fams, cache=cache, memo=dev_memo)
            for variant, pool in test_sets.items():
                pairs = _keep(pool, [held])
                try:
                    s, st, er = score_with_status(det, pairs, cache=cache)
                except Exception as exc:  # noqa: BLE001 - per-item failure: record and carry on
                    results.append({**base, "variant": variant, "error": f"{type(exc).__name__}: {exc}"})
                    continue
                s = np.asarray(s, dtype=np.float64)
                s_ok = np.where(np.array([x == "ok" for x in st], dtype=bool), s, np.nan)
                m = {**base, "variant": variant, **figures(pairs, s, st, n_boot=n_boot, seed=seed, decile=decile),
                     "C": getattr(det, "C_", None), "selection_mode": getattr(det, "selection_mode_", None),
                     "selection": sel, "dev": dev, "seconds": round(time.time() - t0, 1)}
                if e.label == REFERENCE:
                    ref[(held, variant)] = ({p.id for p in pairs}, s_ok)
                elif (held, variant) in ref and ref[(held, variant)][0] == {p.id for p in pairs}:
                    m["vs_reference"] = paired_difference(pairs, ref[(held, variant)][1], s_ok, n_boot=n_boot,
                                                          seed=seed)
                safe = "".join(c if c.isalnum() else "_" for c in f"{e.label}__{held}__{variant}").strip("_")[:100]
                from madpad.mad.pairs import write_scores_csv

                write_scores_csv(Path(out) / "scores" / f"{safe}.csv", pairs, s, status=st, errors=er)
                results.append(m)
                vs = m.get("vs_reference", {}).get("d_eer")
                log(f"{e.label:60s} test={held:17s} {variant:18s} D-EER={_pct(m['d_eer'])} "
                    f"BPCER@1/5={_pct(m['bpcer_at_apcer_1'])}/{_pct(m['bpcer_at_apcer_5'])} C={m['C']}"
                    + (f" ref-det={100 * vs['diff']:+.2f} [{100 * vs['ci'][0]:+.2f}, {100 * vs['ci'][1]:+.2f}]"
                       if vs else ""))
    return results


# --------------------------------------------------------------------------- report
def _pct(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"


def _iv(ci) -> str:
    return f"[{_pct(ci[0])}, {_pct(ci[1])}]" if ci else ""


def _diff(vs: dict | None, key: str) -> str:
    if not vs or key not in vs:
        return "-"
    d = vs[key]
    mark = " **>0**" if d["ci"][0] > 0 else ""
    return f"{100 * d['diff']:+.2f} [{100 * d['ci'][0]:+.2f}, {100 * d['ci'][1]:+.2f}]{mark}"


def markdown_table(results: Sequence[dict], variant: str = AS_BUILT) -> str:
    """One table (rates in %) of the rows of ``variant``."""
    head = ("| detector | test (held out) | C (dev selection) | D-EER [95% CI] | BPCER@APCER=1% [CI] | "
            "BPCER@APCER=5% [CI] | ref minus det: D-EER [CI] | ref minus det: BPCER@APCER=1% [CI] | "
            "expression decile BPCER@1% / @5% | pairs bf+attack |")
    lines = [head, "|" + "---|" * 10]
    for m in results:
        if m.get("variant") != variant:
            continue
        if "error" in m:
            lines.append(f"| {m['detector']} | {m['test']} | failed: {m['error'][:80]} |" + " |" * 7)
            continue
        c = m.get("ci", {})
        ex = m.get("expression_decile")
        ex_s = f"{_pct(ex['bpcer_at_apcer_1'])} / {_pct(ex['bpcer_at_apcer_5'])} (n={ex['n_bona_fide']})" if ex else "-"
        cv = m.get("C")
        cs = "-" if cv is None else f"{cv if isinstance(cv, str) else format(cv, 'g')} ({m.get('selection_mode') or '-'})"
        lines.append(f"| {m['detector']} | {m['test']} | {cs} | {_pct(m['d_eer'])} {_iv(c.get('d_eer'))} | "
                     f"{_pct(m['bpcer_at_apcer_1'])} {_iv(c.get('bpcer@apcer=0.01'))} | "
                     f"{_pct(m['bpcer_at_apcer_5'])} {_iv(c.get('bpcer@apcer=0.05'))} | "
                     f"{'(reference)' if m['detector'] == REFERENCE else _diff(m.get('vs_reference'), 'd_eer')} | "
                     f"{'' if m['detector'] == REFERENCE else _diff(m.get('vs_reference'), 'bpcer_at_apcer_1')} | "
                     f"{ex_s} | {m['n_bona_fide']}+{m['n_attack']} |")
    return "\n".join(lines) + "\n"


def summarize_targets(results: Sequence[dict]) -> list[dict]:
    """Per detector and variant: mean and worst held-out D-EER / BPCER@APCER=1 %, and in how many
    held-out families each target is met (D-EER <= 1 %, BPCER@APCER=1 % <= 5 %, interval of the
    difference to the reference above zero for the D-EER and for BPCER@APCER=1 %)."""
    out = []
    keys = []
    for m in results:
        k = (m["detector"], m.get("variant", AS_BUILT))
        if k not in keys:
            keys.append(k)
    for det, variant in keys:
        rows = [m for m in results if m["detector"] == det and m.get("variant", AS_BUILT) == variant and "error" not in m]
        if not rows:
            continue
        de = np.array([m["d_eer"] for m in rows], dtype=float)
        b1 = np.array([m["bpcer_at_apcer_1"] for m in rows], dtype=float)
        vs = [m.get("vs_reference") or {} for m in rows]
        out.append({"detector": det, "variant": variant, "n_families": len(rows),
                    "mean_d_eer": float(np.nanmean(de)), "max_d_eer": float(np.nanmax(de)),
                    "mean_bpcer_at_apcer_1": float(np.nanmean(b1)), "max_bpcer_at_apcer_1": float(np.nanmax(b1)),
                    "d_eer_target_met": int((de <= TARGETS["d_eer"] + 1e-12).sum()),
                    "bpcer_target_met": int((b1 <= TARGETS["bpcer_at_apcer_1"] + 1e-12).sum()),
                    "d_eer_ci_above_zero": sum(bool(v) and v["d_eer"]["ci"][0] > 0 for v in vs),
                    "bpcer_ci_above_zero": sum(bool(v) and v["bpcer_at_apcer_1"]["ci"][0] > 0 for v in vs),
                    "reference": det == REFERENCE})
    return out


def dev_choice(results: Sequence[dict]) -> list[dict]:
    """Detectors with their mean **dev** figures (:func:`dev_figures`, as-built suspects, over the
    held-out families) and the held-out test means beside them, ranked by the key that also
    chooses C (:mod:`madpad.mad.selection`): dev D-EER, then dev BPCER@APCER=1 % (then the name).
    The first row (``chosen``) is the detector to ship; test figures play no part."""
    rows = []
    for det in dict.fromkeys(m["detector"] for m in results):
        ms = [m for m in results if m["detector"] == det and m.get("variant") == AS_BUILT and "error" not in m]
        devs = [m["dev"] for m in ms if m.get("dev")]
        if not ms or len(devs) != len(ms):
            continue
        rows.append({"detector": det, "dev_d_eer": float(np.mean([d["d_eer"] for d in devs])),
                     "dev_bpcer_at_apcer_1": float(np.mean([d["bpcer_at_apcer_1"] for d in devs])),
                     "test_d_eer": float(np.mean([m["d_eer"] for m in ms])),
                     "test_bpcer_at_apcer_1": float(np.mean([m["bpcer_at_apcer_1"] for m in ms]))})
    rows.sort(key=lambda r: (round(r["dev_d_eer"], 9), round(r["dev_bpcer_at_apcer_1"], 9), r["detector"]))
    for i, r in enumerate(rows):
        r["chosen"] = i == 0
    return rows


def dev_choice_table(results: Sequence[dict]) -> str:
    """:func:`dev_choice` as a markdown table (rates in %; the chosen detector in bold)."""
    lines = ["Ranked by dev D-EER, then dev BPCER@APCER=1 % (the key that chooses C); test figures play no part.\n",
             ("| detector | dev D-EER (mean) | dev BPCER@APCER=1 % (mean) | held-out test D-EER (mean) | "
              "held-out test BPCER@APCER=1 % (mean) |"), "|" + "---|" * 5]
    for r in dev_choice(results):
        name = f"**{r['detector']}**" if r["chosen"] else r["detector"]
        lines.append(f"| {name} | {_pct(r['dev_d_eer'])} | {_pct(r['dev_bpcer_at_apcer_1'])} | "
                     f"{_pct(r['test_d_eer'])} | {_pct(r['test_bpcer_at_apcer_1'])} |")
    return "\n".join(lines) + "\n"


def markdown_report(data: dict) -> str:
    """The whole results.md: protocol line, one table per variant, the summary vs the targets."""
    results = data["results"]
    variants = [AS_BUILT] + [v for v in dict.fromkeys(m.get("variant") for m in results) if v and v != AS_BUILT]
    parts = [f"# Leave-one-morph-family-out D-MAD (families: {', '.join(data.get('families', []))})\n",
             ("Rates in %. Trained on the train pairs of all other families (C chosen on their dev pairs, "
              "leave-one-method-out over the training families), tested on the held-out family's test pairs. "
              "[a, b] = 95 % subject-bootstrap interval; 'ref minus det' = untrained dlib embedding_distance minus "
              "the detector on the same pairs (positive = detector better; **>0** = interval above zero). "
              f"Expression decile: the {len(data.get('expression_decile', []))} test subjects with the largest "
              "dlib distance between their neutral and smiling photos; BPCER of their bona fide pairs at the "
              "whole test set's APCER = 1 % / 5 % thresholds.\n")]
    counts = data.get("counts", {})
    if counts:
        parts.append("Pairs (bona fide + attack): " + ", ".join(
            f"{k} {c.get('bona_fide', 0)} + {c.get('attack', 0)}" for k, c in counts.items())
            + (f" (dev includes {', '.join(data['extra_dev'])})" if data.get("extra_dev") else "") + ".\n")
    for v in variants:
        parts.append(f"\n## Suspects {v}\n\n" + markdown_table(results, v))
    parts.append("\n## Dev figures (for choosing the shipped detector; dev pairs only, nested "
                 "leave-one-method-out)\n\n" + dev_choice_table(results))
    parts.append("\n## Against the targets (D-EER <= 1 %, BPCER@APCER=1 % <= 5 %, interval above zero)\n\n"
                 "| detector | suspects | mean / worst D-EER | mean / worst BPCER@APCER=1% | D-EER <= 1 % | "
                 "BPCER@1% <= 5 % | D-EER diff CI > 0 | BPCER@1% diff CI > 0 |\n|" + "---|" * 8)
    for s in data.get("summary", []):
        n = s["n_families"]
        ref = s["reference"]
        parts.append(f"| {s['detector']} | {s['variant']} | {_pct(s['mean_d_eer'])} / {_pct(s['max_d_eer'])} | "
                     f"{_pct(s['mean_bpcer_at_apcer_1'])} / {_pct(s['max_bpcer_at_apcer_1'])} | "
                     f"{s['d_eer_target_met']}/{n} | {s['bpcer_target_met']}/{n} | "
                     f"{'-' if ref else str(s['d_eer_ci_above_zero']) + '/' + str(n)} | "
                     f"{'-' if ref else str(s['bpcer_ci_above_zero']) + '/' + str(n)} |")
    return "\n".join(parts) + "\n"


def _json_safe(o):
    if isinstance(o, dict):
        return {str(k): _json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_safe(v) for v in o]
    if isinstance(o, (np.floating, float)):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.bool_):
        return bool(o)
    return o


# --------------------------------------------------------------------------- inputs
def expression_distances(frll: str, subjects: Sequence[str], *, cache) -> dict:
    """subject -> ``1 - cos`` of the dlib embeddings of the neutral and the smiling FRLL photo
    (subjects without a usable face in either photo are left out)."""
    from madpad.data.frll import frll_images
    from madpad.mad.features import FaceFeatureExtractor

    want = {str(s) for s in subjects}
    recs = [r for r in frll_images(frll) if r.subject in want]
    by = {}
    for r in recs:
        by.setdefault(r.subject, {})[r.extra.get("expression")] = str(r.path)
    subs = sorted(s for s, d in by.items() if "neutral" in d and "smiling" in d)
    fx = FaceFeatureExtractor(embedder="dlib", embedder_params={"detector": dict(FAST_DETECTOR)})
    n = fx.many([by[s]["neutral"] for s in subs], cache=cache, desc="neutral photos")
    sm = fx.many([by[s]["smiling"] for s in subs], cache=cache, desc="smiling photos")
    d = fx.embed_dim
    out = {}
    for i, s in enumerate(subs):
        if n.status[i] == "ok" and sm.status[i] == "ok":
            out[s] = float(1.0 - np.dot(n.features[i, :d].astype(np.float64), sm.features[i, :d].astype(np.float64)))
    return out


def reencoded_variant(test_pairs, chain: str, out: Path, *, seed: int = 0) -> tuple[str, list]:
    """(variant name, test pairs with every suspect re-encoded by ``chain``):
    :func:`madpad.mad.pairs.reencode_suspects` (issue 11: every figure also with all suspects
    re-encoded by one chain)."""
    from madpad.mad.pairs import reencode_suspects

    safe = "".join(c if c.isalnum() else "_" for c in chain)
    return f"re-encoded {chain}", reencode_suspects(test_pairs, chain, out / "reencoded" / safe, seed=seed)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frll", required=True, help="FRLL folder (neutral/, smiling/, subjects.csv)")
    ap.add_argument("--morphs", nargs="*", default=[], help="morph manifests PATH=SPECIES, one per family")
    ap.add_argument("--pairs", default=None,
                    help="folder with pairs_train/dev/test.csv already built (then --morphs is not needed)")
    ap.add_argument("--extra-dev", action="append", default=[], metavar="PAIRS.csv",
                    help="more labelled dev pairs (other subjects, e.g. benchmarks/canada_dev_pairs.py), added to "
                         "the dev pairs of every protocol: they choose C and the shipped detector, nothing else")
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", default=None, help="feature cache folder (default OUT/cache)")
    ap.add_argument("--families", default=None, help="comma-separated families to hold out (default: all)")
    ap.add_argument("--only", default=None, help="comma-separated registry names of the default list to keep")
    ap.add_argument("--detector", action="append", default=[], help="extra row: LABEL=NAME[:JSON_PARAMS]")
    ap.add_argument("--selection", choices=("lomo", "pooled"), default="lomo",
                    help="dev selection of C of the default trained detectors (default: lomo)")
    ap.add_argument("--reencode", default="jpeg75",
                    help="chain applied to every test suspect for the second set of figures ('none' = skip)")
    ap.add_argument("--live-variants", type=int, default=5, help="live captures (bona fide pairs) per subject")
    ap.add_argument("--suspect-chains", default="", help="BuildConfig.suspect_chains (e.g. 'attacker')")
    ap.add_argument("--live-profile", default="default", help="BuildConfig.live_profile (e.g. 'gate')")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args(argv)

    from madpad.cli import run_main

    return run_main(lambda: _main(args), prog="mad_lomo")


def _main(args) -> int:
    from madpad.errors import UsageError
    from madpad.io import atomic_write_json, atomic_write_text
    from madpad.mad.cache import FeatureCache
    from madpad.mad.pairs import read_pairs_csv

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = FeatureCache(args.cache or out / "cache")
    info: dict = {}
    if args.pairs:
        files = {k: Path(args.pairs) / f"pairs_{k}.csv" for k in ("train", "dev", "test")}
    else:
        if not args.morphs:
            raise UsageError("--morphs PATH=SPECIES ... (or --pairs FOLDER) is required")
        from madpad.data.frll import frll_images
        from madpad.mad.pairs import BuildConfig, build_dmad_pairs, load_morph_manifests

        built = build_dmad_pairs(frll_images(args.frll), load_morph_manifests(args.morphs), out / "pairs",
                                 config=BuildConfig(live_variants=args.live_variants, seed=args.seed,
                                                    suspect_chains=args.suspect_chains,
                                                    live_profile=args.live_profile))
        print("pairs:", json.dumps(built.counts), "dropped morphs:", built.dropped_morphs,
              "failures:", len(built.failures))
        files = built.files
        info = {"counts": built.counts, "dropped_morphs": built.dropped_morphs, "failures": len(built.failures),
                "suspect_chains": args.suspect_chains, "live_profile": args.live_profile}
    splits = {k: read_pairs_csv(f, require_labels=True) for k, f in files.items()}
    if args.extra_dev:
        from madpad.mad.pairs import add_dev_pairs

        splits["dev"] = add_dev_pairs(splits["dev"], [(f"--extra-dev {f}", read_pairs_csv(f, require_labels=True))
                                                      for f in args.extra_dev],
                                      others={"train": splits["train"], "test": splits["test"]})
        info["extra_dev"] = [Path(f).name for f in args.extra_dev]
    info["counts"] = {k: {c: sum(p.label == c for p in ps) for c in ("bona_fide", "attack")} for k, ps in splits.items()}
    families = sorted({p.species for p in splits["test"] if p.label == "attack"})
    if args.families:
        want = [f.strip() for f in args.families.split(",") if f.strip()]
        unknown = sorted(set(want) - set(families))
        if unknown:
            raise UsageError(f"--families: unknown {unknown}; the test pairs hold {families}")
        held = want
    else:
        held = families
    entries = default_entries(selection=args.selection)
    if args.only:
        keep = {s.strip() for s in args.only.split(",")}
        entries = [e for e in entries if e.name in keep or e.label == REFERENCE]
    entries += _parse_extra(args.detector)
    variants = {}
    if args.reencode and args.reencode != "none":
        name, pairs = reencoded_variant(splits["test"], args.reencode, out, seed=args.seed)
        variants[name] = pairs
    test_subjects = sorted({_subject(p) for p in splits["test"]})
    expression = expression_distances(args.frll, test_subjects, cache=cache)
    results = run(entries, splits, cache=cache, out=out, families=held, variants=variants, expression=expression,
                  n_boot=args.bootstrap, seed=args.seed)
    data = {"families": families, "held_out": held, "reference": REFERENCE, "targets": TARGETS,
            "reencode": args.reencode, "live_variants": None if args.pairs else args.live_variants, **info,
            "expression_decile": expression_decile(expression, test_subjects),
            "expression_distance": expression, "results": results}
    data["summary"] = summarize_targets(results)
    data["dev_choice"] = dev_choice(results)
    atomic_write_json(out / "results.json", _json_safe(data))
    text = markdown_report(data)
    atomic_write_text(out / "results.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

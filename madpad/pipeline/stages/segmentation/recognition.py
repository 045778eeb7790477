"""Stage 6 of the segmentation study: the effect of segmented enrolment (and probe) images on face
recognition per FR model and condition: FNMR at FMR, EER, DET curves, paired score shifts with
bootstrap intervals per data set, and the decisions that change at the baseline thresholds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from madpad.pipeline.stages._common import (
    as_list,
    finite_mean,
    log,
    read_csv,
    write_csv,
)
from madpad.pipeline.stages.segmentation.common import (
    ORIGINAL,
    load_embeddings,
    study_roles,
)

if TYPE_CHECKING:
    from madpad.face.comparisons import GenuineImpostorScores


def _embedding_matrix(emb: dict, keys: list[str]) -> np.ndarray:
    """(len(keys), D) embeddings, NaN rows where an embedding is missing."""
    dim = next(iter(emb.values())).shape[0] if emb else 0
    return np.stack([emb.get(k, np.full(dim, np.nan, np.float32)) for k in keys]).astype(np.float64)


def comparison_sets(emb: dict, subjects: list[str], ref_id: dict, probe_id: dict, ref_variant: str,
                    probe_variant: str) -> tuple[np.ndarray, np.ndarray, dict, GenuineImpostorScores]:
    """Genuine scores (reference vs probe of the same subject) and impostor scores (reference of
    one subject vs probe of every other subject) for one condition; pairs with a missing
    embedding are dropped and counted in ``info``. Also returns the whole comparison
    (:class:`madpad.face.comparisons.GenuineImpostorScores`; rows: references in the order of
    ``subjects``; columns: probes, subject by subject in that order). ``probe_id[s]`` is one id or
    a list of ids (several probes of a subject)."""
    from madpad.face.comparisons import genuine_impostor_scores

    probes = [(s, i) for s in subjects for i in _as_ids(probe_id[s])]
    gi = genuine_impostor_scores(_embedding_matrix(emb, [f"{ref_variant}/{ref_id[s]}" for s in subjects]),
                                 _embedding_matrix(emb, [f"{probe_variant}/{i}" for _, i in probes]),
                                 subjects, [s for s, _ in probes])
    info = {"genuine_missing": gi.genuine_missing, "impostor_missing": gi.impostor_missing}
    return gi.genuine, gi.impostor, info, gi


def _as_ids(v) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def recognition_metrics(gen: np.ndarray, imp: np.ndarray, *, fmrs=(0.001, 0.01),
                        baseline_thresholds: dict | None = None) -> dict:
    """FNMR at each FMR (own threshold), EER, score means, and FMR/FNMR at the baseline's
    thresholds (the operational view: the system threshold does not move when the enrolment
    process changes)."""
    import warnings

    from madpad.metrics.verification import eer, fmr, fnmr, fnmr_at_fmr

    out = {"n_genuine": int(gen.size), "n_impostor": int(imp.size),
           "genuine_mean": finite_mean(gen), "impostor_mean": finite_mean(imp)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x in fmrs:
            tag = f"{x * 100:g}%"
            if gen.size and imp.size:
                pt = fnmr_at_fmr(gen, imp, x)
                out[f"threshold@FMR{tag}"], out[f"FNMR@FMR{tag}"] = pt.threshold, pt.fnmr
            else:
                out[f"threshold@FMR{tag}"] = out[f"FNMR@FMR{tag}"] = float("nan")
            if baseline_thresholds and tag in baseline_thresholds and gen.size and imp.size:
                t = baseline_thresholds[tag]
                out[f"FNMR@baseline_t{tag}"] = fnmr(gen, t)
                out[f"FMR@baseline_t{tag}"] = fmr(imp, t)
        out["EER"] = eer(gen, imp).eer if gen.size and imp.size else float("nan")
    return out


def mean_shift_ci(diffs: np.ndarray, units, *, n_resamples: int = 1000, seed: int = 0,
                  confidence: float = 0.95, min_units: int = 5) -> dict:
    """Mean of paired score differences with a percentile bootstrap interval. ``units`` (one per
    difference, e.g. the reference subject) are resampled whole when there are at least
    ``min_units`` of them (their comparisons are not independent); otherwise single differences
    are resampled (``unit`` says which)."""
    from madpad.metrics.bootstrap import bootstrap_ci

    d = np.asarray(diffs, dtype=np.float64)
    u = np.asarray(units, dtype=object)
    if d.size == 0:
        return {"n": 0, "shift": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "unit": ""}
    by_subject = len(set(u.tolist())) >= min_units

    def stat(w):
        return float(np.average(d, weights=w)) if w.sum() > 0 else float("nan")

    ci = bootstrap_ci(stat, d.size, subjects=u.astype(str) if by_subject else None, n_resamples=n_resamples,
                      seed=seed, confidence=confidence)["value"]
    return {"n": int(d.size), "shift": float(d.mean()), "ci_low": ci.low, "ci_high": ci.high,
            "unit": "subject" if by_subject else "comparison"}


def paired_effect(base: GenuineImpostorScores, cond: GenuineImpostorScores, ref_subjects: list[str],
                  dataset_of: dict, thresholds: dict, *, n_resamples: int = 1000, seed: int = 0) -> list[dict]:
    """Per data set (and ``all``) and kind (genuine / impostor): the paired score shift of the
    condition against the baseline on the comparisons made in both (mean, bootstrap interval by
    reference subject), and the decisions that change at the baseline thresholds
    (``thresholds``: tag -> t; match when score >= t): ``lost`` = matches in the baseline that
    are non-matches in the condition, ``gained`` = the reverse."""
    both = base.compared & cond.compared
    d = cond.scores - base.scores
    subj = np.asarray(ref_subjects, dtype=object)[:, None].repeat(d.shape[1], axis=1)
    ds = np.asarray([dataset_of.get(s, "") for s in ref_subjects], dtype=object)[:, None].repeat(d.shape[1], axis=1)
    out = []
    datasets = ["all"] + sorted({v for v in dataset_of.values()} - {""})
    if len(datasets) == 2:
        datasets = ["all"]  # one data set: "all" says it
    for name in datasets:
        in_ds = both if name == "all" else both & (ds == name)
        for kind, sel in (("genuine", in_ds & base.same_subject), ("impostor", in_ds & ~base.same_subject)):
            row = {"dataset": name, "kind": kind,
                   "base_mean": finite_mean(base.scores[sel]), "cond_mean": finite_mean(cond.scores[sel])}
            row.update(mean_shift_ci(d[sel], subj[sel], n_resamples=n_resamples, seed=seed))
            for tag, t in thresholds.items():
                b, c = base.scores[sel] >= t, cond.scores[sel] >= t
                row[f"lost@t{tag}"] = int((b & ~c).sum())
                row[f"gained@t{tag}"] = int((~b & c).sum())
            out.append(row)
    return out


def conditions(seg_labels: list[str]) -> list[tuple[str, str, str, str]]:
    """``(condition, segmenter, reference variant, probe variant)``: the baseline, then per
    segmenter a segmented enrolment against original probes, the reverse, and both segmented."""
    out = [("original_vs_original", ORIGINAL, ORIGINAL, ORIGINAL)]
    for s in seg_labels:
        out += [(f"{s}_vs_original", s, s, ORIGINAL), (f"original_vs_{s}", s, ORIGINAL, s), (f"{s}_vs_{s}", s, s, s)]
    return out


def recognition_effect(ctx) -> dict:
    """FR effect per model and condition.

    Conditions (:func:`conditions`): ``original_vs_original`` (baseline), ``<seg>_vs_original``
    (segmented enrolment photo vs original probe: a live capture on its real background),
    ``original_vs_<seg>`` (the reverse: original enrolment vs segmented probe) and
    ``<seg>_vs_<seg>`` (both segmented). outputs: ``table`` (recognition.csv), ``scores``
    (comparison scores CSV with a ``condition`` column), ``det`` (JSON DET curves) and, when
    declared, ``shifts`` (shifts.csv: per model, condition, data set and kind the paired score
    shift against the baseline with a bootstrap interval, and the decisions that change at the
    baseline's thresholds; see :func:`paired_effect`). params: ``fmrs``, ``n_resamples``, ``seed``.
    """
    from madpad.io import atomic_write_json

    p = ctx.params
    rows = read_csv(ctx.inputs["table"])
    subjects, ref_id, probe_ids, dataset_of = study_roles(rows)
    seg_labels = sorted({r["segmenter"] for r in read_csv(ctx.inputs["segmented_table"])})
    fmrs = [float(x) for x in as_list(p.get("fmrs", [0.001, 0.01]))]
    n_res, seed = int(p.get("n_resamples", 1000)), int(p.get("seed", 0))
    embs = load_embeddings(Path(ctx.inputs["embeddings"]))
    table, score_rows, det, shifts = [], [], {}, []
    for model, emb in embs.items():
        if not emb:
            continue
        base_t, base_gi, base = None, None, None
        det[model] = {}
        for cond, seg, rv, pv in conditions(seg_labels):
            gen, imp, info, gi = comparison_sets(emb, subjects, ref_id, probe_ids, rv, pv)
            m = recognition_metrics(gen, imp, fmrs=fmrs, baseline_thresholds=base_t)
            if cond == "original_vs_original":
                base_t = {f"{x * 100:g}%": m[f"threshold@FMR{x * 100:g}%"] for x in fmrs}
                base, base_gi = m, gi
            else:
                for r in paired_effect(base_gi, gi, subjects, dataset_of, base_t, n_resamples=n_res, seed=seed):
                    shifts.append({"model": model, "condition": cond, "segmenter": seg, **r})
            m["genuine_shift"] = m["genuine_mean"] - base["genuine_mean"]
            m["impostor_shift"] = m["impostor_mean"] - base["impostor_mean"]
            table.append({"model": model, "condition": cond, "segmenter": seg, **info, **m})
            det[model][cond] = det_points(gen, imp)
            if p.get("write_scores", True):
                probes = [(s, i) for s in subjects for i in probe_ids[s]]
                for i, j, kind, score in gi.pairs():
                    si, (sj, pid) = subjects[i], probes[j]
                    score_rows.append({
                        "system": model, "kind": kind, "reference": f"{rv}/{ref_id[si]}",
                        "probe": f"{pv}/{pid}", "reference_subjects": si, "probe_subject": sj,
                        "score": round(score, 6), "condition": cond})
    write_csv(ctx.outputs["table"], table)
    write_csv(ctx.outputs["scores"], score_rows,
              ["system", "kind", "reference", "probe", "reference_subjects", "probe_subject", "score", "condition"])
    atomic_write_json(ctx.outputs["det"], det)
    if "shifts" in ctx.outputs:
        write_csv(ctx.outputs["shifts"], shifts, ["model", "condition", "segmenter", "dataset", "kind", "n",
                                                  "base_mean", "cond_mean", "shift", "ci_low", "ci_high", "unit"])
    log(ctx, "recognition: %d rows for %d model(s), %d subjects", len(table), len(embs), len(subjects))
    return {"rows": len(table)}


def det_points(gen: np.ndarray, imp: np.ndarray, max_points: int = 200) -> dict:
    """``{"fmr": [...], "fnmr": [...]}`` of the verification DET curve
    (:func:`madpad.metrics.verification.verification_det_curve`, thinned to about ``max_points``
    thresholds per class; match when ``score >= t``); empty lists without genuine or impostor
    scores."""
    from madpad.metrics.verification import verification_det_curve

    if not gen.size or not imp.size:
        return {"fmr": [], "fnmr": []}
    _, fmr, fnmr = verification_det_curve(gen, imp, max_points=max_points)
    return {"fmr": [float(v) for v in fmr], "fnmr": [float(v) for v in fnmr]}

"""Stage 8 of the segmentation study: differential MAD with thresholds fixed at APCER targets
on the original images, BPCER measured on the segmented bona fide images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from madpad.pipeline.stages._common import as_list, log, read_csv, write_csv
from madpad.pipeline.stages.segmentation.common import (
    ORIGINAL,
    images_table,
    keyed_images,
    load_embeddings,
    study_roles,
)


def distance_dmad_scores(emb: dict, pairs: list[tuple[str, str]]) -> np.ndarray:
    """Untrained differential MAD: ``1 - cos(suspect, live)`` of FR embeddings
    (higher = more likely attack; NaN when an embedding is missing)."""
    from madpad.face.similarity import cosine_similarity

    out = np.full(len(pairs), np.nan)
    for i, (s, l) in enumerate(pairs):
        a, b = emb.get(s), emb.get(l)
        if a is not None and b is not None:
            out[i] = 1.0 - cosine_similarity(a, b)
    return out


def detection_operating_points(attack: np.ndarray, bona_fide_orig: np.ndarray, bona_fide: dict[str, np.ndarray],
                               apcer_targets=(0.2, 0.1, 0.01), species: str = "morph") -> list[dict]:
    """Rows of the MAD-effect table.

    ``metric="BPCER"`` rows: the threshold is fixed at each APCER target on ``attack`` + the
    original bona fide scores (conservative: APCER <= target, attack when score >= t); the
    columns named after each bona fide condition hold that condition's BPCER at this threshold.
    One ``metric="D-EER"`` row: each bona fide condition's D-EER against the same attacks.
    """
    from madpad.metrics.pad import bpcer, bpcer_at_apcer, d_eer

    a, b0 = attack[np.isfinite(attack)], bona_fide_orig[np.isfinite(bona_fide_orig)]
    rows = []
    if not a.size or not b0.size:
        return rows
    scores = np.concatenate([b0, a])
    labels = ["bona_fide"] * b0.size + ["attack"] * a.size
    spec = [""] * b0.size + [species] * a.size
    for x in apcer_targets:
        op = bpcer_at_apcer(scores, labels, x, species=spec)
        row = {"metric": "BPCER", "apcer_target": x, "threshold": float(op.threshold), "apcer": float(op.apcer)}
        for cond, b in bona_fide.items():
            b = b[np.isfinite(b)]
            row[cond] = (bpcer(np.concatenate([b, a]), ["bona_fide"] * b.size + ["attack"] * a.size,
                               op.threshold) if b.size else float("nan"))
        rows.append(row)
    row = {"metric": "D-EER", "apcer_target": "", "threshold": "", "apcer": ""}
    for cond, b in bona_fide.items():
        b = b[np.isfinite(b)]
        if b.size:
            s = np.concatenate([b, a])
            lab = ["bona_fide"] * b.size + ["attack"] * a.size
            row[cond] = float(d_eer(s, lab, species=[""] * b.size + [species] * a.size).d_eer)
    rows.append(row)
    return rows


def detection_effect(ctx) -> dict:
    """MAD effect. Pairs (differential MAD): bona fide = (reference image, each original probe of
    the subject as live capture), with the reference original or segmented; attack = (morph,
    original probes of each contributor). Only subjects of the main data set (the one the morphs
    come from) unless ``main_dataset_only`` is false. Detectors: ``<fr model>_distance`` for
    every embedded FR model (untrained, 1 - cosine), plus any trained madpad.mad detector given
    in ``detectors`` as ``{name, model_dir}``. outputs: ``table`` (detection.csv), ``scores`` (PAD scores CSV with
    ``detector`` and ``condition`` columns).
    """
    p = ctx.params
    _, rows = images_table(ctx)
    subjects, ref, probes, dataset_of = study_roles(rows)
    if p.get("main_dataset_only", True) and rows:  # the attacks come from the main data set: so do the bona fide
        main = rows[0].get("dataset", "")
        subjects = [s for s in subjects if dataset_of.get(s, "") == main]
    seg_labels = sorted({r["segmenter"] for r in read_csv(ctx.inputs["segmented_table"])})
    morphs = [r for r in read_csv(ctx.inputs["morphs_table"]) if r["status"] == "ok"]
    attack_pairs = []
    for m in morphs:
        for subj in (m["subject_a"], m["subject_b"]):
            for pid in probes.get(subj, []):
                attack_pairs.append((f"morph/{m['id']}", f"{ORIGINAL}/{pid}"))
    bf_pairs = {v: [(f"{v}/{ref[s]}", f"{ORIGINAL}/{pid}") for s in subjects for pid in probes[s]]
                for v in [ORIGINAL, *seg_labels]}
    targets = [float(x) for x in as_list(p.get("apcer_targets", [0.2, 0.1, 0.01]))]
    embs = load_embeddings(Path(ctx.inputs["embeddings"]))
    detectors = as_list(p.get("detectors", ["distance"]))
    table, score_rows, notes = [], [], []
    for det in detectors:
        name = det if isinstance(det, str) else det.get("name")
        if name == "distance":
            for model, emb in embs.items():
                label = f"{model}_distance"
                att = distance_dmad_scores(emb, attack_pairs)
                bfs = {v: distance_dmad_scores(emb, pr) for v, pr in bf_pairs.items()}
                _collect(table, score_rows, label, att, bfs, attack_pairs, bf_pairs, targets)
        else:
            res = _trained_detector_scores(det, ctx, attack_pairs, bf_pairs)
            if isinstance(res, str):
                notes.append(res)
                log(ctx, "%s", res)
                continue
            att, bfs = res
            label = str(det.get("label", name)) if isinstance(det, dict) else str(det)
            _collect(table, score_rows, label, att, bfs, attack_pairs, bf_pairs, targets)
    if not attack_pairs:
        notes.append("no morph was made (see morphs.csv): the MAD effect was not measured")
    write_csv(ctx.outputs["table"], table, ["detector", "n_attack", "n_bona_fide", "metric", "apcer_target", "threshold",
                                            "apcer", ORIGINAL, *seg_labels])
    write_csv(ctx.outputs["scores"], score_rows, ["id", "score", "label", "species", "detector", "condition"])
    from madpad.io import atomic_write_json

    atomic_write_json(ctx.outputs["notes"], {"notes": notes, "n_attack_pairs": len(attack_pairs),
                                             "n_bona_fide_pairs": len(bf_pairs[ORIGINAL]), "n_morphs": len(morphs)})
    return {"rows": len(table), "notes": notes}


def _collect(table, score_rows, label, att, bfs, attack_pairs, bf_pairs, targets):
    for r in detection_operating_points(att, bfs[ORIGINAL], bfs, targets):
        table.append({"detector": label, "n_attack": int(np.isfinite(att).sum()),
                      "n_bona_fide": int(np.isfinite(bfs[ORIGINAL]).sum()), **r})
    for (s, l), v in zip(attack_pairs, att):
        if np.isfinite(v):
            score_rows.append({"id": f"{s}|{l}", "score": float(v), "label": "attack", "species": "landmark",
                               "detector": label, "condition": "attack"})
    for cond, pr in bf_pairs.items():
        for (s, l), v in zip(pr, bfs[cond]):
            if np.isfinite(v):
                score_rows.append({"id": f"{s}|{l}", "score": float(v), "label": "bona_fide", "species": "",
                                   "detector": label, "condition": cond})


def _trained_detector_scores(det: Any, ctx, attack_pairs, bf_pairs):
    """Scores of a madpad.mad detector: ``{name, model_dir}`` loads a trained checkpoint
    (``madpad.mad.load_detector``), ``{name, **params}`` without ``model_dir`` builds a
    detector that needs no training (e.g. ``embedding_distance``). Returns
    ``(attack_scores, {condition: bona_fide_scores})`` or a note string saying why the
    detector is not available."""
    spec = {"name": det} if isinstance(det, str) else dict(det)
    name = spec.get("name")
    try:
        from madpad import mad
    except Exception as exc:  # noqa: BLE001  # pragma: no cover - depends on the installation
        return f"detector {name!r}: madpad.mad not available ({exc})"
    try:
        if spec.get("model_dir"):
            model = mad.load_detector(spec["model_dir"])
        else:
            params = {k: v for k, v in spec.items() if k not in ("name", "label", "model_dir")}
            model = mad.get_detector(name, **params)
        paths = dict(keyed_images(ctx))

        def score(pairs):
            ps = [mad.Pair(id=f"{s}|{l}", suspect=paths[s], live=paths[l]) for s, l in pairs]
            return np.asarray(model.score(ps), dtype=np.float64)

        return score(attack_pairs), {v: score(pr) for v, pr in bf_pairs.items()}
    except Exception as exc:  # noqa: BLE001 - reported as "not available" in the study report
        return f"detector {name!r}: not available ({type(exc).__name__}: {exc})"

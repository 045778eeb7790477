"""Stage 7 of the segmentation study: ISO/IEC 29794-5-style quality measures of every original
and segmented image, and their change against the originals."""

from __future__ import annotations

from pathlib import Path

from madpad.pipeline.stages._common import (
    failure_text,
    finite_mean,
    is_failure,
    log,
    read_csv,
    run_map,
    write_csv,
)
from madpad.pipeline.stages.segmentation.common import (
    ORIGINAL,
    detector_spec,
    images_table,
    load_embeddings,
    study_roles,
)


def _quality_item(item: dict) -> dict:
    from madpad.face import analyze_face
    from madpad.io import read_image
    from madpad.quality import measure_quality, quality_components

    row = {"key": item["key"], "id": item["id"], "variant": item["variant"], "status": "ok", "error": ""}
    try:
        img = read_image(item["path"])
        a = analyze_face(img, detector=item["detector"], landmarker="dlib68")
        if a.status != "ok":
            row.update(status=a.status, error=a.error)
            return row
        q = measure_quality(img, a.landmarks, box=a.detection.box)
        row.update(q.as_dict())
        row.update(quality_components(q))
    except Exception as exc:  # noqa: BLE001 - per-item failure: recorded, the stage carries on
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    return row


QUALITY_COLUMNS = ["sharpness", "exposure_mean", "exposure_clipped", "background_std", "background_spread",
                   "inter_eye_distance", "yaw",
                   "roll", "q_sharpness", "q_exposure", "q_background_uniformity", "q_face_size", "q_pose", "utility"]


def quality_effect(ctx) -> dict:
    """Quality measures of every original and segmented image (faces re-detected on each
    image), the recognition utility from the first FR model, and a per-variant summary.

    outputs: ``table`` (quality.csv, one row per image and variant), ``summary``
    (quality_summary.csv: means per variant, and the change against the originals).
    """
    from madpad.quality import recognition_utility

    p = ctx.params
    folder, rows = images_table(ctx)
    seg_dir = Path(ctx.inputs["segmented"])
    det = detector_spec(p)
    items = [{"key": f"{ORIGINAL}/{r['id']}", "id": r["id"], "variant": ORIGINAL, "path": str(folder / r["file"]),
              "detector": det} for r in rows]
    for r in read_csv(ctx.inputs["segmented_table"]):
        if r["status"] == "ok":
            items.append({"key": f"{r['segmenter']}/{r['id']}", "id": r["id"], "variant": r["segmenter"],
                          "path": str(seg_dir / r["file"]), "detector": det})
    results = run_map(ctx, _quality_item, items, desc="quality")
    table = []
    for it, res in zip(items, results):
        if is_failure(res):
            res = {"key": it["key"], "id": it["id"], "variant": it["variant"], "status": "failed",
                   "error": failure_text(res)}
        table.append(res)
    # recognition utility: similarity to the subject's *other* original image
    embs = load_embeddings(Path(ctx.inputs["embeddings"])) if "embeddings" in ctx.inputs else {}
    model = p.get("utility_model") or (next(iter(embs)) if embs else None)
    other = {}
    subjects, ref_id, probe_ids, _ = study_roles(rows)
    for s in subjects:  # a probe's other image is the reference; the reference's, its first probe
        other[ref_id[s]] = probe_ids[s][0]
        for pid in probe_ids[s]:
            other[pid] = ref_id[s]
    if model and model in embs:
        emb = embs[model]
        for r in table:
            e, o = emb.get(r["key"]), emb.get(f"{ORIGINAL}/{other.get(r['id'], '')}")
            r["utility"] = recognition_utility(e, o) if e is not None and o is not None else float("nan")
    write_csv(ctx.outputs["table"], table, ["key", "id", "variant", "status", "error", *QUALITY_COLUMNS])
    summary = summarize_quality(table)
    write_csv(ctx.outputs["summary"], summary)
    log(ctx, "quality: %d images, utility model %s", len(table), model)
    return {"rows": len(table), "utility_model": model}


def _num(v) -> float:
    """A table cell as float (None / empty / unparsable -> NaN; 0 stays 0)."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return float("nan")
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def summarize_quality(table: list[dict]) -> list[dict]:
    """Mean of each measure per variant, failures, and the change against ``original``
    computed on the images measured in both (paired)."""
    variants = [ORIGINAL] + sorted({r["variant"] for r in table} - {ORIGINAL})
    by_key = {(r["variant"], r["id"]): r for r in table}
    out = []
    for v in variants:
        rs = [r for r in table if r["variant"] == v]
        ok = [r for r in rs if r["status"] == "ok"]
        row = {"variant": v, "n": len(rs), "no_face_or_failed": len(rs) - len(ok)}
        for c in QUALITY_COLUMNS:
            row[c] = finite_mean(_num(r.get(c)) for r in ok)
        if v != ORIGINAL:
            for c in ("sharpness", "background_std", "background_spread", "q_background_uniformity", "utility"):
                d = []
                for r in ok:
                    base = by_key.get((ORIGINAL, r["id"]))
                    if base and base["status"] == "ok":
                        d.append(_num(r.get(c)) - _num(base.get(c)))
                row[f"delta_{c}"] = finite_mean(d)
        out.append(row)
    return out

"""Stage 2 of the segmentation study: face box and 68 landmarks of every original image."""

from __future__ import annotations

import numpy as np

from madpad.pipeline.stages._common import failure_text, is_failure, log, run_map
from madpad.pipeline.stages.segmentation.common import detector_spec, images_table


def _face_item(item: dict) -> dict:
    """Worker: face box + 68 landmarks of one image."""
    from madpad.face import analyze_face

    a = analyze_face(item["path"], detector=item["detector"], landmarker="dlib68")
    out = {"id": item["id"], "status": a.status, "error": a.error}
    if a.status == "ok":
        out["box"] = [float(v) for v in a.detection.box]
        out["landmarks"] = np.round(np.asarray(a.landmarks, float), 2).tolist()
    return out


def detect_faces(ctx) -> dict:
    """Face box and 68 landmarks of each original image. output ``faces`` (JSON id -> entry)."""
    from madpad.io import atomic_write_json

    folder, rows = images_table(ctx)
    det = detector_spec(ctx.params)
    items = [{"id": r["id"], "path": str(folder / r["file"]), "detector": det} for r in rows]
    results = run_map(ctx, _face_item, items, desc="faces")
    faces = {}
    for it, res in zip(items, results):
        faces[it["id"]] = ({"id": it["id"], "status": "failed", "error": failure_text(res)}
                           if is_failure(res) else res)
    atomic_write_json(ctx.outputs["faces"], faces)
    bad = [k for k, v in faces.items() if v["status"] != "ok"]
    log(ctx, "faces: %d ok, %d without a usable face %s", len(faces) - len(bad), len(bad), bad[:10])
    return {"ok": len(faces) - len(bad), "failed": len(bad)}

"""Demo step 5: a short background-segmentation study.

The study's own stage functions (:mod:`madpad.pipeline.stages.segmentation`) run as the stages
``seg_images`` ... ``seg_report`` of ``pipelines/demo.yaml`` (the stages of
``pipelines/segmentation_study.yaml``, same functions and parameters); this module's stage
``segmentation`` then gathers what the demo report shows.

inputs: the study stages' tables (``study_images``, ``segmented``, ``segment_notes``, ``recognition``,
``detection``), its ``summary`` and ``study_report``. params: ``subjects``, ``segmenters``,
``model_dir`` (the rembg model folder; empty = none). outputs: ``status``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from madpad.pipeline.stages.demo.common import StepRun, run_step

#: what the demo runs of the study (rembg IS-Net joins when its model file is there)
SEGMENTERS = ("mediapipe_selfie", "landmark_hull", "grabcut")
REMBG_SEGMENTER = "rembg_isnet"
REMBG_MODEL_FILE = "isnet-general-use.onnx"


def segmentation(ctx) -> dict:
    # the step's time includes the study's own stages (seg_images ... seg_report), which ran before
    return run_step(ctx, "segmentation", _segmentation,
                    earlier_seconds=lambda r: sum(float(st.get("seconds") or 0) for st in r["stages"].values()))


def demo_segmenters(rembg_dir: str | None) -> tuple[list[str], list[str]]:
    """(segmenters, notes): the demo's segmenters, plus rembg IS-Net when ``rembg_dir`` holds its model."""
    segmenters, notes = list(SEGMENTERS), []
    if rembg_dir and (Path(rembg_dir) / REMBG_MODEL_FILE).is_file():
        segmenters.append(REMBG_SEGMENTER)
    else:
        notes.append(f"rembg IS-Net not used: {REMBG_MODEL_FILE} not found in "
                     + (rembg_dir if rembg_dir else "--rembg-models / $U2NET_HOME (neither is set)"))
    return segmenters, notes


def _stage_records(run: StepRun) -> dict:
    from madpad.pipeline.runner import read_record

    out = {}
    for d in sorted(p for p in run.out.glob("seg_*") if p.is_dir()):
        rec = read_record(d) or {}
        out[d.name] = {"status": "ok" if rec else "unknown", "seconds": rec.get("seconds"),
                       "finished_at": rec.get("finished_at")}
    return out


def _segmentation(run: StepRun) -> dict:
    from madpad.data import read_table

    p, inp = run.params, run.ctx.inputs
    segmenters = [str(s) for s in p.get("segmenters") or SEGMENTERS]
    _, rembg_notes = demo_segmenters(p.get("model_dir") or None)
    notes = rembg_notes if REMBG_SEGMENTER not in segmenters else []
    study = json.loads(Path(inp["summary"]).read_text(encoding="utf-8")) if Path(inp["summary"]).is_file() else {}
    seg_notes = json.loads(Path(inp["segment_notes"]).read_text(encoding="utf-8")).get("notes", [])
    per_seg: dict = {}
    for r in read_table(inp["segmented"]).rows:
        d = per_seg.setdefault(r["segmenter"], {"ok": 0, "failed": 0, "foreground_share": []})
        d["ok" if r["status"] == "ok" else "failed"] += 1
        if r.get("foreground_share"):
            d["foreground_share"].append(float(r["foreground_share"]))
    for d in per_seg.values():
        fs = d.pop("foreground_share")
        d["mean_foreground_share"] = float(np.mean(fs)) if fs else None
    images_table = Path(inp["study_images"])
    return {"pipeline": "segmentation_study.yaml", "segmenters": segmenters, "subjects": int(p.get("subjects", 0)),
            "stages": _stage_records(run), "segmenter_counts": per_seg,
            "recognition": read_table(inp["recognition"]).rows, "detection": read_table(inp["detection"]).rows,
            "study_summary": study, "study_report": run.rel(inp["study_report"]),
            "images_dir": run.rel(images_table.parent / "images"),
            "segmented_dir": run.rel(Path(inp["segmented"]).parent / "segmented"),
            "notes": notes + list(seg_notes)}

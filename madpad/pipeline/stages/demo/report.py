"""Stage ``report`` of ``pipelines/demo.yaml``: the demo's ``report.json`` and self-contained
``report.html`` (:mod:`.report_html`).

inputs: ``data`` (the data stage's ``data.json``) and, per step, ``<step>`` = its ``status.json``
(a step without one is shown as not run). params: ``run`` - what the demo command knows of the
run: ``options``, ``command``, ``seconds`` (wall time so far) and ``steps``, the steps of this
run that have no finished status to read (``{"status": "failed", "error": ..., "log": ...}``,
``{"status": "skipped", "reason": ...}``). outputs: ``json`` (report.json), ``html`` (report.html).

Everything shown is read back from the status files and the files the steps wrote into the run
folder (scores, PAD reports with their DET curves, morphs, synthetic attacks, segmentation
mattes), so a report rebuilt after a resumed run shows the same figures.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import madpad
from madpad.data.frll import FRLL_CREDIT
from madpad.pipeline.stages.demo.common import STEP_TITLES, STEPS, read_status

DEFAULT_COMMAND = "python -m madpad.pipeline run pipelines/demo.yaml"
CHANGES = [
    ("the bundled sample: 24 subjects, neutral and smiling frontal photos resized from 1350x1350 to 600x600 and "
     "re-encoded as JPEG (madpad/sample_data/frll24/ATTRIBUTION.md);"),
    ("morphs: two subjects' neutral photos warped to averaged landmarks and blended (full), or the morphed face "
     "pasted into contributor A's photo with colour correction and blending (spliced);"),
    ("D-MAD pairs: suspect images resized/re-encoded; live captures simulated from the smiling photos (crop, "
     "rotation, colour, blur, noise, JPEG);"),
    ("T-shirt attacks: photos placed on a larger canvas with a synthesised torso/shirt, another subject's face "
     "printed on the chest, the wearer's face occluded, cropped or replaced per attack species;"),
    "segmentation: backgrounds segmented and replaced with white; mattes shown as grey images.",
]


def report(ctx) -> dict:
    from madpad.io import atomic_write_json, atomic_write_text
    from madpad.pipeline.stages.demo.report_html import render_report
    from madpad.report.format import clean_json

    run = dict(ctx.params.get("run") or {})
    out = Path(ctx.workdir)
    data = json.loads(Path(ctx.inputs["data"]).read_text(encoding="utf-8"))
    statuses = step_statuses({s: ctx.inputs.get(s) for s in STEPS}, run.get("steps") or {})
    doc = clean_json(build_report_json(data, statuses, run))
    atomic_write_json(ctx.outputs["json"], doc)
    atomic_write_text(ctx.outputs["html"], render_report(out, doc))
    return {k: v["status"] for k, v in doc["steps"].items()}


def step_statuses(files: Mapping[str, Any], this_run: Mapping[str, Mapping]) -> dict[str, dict | None]:
    """step -> its status (read from ``files[step]``, else the demo command's word on it in
    ``this_run``), None for a step that was not run."""
    out: dict[str, dict | None] = {}
    for step in STEPS:
        st = read_status(files[step]) if files.get(step) else None
        out[step] = st if st is not None else (dict(this_run[step]) if step in this_run else None)
    return out


# =========================================================================== report.json
def build_report_json(data: Mapping, statuses: Mapping[str, dict | None], run: Mapping) -> dict:
    """All figures of the run as one JSON-ready dict (keys documented in docs/demo.md)."""
    steps = {}
    for name in STEPS:
        rec = statuses.get(name)
        if rec is None or rec.get("status") in (None, "not run"):
            steps[name] = {"status": "not run", "title": STEP_TITLES[name]}
            continue
        steps[name] = {"status": rec.get("status"), "title": STEP_TITLES[name], "seconds": rec.get("seconds"),
                       "started": rec.get("started"), "reason": rec.get("reason"), "error": rec.get("error"),
                       "log": rec.get("log")}
    results = {name: rec["result"] for name, rec in statuses.items() if rec and rec.get("result")}
    seconds = run.get("seconds")
    if seconds is None:
        seconds = sum(float(s.get("seconds") or 0) for s in steps.values())
    return {
        "report": "madpad-demo",
        "madpad_version": madpad.__version__,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "seconds": round(float(seconds), 1),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "data": {"description": data["description"], "source": data["source"], "subjects": len(data["subjects"]),
                 "root": data.get("root"), "notes": list(data.get("notes") or []), "frll": bool(data["is_frll"])},
        "options": dict(run.get("options") or {}),
        "command": run.get("command") or DEFAULT_COMMAND,
        "conventions": {
            "scores": "higher = more likely attack (morph / presentation attack); attack when score >= threshold",
            "fr_scores": "cosine similarity of L2-normalised dlib embeddings; higher = more similar; match when "
                         "score >= threshold",
            "apcer": "maximum over attack species (ISO/IEC 30107-3)",
            "thresholds": "FR thresholds at FMR targets set on the bona fide impostor comparisons (realised FMR <= "
                          "target); PAD figures from madpad.report.pad_report",
        },
        "steps": steps,
        "results": results,
        "figures": key_figures(results),
        "attribution": {"frll": FRLL_CREDIT if data["is_frll"] else None, "changes": CHANGES},
    }


def key_figures(results: Mapping[str, Any]) -> dict:
    """The headline numbers of each step (a flat view of ``results``)."""
    out: dict[str, Any] = {}
    gen = results.get("generate")
    if gen:
        out["generate"] = {m: {"made": v["made"] + v["reused"], "failed": v["failed"]} for m, v in gen["methods"].items()}
    vul = results.get("vulnerability")
    if vul:
        out["vulnerability"] = {
            m: {fmr: {k: a[k] for k in ("mmpmr", "prodavg_mmpmr", "rmmr", "fnmr", "threshold")}
                for fmr, a in v["at_fmr"].items()} for m, v in vul["methods"].items() if v.get("status") == "ok"}
    for step in ("detect", "tshirt"):
        r = results.get(step)
        if r:
            out[step] = {d: {"d_eer": v["d_eer"], "bpcer_at_apcer": v["bpcer_at_apcer"], "n_bona_fide": v["n_bona_fide"],
                             "n_attack": v["n_attack"]} for d, v in r["detectors"].items() if v.get("status") == "ok"}
    seg = results.get("segmentation")
    if seg:
        rec = {}
        for r in seg.get("recognition", []):
            rec[r.get("condition", "?")] = {k: num(r.get(k)) for k in ("EER", "FNMR@FMR1%", "FNMR@FMR0.1%",
                                                                       "genuine_shift", "impostor_shift")}
        out["segmentation"] = {"segmenters": seg.get("segmenters"), "recognition": rec}
    return out


def num(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None

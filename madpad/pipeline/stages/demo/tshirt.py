"""Demo step 4, stage ``tshirt``: synthetic T-shirt presentation attacks built from the demo's
enrolment images (:func:`madpad.pad.synth.generate_set`) and scored with the rule-based
spatial-consistency detector (:class:`madpad.pad.tshirt.TshirtDetector`: MediaPipe pose + dlib
HOG faces; with ``yolo_weights`` also a YOLO person detector).

inputs: ``images``, ``data``. params: ``seed``, ``wearers``, ``bootstrap``, ``yolo_weights``.
outputs: ``synth/`` (images, manifest.csv, ATTRIBUTION.md, synth_config.json),
``detectors/<label>/`` (scores.csv, pad_report.json), ``status``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from madpad.errors import MadpadError
from madpad.pipeline.stages.demo.common import (
    StepRun,
    StepSkipped,
    first_line,
    run_step,
)
from madpad.pipeline.stages.demo.pad import pad_figures, pad_summary

SCORE_COLUMNS = ["id", "score", "label", "species", "status", "error", "n_faces", "n_persons", "fired"]


def tshirt(ctx) -> dict:
    return run_step(ctx, "tshirt", _tshirt)


def tshirt_detectors(yolo_weights: str | None) -> dict:
    """label -> (person detector spec, face detector spec) for :meth:`TshirtDetector.from_names`."""
    configs = {"pose+dlib_hog": ("mediapipe_pose", "dlib_hog")}
    if yolo_weights:
        configs["yolo+dlib_hog"] = (f"yolo:weights={Path(yolo_weights).expanduser().resolve()}", "dlib_hog")
    return configs


def synthesise(run: StepRun, synth_dir: Path) -> Path:
    """The synthetic set: wearers = ``wearers`` enrolment images (seeded choice), printed faces =
    every other subject's enrolment image; returns its manifest."""
    from madpad.pad.synth import (
        Source,
        SynthConfig,
        _read_tem_eyes,
        find_tem,
        generate_set,
    )

    sources = []
    for r in run.data.enrolment:
        tem = find_tem(Path(r.path))
        sources.append(Source(path=Path(r.path), subject=r.subject, eyes=_read_tem_eyes(tem) if tem else None))
    rng = np.random.default_rng(run.seed)
    n = min(int(run.params.get("wearers", 12)), len(sources))
    wearers = [sources[i] for i in sorted(rng.choice(len(sources), size=n, replace=False))]
    run.echo(f"      synthesising T-shirt attacks for {n} wearer(s) -> {run.ctx.final_dir / synth_dir.name}")
    return generate_set(wearers=wearers, faces=sources, out_dir=synth_dir, cfg=SynthConfig(seed=run.seed),
                        progress=run.progress)


def _tshirt(run: StepRun) -> dict:
    from tqdm.auto import tqdm

    from madpad.data import read_table, write_table
    from madpad.io import atomic_write_json, read_image
    from madpad.pad.spatial import RuleConfig
    from madpad.pad.synth import SynthConfig
    from madpad.pad.tshirt import TshirtDetector

    n_bootstrap = int(run.params.get("bootstrap", 200))
    synth_dir = Path(run.ctx.outputs["synth"])
    manifest = synthesise(run, synth_dir)
    rows = read_table(manifest).rows
    if not rows:
        raise StepSkipped("the synthetic T-shirt generator made no image (see tshirt/synth/failures.csv)")
    rules = RuleConfig.from_dict({**RuleConfig().to_dict(), "no_face_score": 0.0})
    out = Path(run.ctx.outputs["detectors"])
    results = {}
    for label, (person, face) in tshirt_detectors(run.params.get("yolo_weights")).items():
        run.echo(f"      detector {label} (rules scorer)")
        try:
            pad = TshirtDetector.from_names(person=person, face=face, rules=rules)
        except (MadpadError, ImportError, ValueError) as exc:
            results[label] = {"status": "failed", "error": first_line(exc)}
            continue
        scores, status, errors, expl = [], [], [], []
        for r in tqdm(rows, desc=f"T-shirt PAD {label}", unit="img", disable=not run.progress):
            try:
                res = pad.analyze(read_image(synth_dir / r["path"]))
                scores.append(float(res.score))
                status.append("ok")
                errors.append("")
                expl.append(res.row())
            except (MadpadError, ValueError, RuntimeError, OSError) as exc:
                scores.append(float("nan"))
                status.append("failed")
                errors.append(first_line(exc))
                expl.append({})
        close = getattr(pad.person_detector, "close", None)
        if close:
            close()
        score_rows = [{"id": r["id"], "score": s, "label": r["label"], "species": r["species"] if
                       r["label"] == "attack" else "", "status": st, "error": e,
                       "n_faces": x.get("n_faces", ""), "n_persons": x.get("n_persons", ""),
                       "fired": x.get("fired", "")} for r, s, st, e, x in zip(rows, scores, status, errors, expl)]
        sf = write_table(out / label / "scores.csv", score_rows, columns=SCORE_COLUMNS)
        rep = pad_figures(scores, rows, status, n_bootstrap=n_bootstrap, seed=run.seed,
                          title=f"T-shirt PAD {label}", subjects=[r["subject"] for r in rows])
        rep_path = atomic_write_json(out / label / "pad_report.json", rep)
        results[label] = {"status": "ok", "person_detector": person.split(":")[0], "face_detector": face,
                          "scores": run.rel(sf), "report": run.rel(rep_path), **pad_summary(rep)}
    counts: dict = {}
    for r in rows:
        key = r["species"] if r["label"] == "attack" else f"bona fide ({r['capture']})"
        counts[key] = counts.get(key, 0) + 1
    return {"images": len(rows), "wearers": len({r["subject"] for r in rows}), "counts": counts,
            "synth_manifest": run.rel(manifest), "detectors": results, "synth_config": asdict(SynthConfig(seed=run.seed))}

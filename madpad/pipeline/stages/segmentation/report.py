"""Stage 9 of the segmentation study: one self-contained HTML report (tables, DET plots, example
masks) built from the stage outputs with madpad.report.html."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from madpad.pipeline.stages._common import read_csv

ATTRIBUTION = ("Images: Face Research Lab London Set, Lisa DeBruine and Benedict Jones (2017), figshare, "
               "doi:10.6084/m9.figshare.5047666.v5, CC BY 4.0 (when the study runs on FRLL); with the extra data "
               "sets also Young Adult White Faces with Manipulated Versions, Lisa DeBruine and Benedict Jones (2017), "
               "figshare, doi:10.6084/m9.figshare.4220517.v1, CC BY 4.0, and the selfie images of the same authors' "
               "stimulus collection (webmorphR.stim), CC BY 4.0. Changes: resized, backgrounds segmented and "
               "replaced, simulated live captures made from photos, morphs made from pairs of subjects.")


def _f(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return v
    return x


def _numeric_rows(rows: list[dict]) -> list[dict]:
    return [{k: _f(v) if k not in ("model", "condition", "segmenter", "variant", "detector", "dataset", "kind",
                                    "unit") else v
             for k, v in r.items()} for r in rows]


def example_strip(ctx, *, n_examples: int = 3, thumb: int = 150) -> tuple[np.ndarray | None, list[str]]:
    """A grid image: one row per example subject: original, then (matte | composite) per segmenter."""
    import cv2

    from madpad.io import read_image

    folder = Path(ctx.inputs["images"])
    rows = [r for r in read_csv(ctx.inputs["table"]) if r["role"] == "reference"]
    seg = read_csv(ctx.inputs["segmented_table"])
    seg_dir = Path(ctx.inputs["segmented"])
    labels = sorted({r["segmenter"] for r in seg})
    ok = {(r["segmenter"], r["id"]): r for r in seg if r["status"] == "ok"}
    picked = [r for r in rows if all((s, r["id"]) in ok for s in labels)][:n_examples]
    if not picked:
        return None, labels

    def tile(img):
        return cv2.resize(img, (thumb, thumb), interpolation=cv2.INTER_AREA)

    grid = []
    for r in picked:
        cells = [tile(read_image(folder / r["file"]))]
        for s in labels:
            matte = read_image(seg_dir / ok[(s, r["id"])]["matte"])
            comp = read_image(seg_dir / ok[(s, r["id"])]["file"])
            cells += [tile(matte), tile(comp)]
        grid.append(np.hstack(cells))
    return np.vstack(grid), labels


def _mad_det_figures(path, H, det_plot) -> list[str]:
    """One DET plot per detector: the (unsegmented) attacks against each bona fide condition."""
    from madpad.metrics.pad import det_curve

    rows = read_csv(path)
    out = []
    for det in sorted({r["detector"] for r in rows}):
        rs = [r for r in rows if r["detector"] == det]
        att = [float(r["score"]) for r in rs if r["label"] == "attack"]
        conds = sorted({r["condition"] for r in rs if r["label"] == "bona_fide"}, key=lambda c: (c != "original", c))
        curves = {}
        for c in conds:
            bf = [float(r["score"]) for r in rs if r["label"] == "bona_fide" and r["condition"] == c]
            if att and bf:
                dc = det_curve(bf + att, ["bona_fide"] * len(bf) + ["attack"] * len(att))
                curves[f"bona fide: {c}"] = (dc.apcer, dc.bpcer)
        if curves:
            fig = det_plot(curves, title=f"{det}: D-MAD DET (attacks: original morphs)", figsize=(6.5, 6.0),
                           limits=(0.005, 0.95))
            out.append(H.image(H.figure_to_data_uri(fig), alt=f"MAD DET {det}"))
    return out


def fr_notes(ctx) -> list[str]:
    """Notes on the FR models: those skipped by the embed stage, and that faceapi_resnet128 is a
    port of dlib's ResNet (not an independent system) when both ran."""
    notes = []
    if "embeddings" in ctx.inputs:
        f = Path(ctx.inputs["embeddings"]) / "notes.json"
        if f.is_file():
            data = json.loads(f.read_text(encoding="utf-8"))
            notes += list(data.get("notes", []))
            models = data.get("models", [])
            if "faceapi_resnet128" in models and "dlib" in models:
                notes.append("faceapi_resnet128 is face-api.js's port of dlib's ResNet (cosine 0.9997 with dlib on "
                             "the same crops): its rows repeat dlib's and are not evidence from an independent system.")
    return notes


def shift_section(shifts: list[dict], H) -> list:
    """The paired score shifts with intervals and decision changes, and per data set a
    segmenter x FR model matrix of the genuine shift (segmented enrolment vs original probe)."""
    body = [H.paragraph(
        "Paired shift = mean over the comparisons made in both conditions of (score in the condition - score "
        "with original images), per data set (reference subject's) and kind; [low, high] = 95 % percentile "
        "bootstrap interval resampling whole reference subjects (single comparisons where a data set has fewer "
        "than 5 subjects, e.g. the one selfie subject). lost / gained at t(x): comparisons whose decision at the "
        "original-vs-original threshold at FMR x changes: genuine matches lost (new false non-matches) and "
        "gained; impostor false matches removed (lost) and added (gained).")]
    tags = sorted({k.split("@t", 1)[1] for k in shifts[0] if k.startswith("lost@t")})
    rows = []
    for r in shifts:
        row = {"model": r["model"], "condition": r["condition"], "data set": r["dataset"], "kind": r["kind"],
               "n": r["n"], "shift [95% CI]": _ci(r)}
        for t in tags:
            row[f"lost / gained @t{t}"] = f"{int(_f(r.get(f'lost@t{t}')) or 0)} / {int(_f(r.get(f'gained@t{t}')) or 0)}"
        rows.append(row)
    body.append(H.table(rows))
    models = sorted({r["model"] for r in shifts})
    segs = sorted({r["segmenter"] for r in shifts})
    for ds in sorted({r["dataset"] for r in shifts}):
        m = []
        for seg in segs:
            row = {"segmenter (enrolment segmented)": seg}
            for model in models:
                r = next((x for x in shifts if x["model"] == model and x["segmenter"] == seg and x["dataset"] == ds
                          and x["kind"] == "genuine" and x["condition"] == f"{seg}_vs_original"), None)
                row[model] = "" if r is None else _ci(r, star=True)
            m.append(row)
        body.append(H.paragraph(f"Genuine score shift, data set {ds}: segmented enrolment vs original probe "
                                "(* = the 95 % interval excludes 0)."))
        body.append(H.table(m))
    return body


def _ci(r: dict, *, star: bool = False) -> str:
    s, lo, hi = _f(r.get("shift")), _f(r.get("ci_low")), _f(r.get("ci_high"))
    if not isinstance(s, float) or math.isnan(s):
        return "n/a"
    mark = "*" if star and isinstance(lo, float) and (lo > 0 or hi < 0) else ""
    return f"{s:+.4f} [{lo:+.4f}, {hi:+.4f}]{mark}"


def build_report(ctx) -> tuple[str, dict]:
    from madpad.report import html as H
    from madpad.report.plots import det_plot

    p = ctx.params
    rec = _numeric_rows(read_csv(ctx.inputs["recognition"]))
    with open(ctx.inputs["det"], encoding="utf-8") as fh:
        det = json.load(fh)
    qsum = _numeric_rows(read_csv(ctx.inputs["quality_summary"]))
    dtab = _numeric_rows(read_csv(ctx.inputs["detection"]))
    with open(ctx.inputs["detection_notes"], encoding="utf-8") as fh:
        dnotes = json.load(fh)
    seg = read_csv(ctx.inputs["segmented_table"])
    images = [r for r in read_csv(ctx.inputs["table"]) if (r.get("status") or "ok") == "ok"]
    sections = []
    n_subj = len({r["subject"] for r in images})
    seg_labels = sorted({r["segmenter"] for r in seg})
    intro = [H.paragraph(
        f"{n_subj} subjects, one reference (enrolment) and one or more probe images each. Every image was segmented with "
        f"{', '.join(seg_labels)} and its background replaced ({p.get('background', 'white')}). "
        "FR scores are cosine similarities of L2-normalised embeddings (higher = same person; match when "
        "score >= threshold). MAD scores: higher = more likely attack; attack when score >= threshold."),
        H.note(ATTRIBUTION)]
    variation = max((float(r.get("variation") or 0) for r in images), default=0.0)
    if variation > 0:
        intro.append(H.paragraph(
            f"Probe images are simulated live captures (madpad.mad.pairs.vary_live_capture, strength {variation:g}: "
            "crop, shift, rotation, colour, blur, noise and JPEG, seeded per image) of the subject's second photo; "
            "they serve as FR probes and as the trusted live capture of the D-MAD pairs."))
    if p.get("note"):
        intro.append(H.note(str(p["note"])))
    intro += [H.note(n) for n in fr_notes(ctx)]
    datasets = sorted({r.get("dataset", "") for r in images} - {""})
    if len(datasets) > 1:
        per = {d: len({r["subject"] for r in images if r.get("dataset") == d}) for d in datasets}
        intro.append(H.paragraph("Data sets: " + ", ".join(f"{d} ({n} subjects)" for d, n in per.items())
                                 + ". The morphs (and the D-MAD pairs) come from the first one only."))
    sections.append(H.section("Study", intro))

    # segmentation summary
    seg_notes = {}
    if "segment_notes" in ctx.inputs:
        with open(ctx.inputs["segment_notes"], encoding="utf-8") as fh:
            seg_notes = json.load(fh)
    secs = seg_notes.get("seconds_per_image", {})
    seg_rows = []
    for s in seg_labels:
        rs = [r for r in seg if r["segmenter"] == s]
        ok = [r for r in rs if r["status"] == "ok"]
        seg_rows.append({"segmenter": s, "images": len(rs), "ok": len(ok), "failed": len(rs) - len(ok),
                         "mean foreground share": float(np.mean([float(r["foreground_share"]) for r in ok]))
                         if ok else float("nan"),
                         "median seconds / image": float(secs.get(s, {}).get("median", float("nan")))})
    body = [H.table(seg_rows, floatfmt=".3f")]
    for n in seg_notes.get("notes", []):
        body.append(H.note(n))
    grid, labels = example_strip(ctx)
    if grid is not None:
        body.append(H.image(H.image_to_data_uri(grid, max_side=1400, quality=80), alt="example masks",
                            caption="Each row: original, then matte and white-background composite for: "
                                    + ", ".join(labels)))
    sections.append(H.section("Segmentation", body))

    # recognition
    body = []
    cols = ["model", "condition", "n_genuine", "n_impostor", "FNMR@FMR0.1%", "FNMR@FMR1%", "EER",
            "FNMR@baseline_t0.1%", "FMR@baseline_t0.1%", "FNMR@baseline_t1%", "FMR@baseline_t1%",
            "genuine_mean", "genuine_shift", "impostor_mean", "impostor_shift"]
    cols = [c for c in cols if rec and c in rec[0]]
    body.append(H.paragraph(
        "Conditions: <segmenter>_vs_original = segmented enrolment photo against the original probe (a live "
        "capture on its real background); original_vs_<segmenter> = the reverse; <segmenter>_vs_<segmenter> = "
        "both segmented. FNMR@FMR x: threshold set on the condition's own impostor scores (FMR <= x, conservative). "
        "FNMR/FMR@baseline_t x: at the threshold of the original-vs-original condition (the deployed system's "
        "threshold does not change when the enrolment images are segmented). Shifts are differences of the "
        "mean scores against original-vs-original. With n genuine comparisons, one FNMR step is 1/n."))
    body.append(H.table(rec, cols, floatfmt=".4f"))
    for model, curves in det.items():
        c = {k: (v["fmr"], v["fnmr"]) for k, v in curves.items() if v["fmr"]}
        if c:
            fig = det_plot(c, xlabel="FMR (%)", ylabel="FNMR (%)", title=f"{model}: verification DET",
                           limits=(0.0005, 0.6), figsize=(6.5, 6.0))
            body.append(H.image(H.figure_to_data_uri(fig), alt=f"DET {model}"))
    sections.append(H.section("Face recognition effect", body))

    # paired score shifts, decision changes, and which segmenter moves which system
    shifts = _numeric_rows(read_csv(ctx.inputs["shifts"])) if "shifts" in ctx.inputs else []
    if shifts:
        sections.append(H.section("Score shifts and decision changes", shift_section(shifts, H)))

    # quality
    qcols = ["variant", "n", "no_face_or_failed", "sharpness", "delta_sharpness", "exposure_mean",
             "exposure_clipped", "background_std", "delta_background_std", "background_spread",
             "delta_background_spread", "q_background_uniformity",
             "inter_eye_distance", "yaw", "roll", "utility", "delta_utility"]
    qcols = [c for c in qcols if qsum and any(c in r for r in qsum)]
    sections.append(H.section("Image quality effect", [
        H.paragraph("ISO/IEC 29794-5-style measures (madpad.quality, own implementation; not OFIQ): sharpness = "
                    "variance of the Laplacian of the face region at 64 px inter-eye distance; exposure = mean "
                    "luminance and clipped share of the face region; background_std = luminance std of the background "
                    "beside and above the head (above the chin, outside the head box; raised by hair or clutter left "
                    "on the new background); background_spread = robust spread (1.4826 x MAD) of the same pixels "
                    "(uniformity of the backdrop itself; q_background_uniformity maps it to 0..100); utility = cosine similarity to the subject's other original image. Faces are "
                    "re-detected on each image. Deltas are paired against the original images."),
        H.table(qsum, qcols, floatfmt=".3f")]))

    # detection
    body = [H.paragraph(
        f"Differential MAD. Attack set: {dnotes.get('n_morphs', 0)} landmark morphs "
        f"({dnotes.get('n_attack_pairs', 0)} (morph, contributor's live probe) pairs); bona fide: "
        f"{dnotes.get('n_bona_fide_pairs', 0)} (reference, own probe) pairs. Thresholds are fixed at APCER "
        "<= 20/10/1 % on the original images (attack when score >= threshold); in the BPCER rows the column "
        "'original' is the bona fide error on original references and each segmenter's column the error on "
        "its segmented references at the same threshold. The D-EER row pairs each bona fide condition with "
        "the (unsegmented) attacks.")]
    for n in dnotes.get("notes", []):
        body.append(H.note(n))
    if dtab:
        dcols = list(dtab[0].keys())
        for r in dtab:
            for k in r:
                if k not in dcols:
                    dcols.append(k)
        body.append(H.table(dtab, dcols, floatfmt=".4f"))
    if "pad_scores" in ctx.inputs:
        body += _mad_det_figures(ctx.inputs["pad_scores"], H, det_plot)
    sections.append(H.section("Morphing attack detection effect", body))
    summary = {"subjects": n_subj, "segmenters": seg_labels, "recognition": rec, "quality": qsum,
               "detection": dtab, "detection_notes": dnotes, "shifts": shifts, "fr_notes": fr_notes(ctx)}
    return H.page("Background segmentation study", sections,
                  subtitle="Effect of background replacement on face recognition, quality and MAD"), summary


def report(ctx) -> dict:
    """One self-contained HTML report (tables, DET plots, example masks). outputs ``html`` and,
    when declared, ``summary`` (the report's figures as JSON)."""
    from madpad.io import atomic_write_json, atomic_write_text

    html, summary = build_report(ctx)
    atomic_write_text(ctx.outputs["html"], html)
    if "summary" in ctx.outputs:
        atomic_write_json(ctx.outputs["summary"], summary)
    return {"bytes": len(html)}

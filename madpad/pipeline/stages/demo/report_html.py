"""The demo's self-contained ``report.html`` (stage ``report`` of ``pipelines/demo.yaml``).

:func:`render_report` turns the ``report.json`` document (:mod:`.report`) into one page built
from :mod:`madpad.report.html` blocks: inline CSS, every image a base64 ``data:`` URI. Figures
and thumbnails are read from the files the steps wrote into the run folder ``out``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from madpad.pipeline.stages.demo.report import num as _num


def _pct(v: Any, digits: int = 1) -> str:
    x = _num(v)
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


# =========================================================================== HTML
def render_report(out: Path, doc: Mapping) -> str:
    """The HTML page of ``doc`` (figures read from the run folder ``out``)."""
    from madpad.report import html as H

    sections = [_overview(doc, H)]
    renderers = {"generate": _generate_section, "vulnerability": _vulnerability_section, "detect": _detect_section,
                 "tshirt": _tshirt_section, "segmentation": _segmentation_section}
    for name, fn in renderers.items():
        st = doc["steps"][name]
        title = f"{_NUMBERS[name]}. {_SECTION_TITLES[name]}"
        if st["status"] != "ok":
            msg = {"not run": "Not run (not in --steps and no finished output in this folder).",
                   "skipped": f"Skipped: {st.get('reason')}",
                   "failed": f"Failed: {st.get('error')}" + (f" (details in {st['log']})" if st.get("log") else "")}.get(st["status"], st["status"])
            sections.append(H.section(title, H.note(msg), anchor=name))
            continue
        try:
            body = fn(out, doc["results"][name], H)
        except Exception as exc:  # noqa: BLE001 - a broken figure must not lose the rest of the report
            body = [H.note(f"This section could not be rendered: {type(exc).__name__}: {exc}")]
        sections.append(H.section(title, body, anchor=name))
    sections.append(_attribution_section(doc, H))
    return H.page("madpad demo report", sections,
                  subtitle=f"{doc['data']['description']} - {doc['data']['subjects']} subjects - madpad "
                           f"{doc['madpad_version']}",
                  footer=f"Command: {doc['command']}")


_NUMBERS = {"generate": 1, "vulnerability": 2, "detect": 3, "tshirt": 4, "segmentation": 5}
_SECTION_TITLES = {
    "generate": "Morph generation (landmark morphs)",
    "vulnerability": "Face-recognition vulnerability (every FR system found)",
    "detect": "Differential morphing attack detection",
    "tshirt": "T-shirt presentation attacks",
    "segmentation": "Background segmentation study",
}


def _overview(doc, H) -> str:
    rows = []
    for name, st in doc["steps"].items():
        rows.append({"step": f"{_NUMBERS[name]}. {name}", "what": st["title"], "status": st["status"],
                     "seconds": st.get("seconds"), "note": st.get("reason") or st.get("error") or ""})
    figs = doc.get("figures", {})
    headline = []
    vul = figs.get("vulnerability", {})
    for m, v in vul.items():
        a = v.get("0.001") or next(iter(v.values()), {})
        headline.append(f"MMPMR of {m} morphs at FMR 0.1%: {_pct(a.get('mmpmr'))}")
    det = figs.get("detect", {})
    for d, v in det.items():
        headline.append(f"D-MAD {d}: D-EER {_pct(v.get('d_eer'))}")
    tsh = figs.get("tshirt", {})
    for d, v in tsh.items():
        headline.append(f"T-shirt PAD {d}: D-EER {_pct(v.get('d_eer'))}")
    body = [
        H.paragraph("madpad generated face morphs, measured how often a face-recognition system accepts them, trained "
                    "and evaluated differential morphing attack detectors, built and detected synthetic T-shirt "
                    "presentation attacks and ran a short background-segmentation study. Scores are 'higher = more "
                    "likely attack' throughout, and a score at or above the threshold is classified as an attack."),
        H.table(rows, ["step", "what", "status", "seconds", "note"], floatfmt=".1f"),
    ]
    if headline:
        body.append("<ul>" + "".join(f"<li>{H.escape(h)}</li>" for h in headline) + "</ul>")
    body.append(H.note("Small sample: the figures have wide confidence intervals and serve to show the tools, "
                       "not to rank methods. Point the demo at a larger set with --data/--root."))
    m = doc["machine"]
    body.append(H.definition_list({"data": doc["data"]["description"], "subjects": doc["data"]["subjects"],
                                   "wall time of this run (s)": doc["seconds"],
                                   "time of the steps shown (s)": sum(float(st.get("seconds") or 0)
                                                                      for st in doc["steps"].values()),
                                   "machine": f"{m['platform']}, {m['cpus']} CPUs, Python {m['python']}",
                                   "command": doc["command"]}, floatfmt=".1f"))
    for n in doc["data"].get("notes", []):
        body.append(H.note(n))
    return H.section("Overview", body, anchor="overview")


# --------------------------------------------------------------------------- 1. generate
def _generate_section(out: Path, res, H) -> list[str]:
    from madpad.io import read_image

    rows = [{"method": m, "requested": v["requested"], "made": v["made"], "reused (resume)": v["reused"],
             "failed": v["failed"], "seconds": v["seconds"]} for m, v in res["methods"].items()]
    body = [H.paragraph(f"{res['pairs']} same-gender pairs of enrolment (neutral) photos, chosen inside the "
                        f"subject-disjoint train/test split ({res['pairs_per_split'].get('train', 0)} train, "
                        f"{res['pairs_per_split'].get('test', 0)} test), alpha 0.5. Pair list: {res['pairs_csv']}."),
            H.table(rows, floatfmt=".1f")]
    for n in res.get("notes", []):
        body.append(H.note(n))
    for m, v in res["methods"].items():
        for f in v.get("failures", [])[:5]:
            body.append(H.note(f"{m}: {f['id']} failed: {f['error']}"))
    # thumbnails: contributor A | full morph | spliced morph | contributor B
    from madpad.data import load_morphs

    per_method = {}
    for m, v in res["methods"].items():
        try:
            per_method[m] = {r.id: r for r in load_morphs(out / v["manifest"]) if r.ok}
        except Exception:  # noqa: BLE001
            per_method[m] = {}
    first = next(iter(per_method.values()), {})
    items = []
    for mid in list(first)[:4]:
        r0 = first[mid]
        try:
            items.append((H.image_to_data_uri(read_image(r0.a), max_side=160), f"A: subject {r0.subject_a}"))
            for m, recs in per_method.items():
                if mid in recs:
                    items.append((H.image_to_data_uri(read_image(recs[mid].path), max_side=160), f"{m}"))
            items.append((H.image_to_data_uri(read_image(r0.b), max_side=160), f"B: subject {r0.subject_b}"))
        except Exception:  # noqa: BLE001, S112 - a missing thumbnail is not worth failing the report
            continue
    if items:
        body.append(H.paragraph("Examples (each row: contributor A, the morphs, contributor B):"))
        n_cols = 2 + len(per_method)
        for i in range(0, len(items), n_cols):
            body.append(H.gallery(items[i:i + n_cols], width=140))
    return body


# --------------------------------------------------------------------------- 2. vulnerability
def _fr_systems_tables(res, H) -> list[str]:
    """Per FR system MMPMR / ProdAvg-MMPMR / RMMR and the MAP matrix (attempts x number of
    systems) of each morph method, when the step ran several systems."""
    systems = res.get("fr_systems") or ["dlib"]
    body = [H.paragraph(f"FR systems: {', '.join(systems)} (each with its own thresholds at FMR 0.1 % and 1 %, set "
                        "on the bona fide comparisons). MAP[r][c] (ISO/IEC 20059): share of morphs verified "
                        "against every contributor in at least r probe attempts by at least c systems.")]
    for m, v in res["methods"].items():
        if v.get("status") != "ok" or "systems" not in v:
            continue
        rows = [{"morph method": m, "FR system": n, "target FMR": f"{float(k):.1%}", "threshold": a["threshold"],
                 "FNMR": _pct(a["fnmr"]), "MMPMR": _pct(a["mmpmr"]), "ProdAvg-MMPMR": _pct(a["prodavg_mmpmr"]),
                 "RMMR": _pct(a["rmmr"])}
                for n, e in v["systems"].items() for k, a in e["at_fmr"].items()]
        body.append(H.table(rows, floatfmt=".4f"))
        for k, mp in (v.get("map") or {}).items():
            C = len(mp["systems"])
            mrows = [{"probe attempts >=": r, **{f">= {c} system{'s' if c > 1 else ''}": _pct(row[c - 1])
                                                 for c in range(1, C + 1)}}
                     for r, row in enumerate(mp["matrix"], start=1)]
            body.append(H.paragraph(f"{m}: MAP at FMR {float(k):.1%} ({mp['n_morphs']} morphs; systems "
                                    f"{', '.join(mp['systems'])})"))
            body.append(H.table(mrows))
    return body


def _vulnerability_section(out: Path, res, H) -> list[str]:
    from madpad.report.plots import score_histogram
    from madpad.report.scores import read_comparison_scores

    rows = []
    for m, v in res["methods"].items():
        if v.get("status") != "ok":
            rows.append({"morph method": m, "target FMR": "-", "MMPMR": v.get("reason", "")})
            continue
        for fmr, a in v["at_fmr"].items():
            rows.append({"morph method": m, "target FMR": f"{float(fmr):.1%}", "threshold": a["threshold"],
                         "realised FMR": _pct(a["fmr"], 2), "FNMR": _pct(a["fnmr"]), "MMPMR": _pct(a["mmpmr"]),
                         "ProdAvg-MMPMR": _pct(a["prodavg_mmpmr"]), "RMMR": _pct(a["rmmr"]),
                         "morphs": v["n_morphs"], "genuine / impostor": f"{v['n_genuine']} / {v['n_impostor']}"})
    body = [H.paragraph("Each morph is enrolled and compared with the probe (smiling) photo of each contributor "
                        "(dlib ResNet embeddings, cosine similarity). MMPMR counts a morph when it matches every "
                        "contributor; ProdAvg-MMPMR multiplies the per-contributor match rates; RMMR = 1 + MMPMR - "
                        "TMR. Thresholds come from the bona fide genuine/impostor comparisons of the same images."),
            H.table(rows, floatfmt=".4f")]
    body += _fr_systems_tables(res, H)
    notes = sorted({n for v in res["methods"].values() for n in v.get("notes", [])})
    for n in list(res.get("fr_notes", [])) + notes:
        body.append(H.note(n))
    figs = []
    for m, v in res["methods"].items():
        if v.get("status") != "ok":
            continue
        t = read_comparison_scores(out / v["comparisons"])
        groups = {k: t.score[(t.kind == k) & (t.system == "dlib")] for k in ("genuine", "impostor", "morph")}
        thr = {f"FMR {float(k):.1%}": a["threshold"] for k, a in v["at_fmr"].items() if _num(a["threshold"]) is not None}
        fig = score_histogram(groups, thresholds=thr, xlabel="dlib comparison score (higher = more similar)",
                              title=f"{m} morphs vs contributors' probes", figsize=(5.6, 3.4), bins=30)
        figs.append(H.image(H.figure_to_data_uri(fig), alt=f"score histogram {m}", width=480,
                            caption=f"{m}: genuine, impostor and morph comparison scores with the thresholds"))
    body += figs
    return body


# --------------------------------------------------------------------------- 3. detect / 4. tshirt (PAD)
def _det_figure(out: Path, detectors: Mapping, title: str, H):
    from madpad.report.plots import det_plot

    curves, points, n_min = {}, {}, 10 ** 9
    for label, v in detectors.items():
        if v.get("status") != "ok":
            continue
        rep = json.loads((out / v["report"]).read_text(encoding="utf-8"))
        c = rep["det_curve"]
        curves[label] = (np.asarray(c["apcer"], float), np.asarray(c["bpcer"], float))
        d = _num(rep.get("d_eer"))
        if d is not None:
            points[f"{label} D-EER {100 * d:.1f}%"] = (d, d)
        n_min = min([n_min, rep["n_bona_fide"]] + list(rep["species"].values()))
    if not curves:
        return None
    lo = max(0.5 / max(1, n_min), 0.002)
    fig = det_plot(curves, points=points, title=title, limits=(lo, 0.95), figsize=(6.0, 5.6))
    return H.image(H.figure_to_data_uri(fig), alt=f"DET {title}", width=520,
                   caption=f"{title}: APCER (max over species) against BPCER, normal-deviate axes")


def _pad_rows(detectors: Mapping) -> list[dict]:
    rows = []
    for label, v in detectors.items():
        if v.get("status") != "ok":
            rows.append({"detector": label, "D-EER": f"failed: {v.get('error', '')}"})
            continue
        ci = v.get("d_eer_ci")
        row = {"detector": label, "bona fide": v["n_bona_fide"], "attack": v["n_attack"],
               "not scored (failed)": v.get("n_failed", 0), "D-EER": _pct(v["d_eer"]),
               "D-EER 95% CI": f"[{_pct(ci[0])}, {_pct(ci[1])}]" if ci and ci[0] is not None else "n/a"}
        for k, b in v["bpcer_at_apcer"].items():
            row[f"BPCER @ APCER {float(k):.0%}"] = _pct(b)
        rows.append(row)
    return rows


def _species_rows(detectors: Mapping) -> list[dict]:
    rows = []
    for label, v in detectors.items():
        if v.get("status") != "ok":
            continue
        for sp, n in v["species"].items():
            rows.append({"detector": label, "attack species": sp, "n": n,
                         "D-EER vs bona fide": _pct(v["d_eer_per_species"].get(sp))})
    return rows


def _detect_section(out: Path, res, H) -> list[str]:
    counts = res["counts"]
    body = [H.paragraph(
        "Differential MAD: each pair is a suspect image (an enrolment photo or a morph) and a trusted live capture "
        "of the claimed subject. Live captures: " + res["live_capture"] + ". Detectors are trained on the train "
        "subjects and evaluated on the disjoint test subjects: "
        + "; ".join(f"{k}: {v['bona_fide']} bona fide + {v['attack']} attack pairs" for k, v in counts.items())
        + ". dlib_distance is the untrained 1 - cosine of the two dlib embeddings; dlib_diff_logreg / dlib_diff_svm "
        "classify the embedding difference (logistic regression / RBF SVM)."),
        H.table(_pad_rows(res["detectors"]))]
    if res.get("dropped_morphs"):
        body.append(H.note(f"{res['dropped_morphs']} morph(s) left out: contributors in different splits."))
    body += _det_and_species(out, res["detectors"], "D-MAD on the test subjects",
                             "Per attack species (morph method)", H)
    return body


def _det_and_species(out: Path, detectors, title: str, species_caption: str, H) -> list[str]:
    """The DET figure of ``detectors`` and their per-species table (each only when there is one)."""
    blocks = []
    fig = _det_figure(out, detectors, title, H)
    if fig:
        blocks.append(fig)
    sp = _species_rows(detectors)
    if sp:
        blocks.append(H.table(sp, caption=species_caption))
    return blocks


def _tshirt_section(out: Path, res, H) -> list[str]:
    from madpad.data import read_table
    from madpad.io import read_image

    body = [H.paragraph(
        f"{res['images']} synthetic images from {res['wearers']} wearers (madpad.pad.synth: a synthesised torso with "
        "another subject's face printed on the shirt; per species the wearer's face is visible, occluded, cropped "
        "out or replaced by hair). Detection: face detector + person detector + spatial-consistency rules (a real "
        "face sits in a person's head region). An image without a detected face scores 0 (counted as bona fide)."),
        H.table([{"class": k, "images": v} for k, v in res["counts"].items()]),
        H.table(_pad_rows(res["detectors"]))]
    body += _det_and_species(out, res["detectors"], "T-shirt PAD", "Per attack species", H)
    # one example per class
    synth = out / res["synth_manifest"]
    try:
        rows = read_table(synth).rows
        seen, items = set(), []
        for r in rows:
            key = r["species"] or f"bona fide ({r['capture']})"
            if key in seen:
                continue
            seen.add(key)
            items.append((H.image_to_data_uri(read_image(synth.parent / r["path"]), max_side=220), key))
        if items:
            body.append(H.gallery(items, width=170))
    except Exception as exc:  # noqa: BLE001
        body.append(H.note(f"examples not shown: {exc}"))
    return body


# --------------------------------------------------------------------------- 5. segmentation
def _segmentation_section(out: Path, res, H) -> list[str]:
    from madpad.io import read_image

    body = [H.paragraph(
        f"{res['subjects']} subjects through the stages of the segmentation-study pipeline ({res['pipeline']}, run "
        "as the seg_* stages of demo.yaml: local "
        f"executor, content-addressed stage cache): segmenters {', '.join(res['segmenters'])}; backgrounds replaced "
        "with white; effect on dlib face recognition and on the untrained D-MAD distance. Full study report: "
        f"{res['study_report']}.")]
    seg_rows = [{"segmenter": k, "segmented": v["ok"], "failed": v["failed"],
                 "mean foreground share": v.get("mean_foreground_share")} for k, v in res["segmenter_counts"].items()]
    body.append(H.table(seg_rows, floatfmt=".3f", caption="Segmentation"))
    rec_cols = ["condition", "EER", "FNMR@FMR1%", "FNMR@FMR0.1%", "genuine_mean", "genuine_shift", "impostor_shift"]
    rec = [{c: (_num(r.get(c)) if c != "condition" else r.get(c)) for c in rec_cols} for r in res["recognition"]]
    if rec:
        body.append(H.table(rec, rec_cols, floatfmt=".3f",
                            caption="Face recognition (dlib) per condition: reference vs probe, segmented or original"))
    det_rows = res.get("detection") or []
    if det_rows:
        cols = [c for c in det_rows[0] if c not in ("n_attack", "n_bona_fide")]
        body.append(H.table([{c: (r.get(c) if _num(r.get(c)) is None else _num(r.get(c))) for c in cols}
                             for r in det_rows], cols, floatfmt=".3f",
                            caption="D-MAD (untrained distance): thresholds fixed on original images, BPCER on "
                                    "segmented bona fide references"))
    for n in res.get("notes", []):
        body.append(H.note(n))
    # mattes: original + matte + composite of the first two images for each segmenter
    seg_dir = out / res["segmented_dir"]
    img_dir = out / res["images_dir"]
    items = []
    try:
        originals = sorted(p for p in img_dir.iterdir() if p.is_file())[:2]
        for orig in originals:
            items.append((H.image_to_data_uri(read_image(orig), max_side=150), f"original {orig.stem}"))
            for s in res["segmenters"]:
                matte = seg_dir / s / "mattes" / f"{orig.stem}.png"
                comp = seg_dir / s / f"{orig.stem}.jpg"
                if matte.is_file():
                    items.append((H.image_to_data_uri(read_image(matte), max_side=150, fmt="png"), f"{s} mask"))
                if comp.is_file():
                    items.append((H.image_to_data_uri(read_image(comp), max_side=150), f"{s} composite"))
    except OSError as exc:
        body.append(H.note(f"mask thumbnails not shown: {exc}"))
    if items:
        body.append(H.gallery(items, width=120))
    return body


# --------------------------------------------------------------------------- attribution
def _attribution_section(doc, H) -> str:
    body = []
    if doc["attribution"]["frll"]:
        body.append(H.paragraph("Images in this report are derived from: " + doc["attribution"]["frll"]
                                + " The subjects consented to the use of their photos \"in original or altered forms\" "
                                  "for research and illustration."))
    else:
        body.append(H.paragraph("Images in this report are derived from the user's images (see the data manifest); "
                                "their licence and attribution terms apply."))
    body.append(H.paragraph("What was changed:"))
    body.append("<ul>" + "".join(f"<li>{H.escape(c)}</li>" for c in doc["attribution"]["changes"]) + "</ul>")
    body.append(H.definition_list(doc["conventions"]))
    return H.section("Attribution and conventions", body, anchor="attribution")

"""Markdown and HTML of a PAD / MAD report (the dict :func:`madpad.report.pad.pad_report` returns):
operating-point, species, failure-to-acquire, dev->eval and NIST tables, the DET figure and the
self-contained HTML page."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from madpad.report.format import _ci_pct, _md_table, _pct, _thr


def _vocab(report: Mapping) -> dict:
    """Display names of the two error rates (ISO/IEC 30107-3 or ISO/IEC 20059)."""
    if report.get("kind") == "mad":
        return {"A": "MACER", "B": "BSCER", "attack": "morphing attack", "attacks": "morphing attacks"}
    return {"A": "APCER", "B": "BPCER", "attack": "attack", "attacks": "attacks"}


def _op_rows(report: Mapping, name: str) -> list[dict]:
    V = _vocab(report)
    rows = []
    for key, op in report[name].items():
        ci_field = "bpcer" if name == "bpcer_at_apcer" else "apcer"
        ci_name = V["B"] if ci_field == "bpcer" else V["A"]
        row = {
            "target": f"{float(key):.0%}" if float(key) >= 0.01 else key,
            "threshold": _thr(op["threshold"]),
            V["B"]: _pct(op["bpcer"]),
            f"{V['A']} (max)": _pct(op["apcer"]),
            f"{V['A']} pooled (non-ISO)": _pct(op["apcer_pooled"]),
            "ACER (non-ISO)": _pct(op["acer_non_iso"]),
            f"{ci_name} bootstrap CI": _ci_pct((op.get("ci") or {}).get(ci_field)),
            f"{V['B']} Wilson CI": _ci_pct(op["ci_binomial"]["bpcer"]),
        }
        if op.get("fta_as_errors"):
            row[f"{V['B']} / {V['A']} with FtA as errors"] = (f"{_pct(op['fta_as_errors']['bpcer'])} / "
                                                             f"{_pct(op['fta_as_errors']['apcer'])}")
        rows.append(row)
    return rows


def _species_rows(report: Mapping) -> list[dict]:
    V = _vocab(report)
    rows = []
    for sp, n in report["species"].items():
        row = {"species": sp, "n": n, "D-EER (vs bona fide)": _pct(report["d_eer_per_species"].get(sp))}
        for key, op in report["bpcer_at_apcer"].items():
            row[f"{V['A']} @ {V['B']}@{V['A']}={float(key):.0%}"] = _pct(op["apcer_per_species"].get(sp))
        for key, op in report["apcer_at_bpcer"].items():
            row[f"{V['A']} @ {V['A']}@{V['B']}={float(key):.0%}"] = _pct(op["apcer_per_species"].get(sp))
        rows.append(row)
    return rows


def _fta_rows(report: Mapping) -> list[dict]:
    f = report.get("failure_to_acquire")
    if not f:
        return []

    def row(name, b):
        st = ", ".join(f"{k} ({v})" for k, v in b["statuses"].items()) or "-"
        return {"class": name, "presentations": b["n_presentations"], "failed to acquire": b["n_failed"],
                "FtA rate": _pct(b["rate"]), "statuses": st}

    rows = [row("bona fide", f["bona_fide"]), row("attack (all species)", f["attack"])]
    rows += [row(f"species: {k}", b) for k, b in f["species"].items()]
    return rows


def _dev_eval_rows(report: Mapping) -> list[dict]:
    de = report.get("dev_eval")
    if not de:
        return []
    V = _vocab(report)
    rows = []
    for crit, label in (("bpcer_at_apcer", f"{V['B']}@{V['A']}"), ("apcer_at_bpcer", f"{V['A']}@{V['B']}")):
        for key, d in de[crit].items():
            per = ", ".join(f"{k} {_pct(v)}" for k, v in d["eval_apcer_per_species"].items())
            rows.append({"criterion on dev": f"{label}={float(key):.0%}" if float(key) >= 0.01 else f"{label}={key}",
                         "dev threshold": _thr(d["dev_threshold"]),
                         f"dev {V['B']}": _pct(d["dev_bpcer"]), f"dev {V['A']}": _pct(d["dev_apcer"]),
                         f"eval {V['B']}": _pct(d["eval_bpcer"]), f"eval {V['A']} (max)": _pct(d["eval_apcer"]),
                         f"eval {V['A']} per species": per})
    d = de["d_eer"]
    rows.append({"criterion on dev": f"D-EER ({_pct(d['dev_d_eer'])})", "dev threshold": _thr(d["dev_threshold"]),
                 f"dev {V['B']}": "", f"dev {V['A']}": "", f"eval {V['B']}": _pct(d["eval_bpcer"]),
                 f"eval {V['A']} (max)": _pct(d["eval_apcer"]),
                 f"eval {V['A']} per species": ", ".join(f"{k} {_pct(v)}"
                                                         for k, v in d["eval_apcer_per_species"].items())})
    return rows


def _nist_rows(report: Mapping) -> list[dict]:
    n = report.get("nist_fate_morph")
    if not n:
        return []
    rows = []
    for key, d in n["macer_at_bscer"].items():
        rows.append({"BSCER target": f"{float(key):.0%}", "threshold": _thr(d["threshold"]),
                     "MACER (max over species)": _pct(d["macer"]), "BSCER": _pct(d["bscer"]),
                     "MACER per species": ", ".join(f"{k} {_pct(v)}" for k, v in d["macer_per_species"].items()),
                     "MACER bootstrap CI": _ci_pct((d.get("ci") or {}).get("macer"))})
    return rows


def pad_report_markdown(report: Mapping) -> str:
    """Markdown rendering of a :func:`pad_report` dict."""
    V = _vocab(report)
    A, B = V["A"], V["B"]
    lines = [f"# {report['title']}", ""]
    if report.get("source"):
        lines += [f"Scores: `{report['source']}`", ""]
    lines += [f"- bona fide presentations: {report['n_bona_fide']}",
              f"- {V['attack']} presentations: {report['n_attack']} in {len(report['species'])} species "
              + ", ".join(f"{k} ({v})" for k, v in report["species"].items())]
    fta = report.get("failure_to_acquire")
    if fta and fta["n_failed"]:
        lines.append(f"- failed to acquire (no score): {fta['n_failed']} ({fta['bona_fide']['n_failed']} bona fide, "
                     f"{fta['attack']['n_failed']} {V['attack']}); excluded from the figures below, and counted as "
                     f"errors in the 'FtA as errors' columns")
    lines += [f"- **D-EER** ({A} max over species = {B}): **{_pct(report['d_eer'])}**"
              + (f", bootstrap CI {_ci_pct(report.get('d_eer_ci'))}" if report.get("d_eer_ci") else ""),
              f"- D-EER with pooled {A} (non-ISO): {_pct(report['d_eer_pooled'])}"]
    if fta and fta["n_failed"]:
        lines.append(f"- D-EER with failures to acquire counted as errors: {_pct(fta.get('d_eer_fta_as_errors'))}")
    lines.append("")
    if report.get("nist_fate_morph"):
        lines += ["## NIST FATE MORPH operating points (MACER at BSCER = 10% and 1%)", "",
                  _md_table(_nist_rows(report))]
    lines += [f"## {B} at {A} = x (conservative: {A} of every species <= x)", "",
              _md_table(_op_rows(report, "bpcer_at_apcer")),
              f"## {A} at {B} = x (conservative: {B} <= x)", "", _md_table(_op_rows(report, "apcer_at_bpcer")),
              "## Per attack species", "", _md_table(_species_rows(report))]
    if fta:
        lines += ["## Failures to acquire", "", _md_table(_fta_rows(report))]
    if report.get("dev_eval"):
        de = report["dev_eval"]
        lines += ["## Development -> evaluation (thresholds fixed on the dev scores)", "",
                  f"Dev scores: `{de['source']}` ({de['n_bona_fide_dev']} bona fide, {de['n_attack_dev']} "
                  f"{V['attacks']}).", "", _md_table(_dev_eval_rows(report))]
    ci = report.get("confidence_intervals")
    if ci:
        lines += [f"Confidence intervals: {ci['confidence']:.0%} {ci['method']}, {ci['n_resamples']} resamples, "
                  f"seed {ci['seed']}.", ""]
    lines += ["## Conventions", ""] + [f"- **{k}**: {v}" for k, v in report["conventions"].items()] + [""]
    for n in report.get("notes", []):
        lines += [f"> {n}", ""]
    return "\n".join(lines)


def det_figure(report: Mapping, *, title: str | None = None):
    """DET plot (APCER max, pooled, per species vs BPCER) from a :func:`pad_report` dict."""
    from madpad.report.plots import det_plot

    V = _vocab(report)
    c = report["det_curve"]
    main = f"{V['A']} (max over species)"
    curves = {main: (np.asarray(c["apcer"], float), np.asarray(c["bpcer"], float))}
    if len(report["species"]) > 1:
        curves[f"{V['A']} pooled (non-ISO)"] = (np.asarray(c["apcer_pooled"], float), np.asarray(c["bpcer"], float))
        for sp, a in c["apcer_per_species"].items():
            curves[f"species: {sp}"] = (np.asarray(a, float), np.asarray(c["bpcer"], float))
    d = report["d_eer"]
    pts = {f"D-EER {_pct(d)}": (d, d)} if d is not None and math.isfinite(d) else {}
    n_min = min([report["n_bona_fide"]] + list(report["species"].values()))
    lo = min(0.01, max(1e-4, 0.5 / max(1, n_min)))
    return det_plot(curves, points=pts, title=title, limits=(lo, 0.6), emphasize=main,
                    xlabel=f"{V['A']} (%)", ylabel=f"{V['B']} (%)")


def pad_report_html(report: Mapping, *, scores: Any = None, labels: Any = None, extra_sections: Sequence[str] = (),
                    groups: Mapping[str, np.ndarray] | None = None) -> str:
    """Self-contained HTML rendering (DET curve and score histogram embedded as PNG).

    The histogram comes from ``groups`` (label -> scores **sorted ascending**, counted with
    ``searchsorted``; what :func:`write_pad_report` passes) or from ``scores`` and ``labels``.
    """
    from madpad.report import html

    V = _vocab(report)
    A, B = V["A"], V["B"]
    secs = []
    summary = {
        "bona fide presentations": report["n_bona_fide"],
        f"{V['attack']} presentations": report["n_attack"],
        "attack species": ", ".join(f"{k} ({v})" for k, v in report["species"].items()),
        f"D-EER ({A} max over species)": _pct(report["d_eer"]),
        "D-EER bootstrap CI": _ci_pct(report.get("d_eer_ci")),
        "D-EER threshold (interpolated)": _thr(report["d_eer_detail"]["threshold"]),
        f"D-EER with pooled {A} (non-ISO)": _pct(report["d_eer_pooled"]),
        "score range": f"{_thr(report['score_range']['min'])} .. {_thr(report['score_range']['max'])}",
    }
    fta = report.get("failure_to_acquire")
    if fta and fta["n_failed"]:
        summary["failed to acquire (no score)"] = (f"{fta['n_failed']} ({fta['bona_fide']['n_failed']} bona fide, "
                                                   f"{fta['attack']['n_failed']} {V['attack']})")
        summary["D-EER with failures counted as errors"] = _pct(fta.get("d_eer_fta_as_errors"))
    body = [html.definition_list(summary)]
    for n in report.get("notes", []):
        body.append(html.note(n))
    secs.append(html.section("Summary", body))
    fig = det_figure(report)
    det_uri = html.figure_to_data_uri(fig)
    plot_body = [html.image(det_uri, alt="DET curve", caption=f"DET curve on normal-deviate axes. {A} is the "
                            f"maximum over attack species; rates of 0 are drawn on the border.")]
    thr = {f"{B}@{A}={float(k):.0%}": v["threshold"] for k, v in report["bpcer_at_apcer"].items()
           if k in ("0.05", "0.1")}
    xlabel = "score (higher = attack)" if report.get("higher_is_attack", True) else "score (higher = bona fide)"
    hist = None
    from madpad.report.plots import score_histogram

    if groups is not None:
        hist = score_histogram(groups, thresholds=thr, xlabel=xlabel, presorted=True)
    elif scores is not None and labels is not None:
        from madpad.metrics import parse_labels

        s = np.asarray(scores, dtype=float)
        is_att = parse_labels(labels)
        hist = score_histogram({"bona fide": s[~is_att], V["attack"]: s[is_att]}, thresholds=thr, xlabel=xlabel)
    if hist is not None:
        plot_body.append(html.image(html.figure_to_data_uri(hist), alt="score histogram",
                                    caption="Score distributions with two operating thresholds."))
    secs.append(html.section("DET curve", plot_body))
    if report.get("nist_fate_morph"):
        secs.append(html.section("NIST FATE MORPH operating points", [
            html.paragraph("MACER (maximum over morphing attack species) at the smallest threshold with BSCER at "
                           "most 10 % and 1 %, as NIST FATE MORPH reports morph detection."),
            html.table(_nist_rows(report))]))
    secs.append(html.section(f"{B} at {A} = x", [
        html.paragraph(f"Threshold: the largest score threshold at which the {A} of every attack species is at "
                       f"most x (conservative); attack when score >= threshold."),
        html.table(_op_rows(report, "bpcer_at_apcer"))]))
    secs.append(html.section(f"{A} at {B} = x", [
        html.paragraph(f"Threshold: the smallest score threshold at which {B} is at most x (conservative). "
                       f"{A} is the maximum over species."),
        html.table(_op_rows(report, "apcer_at_bpcer"))]))
    secs.append(html.section("Per attack species", html.table(_species_rows(report))))
    if fta:
        secs.append(html.section("Failures to acquire", [
            html.paragraph("Presentations without a score (status other than ok). The figures above exclude them "
                           "(count stated here); the 'FtA as errors' columns count every failure as an error of "
                           "its class, the other way ISO/IEC 30107-3 allows."),
            html.table(_fta_rows(report))]))
    if report.get("dev_eval"):
        de = report["dev_eval"]
        secs.append(html.section("Development -> evaluation", [
            html.paragraph(f"Thresholds chosen on the development scores ({de['source']}: {de['n_bona_fide_dev']} "
                           f"bona fide, {de['n_attack_dev']} {V['attacks']}) at every target, conservatively, and "
                           f"applied unchanged to the evaluation scores."),
            html.table(_dev_eval_rows(report))]))
    ci = report.get("confidence_intervals")
    if ci:
        rows = [{"figure": k, "estimate": _pct(v["estimate"]), "low": _pct(v["low"]), "high": _pct(v["high"]),
                 "invalid resamples": v["n_invalid"]} for k, v in ci["figures"].items()]
        secs.append(html.section("Confidence intervals", [
            html.paragraph(f"{ci['confidence']:.0%} percentile intervals, {ci['method']}, {ci['n_resamples']} "
                           f"resamples (seed {ci['seed']}); thresholds re-chosen in every resample."),
            html.table(rows)]))
    hard = report.get("hardest")
    if hard:
        secs.append(html.section("Hardest examples", [
            html.table(hard["bona_fide_highest"], ["id", "score"], floatfmt=".6g",
                       caption="Bona fide presentations with the highest scores"),
            html.table(hard["attack_lowest"], ["id", "species", "score"], floatfmt=".6g",
                       caption=f"{V['attack'].capitalize()} presentations with the lowest scores")]))
    secs.extend(extra_sections)
    secs.append(html.section("Conventions", html.definition_list(report["conventions"])))
    sub = f"Scores: {report['source']}" if report.get("source") else None
    return html.page(report["title"], secs, subtitle=sub, footer=f"madpad {report.get('madpad_version', '')}")

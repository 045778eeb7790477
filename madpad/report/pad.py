"""ISO/IEC 30107-3 PAD report: ``report.json``, ``report.md`` and a self-contained ``report.html``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> scores = np.r_[rng.normal(0, 1, 200), rng.normal(3, 1, 100)]
>>> labels = ["bona_fide"] * 200 + ["attack"] * 100
>>> species = [""] * 200 + ["print"] * 50 + ["replay"] * 50
>>> r = pad_report(scores, labels, species, n_bootstrap=0)
>>> r["n_bona_fide"], r["n_attack"], r["species"], sorted(r["bpcer_at_apcer"])
(200, 100, {'print': 50, 'replay': 50}, ['0.01', '0.05', '0.1', '0.2'])
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

import madpad
from madpad.errors import ManifestError
from madpad.io import atomic_write_json, atomic_write_text
from madpad.metrics import PadScores, binomial_ci, pad_bootstrap
from madpad.report.scores import PadScoreTable, read_pad_scores

__all__ = ["DEFAULT_TARGETS", "CONVENTIONS", "pad_report", "pad_report_markdown", "pad_report_html",
           "write_pad_report", "clean_json"]

DEFAULT_TARGETS = (0.01, 0.05, 0.1, 0.2)

CONVENTIONS = {
    "score_direction": "higher score = more likely attack",
    "tie_rule": "classified attack when score >= threshold",
    "apcer": "maximum over attack species of the per-species APCER (ISO/IEC 30107-3); per-species values alongside",
    "apcer_pooled": "all attack species pooled into one class; NOT the ISO APCER, reported for reference only",
    "acer_non_iso": "(APCER + BPCER) / 2; not an ISO/IEC 30107-3 metric",
    "bpcer_at_apcer": "BPCER at the largest threshold where the APCER of every species is <= target (conservative)",
    "apcer_at_bpcer": "APCER (max over species) at the smallest threshold where BPCER <= target (conservative)",
    "d_eer": "APCER (max over species) = BPCER, linear interpolation between the operating points of the two "
             "bracketing score thresholds",
    "confidence_intervals": "percentile bootstrap; thresholds re-chosen in every replicate; resampling by subject "
                            "when a subject column is given, else by sample within each class/species",
}


def clean_json(obj: Any) -> Any:
    """NaN/inf -> None, numpy scalars/arrays -> Python, recursively (strict JSON)."""
    if isinstance(obj, Mapping):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean_json(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def _key(x: float) -> str:
    return f"{x:g}"


def _as_table(data: Any) -> PadScoreTable:
    if isinstance(data, PadScoreTable):
        return data
    if isinstance(data, (str, Path)):
        return read_pad_scores(data)
    if isinstance(data, Mapping):
        return PadScoreTable.from_arrays(data["scores"], data["labels"], data.get("species"), ids=data.get("ids"),
                                         subjects=data.get("subjects"))
    raise TypeError("expected a PAD scores CSV path, a PadScoreTable or a dict with scores/labels/species")


def pad_report(scores: Any, labels: Any, species: Any = None, *, ids: Any = None, subjects: Any = None,
               targets: Sequence[float] = DEFAULT_TARGETS, higher_is_attack: bool = True, n_bootstrap: int = 1000,
               confidence: float = 0.95, seed: int = 0, title: str | None = None, source: str | None = None,
               det_points: int = 2000, n_hardest: int = 5) -> dict:
    """All ISO/IEC 30107-3 figures of a score set as a JSON-ready dict.

    Keys: ``n_bona_fide``, ``n_attack``, ``species`` (name -> count), ``d_eer`` (and
    ``d_eer_detail``, ``d_eer_pooled``, ``d_eer_per_species``), ``bpcer_at_apcer`` and
    ``apcer_at_bpcer`` keyed by ``"0.01"``, ``"0.05"``, ... each with ``threshold``, ``bpcer``,
    ``apcer`` (max over species), ``apcer_per_species``, ``apcer_pooled``, ``acer_non_iso``
    and ``ci`` (bootstrap) / ``ci_binomial`` (at the fixed threshold); ``confidence_intervals``;
    ``conventions``; ``det_curve`` (sampled points, for plotting); ``hardest`` examples.
    Raises ValueError for bad input (see :class:`madpad.metrics.PadScores`) and when
    either class is empty. ``n_bootstrap=0`` skips the bootstrap.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # constant-score warning is repeated in the report notes
        pad = PadScores.from_arrays(scores, labels, species=species, higher_is_attack=higher_is_attack,
                                    keep_order=subjects is not None)
    if pad.n_bona_fide == 0:
        raise ValueError("no bona fide scores: a PAD report needs both bona fide and attack presentations")
    if pad.n_attack == 0:
        raise ValueError("no attack scores: a PAD report needs both bona fide and attack presentations")
    targets = [float(x) for x in targets]
    notes = []
    s_arr = np.asarray(scores, dtype=np.float64)
    if s_arr.min() == s_arr.max():
        notes.append("All scores are equal: the detector does not separate bona fide from attacks (D-EER = 0.5).")
    deer = pad.d_eer()
    out: dict[str, Any] = {
        "report": "pad",
        "title": title or "PAD report (ISO/IEC 30107-3)",
        "source": source,
        "madpad_version": madpad.__version__,
        "n_bona_fide": pad.n_bona_fide,
        "n_attack": pad.n_attack,
        "species": pad.species_counts,
        "score_range": {"min": float(s_arr.min()), "max": float(s_arr.max())},
        "higher_is_attack": bool(higher_is_attack),
        "d_eer": deer.d_eer,
        "d_eer_detail": {"threshold": deer.threshold, "apcer_mode": "max over species", **deer.bracket},
        "d_eer_pooled": pad.d_eer(apcer_mode="pooled").d_eer,
        "d_eer_per_species": {k: pad.d_eer(apcer_mode=k).d_eer for k in pad.attacks},
        "bpcer_at_apcer": {},
        "apcer_at_bpcer": {},
        "conventions": dict(CONVENTIONS),
        "notes": notes,
    }
    if not higher_is_attack:
        out["conventions"]["score_direction"] = ("higher score = more likely bona fide (flipped internally); "
                                                 "classified attack when score <= threshold")
        out["conventions"]["tie_rule"] = "classified attack when score <= threshold"
    for name, fn in (("bpcer_at_apcer", pad.bpcer_at_apcer), ("apcer_at_bpcer", pad.apcer_at_bpcer)):
        for x in targets:
            op = fn(x)
            d = op.to_dict()
            d.pop("criterion")
            d["n_bona_fide_errors"] = int(round(op.bpcer * pad.n_bona_fide))
            iv = binomial_ci(round(op.bpcer * pad.n_bona_fide), pad.n_bona_fide, confidence=confidence)
            per = {}
            for sp_name, a in pad.attacks.items():
                k = round(op.apcer_per_species[sp_name] * a.n)
                ci = binomial_ci(k, a.n, confidence=confidence)
                per[sp_name] = [ci.low, ci.high]
            d["ci_binomial"] = {"method": f"Wilson {confidence:.0%} at the fixed threshold (independent samples)",
                                "bpcer": [iv.low, iv.high], "apcer_per_species": per}
            out[name][_key(x)] = d
    # bootstrap intervals of the headline figures
    if n_bootstrap and n_bootstrap > 0:
        ivs = pad_bootstrap(None, None, subjects=subjects, targets=targets, n_resamples=int(n_bootstrap),
                            confidence=confidence, seed=seed, pad=pad)
        method = next(iter(ivs.values())).method
        out["confidence_intervals"] = {
            "method": method, "confidence": confidence, "n_resamples": int(n_bootstrap), "seed": int(seed),
            "figures": {k: {"estimate": v.estimate, "low": v.low, "high": v.high, "n_invalid": v.n_invalid}
                        for k, v in ivs.items()},
        }
        out["d_eer_ci"] = [ivs["d_eer"].low, ivs["d_eer"].high]
        for x in targets:
            out["bpcer_at_apcer"][_key(x)]["ci"] = {"bpcer": [ivs[f"bpcer@apcer={x:g}"].low,
                                                              ivs[f"bpcer@apcer={x:g}"].high]}
            out["apcer_at_bpcer"][_key(x)]["ci"] = {"apcer": [ivs[f"apcer@bpcer={x:g}"].low,
                                                              ivs[f"apcer@bpcer={x:g}"].high]}
    else:
        out["confidence_intervals"] = None
    # DET curve (sampled) for plotting and for users who re-plot
    curve = pad.det_curve(max_points=det_points)
    out["det_curve"] = {"threshold": curve.thresholds, "apcer": curve.apcer, "bpcer": curve.bpcer,
                        "apcer_pooled": curve.apcer_pooled, "apcer_per_species": curve.apcer_per_species}
    # hardest examples (most attack-like bona fide, most bona-fide-like attacks)
    if ids is not None and n_hardest > 0:
        ids_arr = np.asarray(ids).astype(str)
        from madpad.metrics import parse_labels

        is_att = parse_labels(labels)
        direction = s_arr if higher_is_attack else -s_arr
        bf_i = np.flatnonzero(~is_att)
        at_i = np.flatnonzero(is_att)
        top_bf = bf_i[np.argsort(-direction[bf_i], kind="stable")[:n_hardest]]
        low_at = at_i[np.argsort(direction[at_i], kind="stable")[:n_hardest]]
        sp_arr = None if species is None else np.asarray(species, dtype=object)
        out["hardest"] = {
            "bona_fide_highest": [{"id": ids_arr[i], "score": float(s_arr[i])} for i in top_bf],
            "attack_lowest": [{"id": ids_arr[i], "score": float(s_arr[i]),
                               "species": "attack" if sp_arr is None else str(sp_arr[i])} for i in low_at],
        }
    return out


# --------------------------------------------------------------------------- rendering
def _pct(v: Any, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{100 * float(v):.{digits}f}%"


def _ci_pct(ci: Any) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "n/a"
    if isinstance(ci[0], float) and not (math.isfinite(ci[0]) and math.isfinite(ci[1])):
        return "n/a"
    return f"[{100 * ci[0]:.2f}, {100 * ci[1]:.2f}]%"


def _thr(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{float(v):.6g}"


def _op_rows(report: Mapping, name: str) -> list[dict]:
    rows = []
    for key, op in report[name].items():
        ci_field = "bpcer" if name == "bpcer_at_apcer" else "apcer"
        rows.append({
            "target": f"{float(key):.0%}" if float(key) >= 0.01 else key,
            "threshold": _thr(op["threshold"]),
            "BPCER": _pct(op["bpcer"]),
            "APCER (max)": _pct(op["apcer"]),
            "APCER pooled (non-ISO)": _pct(op["apcer_pooled"]),
            "ACER (non-ISO)": _pct(op["acer_non_iso"]),
            f"{ci_field.upper()} bootstrap CI": _ci_pct((op.get("ci") or {}).get(ci_field)),
            "BPCER Wilson CI": _ci_pct(op["ci_binomial"]["bpcer"]),
        })
    return rows


def _species_rows(report: Mapping) -> list[dict]:
    rows = []
    for sp, n in report["species"].items():
        row = {"species": sp, "n": n, "D-EER (vs bona fide)": _pct(report["d_eer_per_species"].get(sp))}
        for key, op in report["bpcer_at_apcer"].items():
            row[f"APCER @ BPCER@APCER={float(key):.0%}"] = _pct(op["apcer_per_species"].get(sp))
        for key, op in report["apcer_at_bpcer"].items():
            row[f"APCER @ APCER@BPCER={float(key):.0%}"] = _pct(op["apcer_per_species"].get(sp))
        rows.append(row)
    return rows


def _md_table(rows: list[dict]) -> str:
    if not rows:
        return "_(none)_\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines) + "\n"


def pad_report_markdown(report: Mapping) -> str:
    """Markdown rendering of a :func:`pad_report` dict."""
    lines = [f"# {report['title']}", ""]
    if report.get("source"):
        lines += [f"Scores: `{report['source']}`", ""]
    lines += [f"- bona fide presentations: {report['n_bona_fide']}",
              f"- attack presentations: {report['n_attack']} in {len(report['species'])} species "
              + ", ".join(f"{k} ({v})" for k, v in report["species"].items()),
              f"- **D-EER** (APCER max over species = BPCER): **{_pct(report['d_eer'])}**"
              + (f", bootstrap CI {_ci_pct(report.get('d_eer_ci'))}" if report.get("d_eer_ci") else ""),
              f"- D-EER with pooled APCER (non-ISO): {_pct(report['d_eer_pooled'])}", ""]
    lines += ["## BPCER at APCER = x (conservative: APCER of every species <= x)", "",
              _md_table(_op_rows(report, "bpcer_at_apcer")),
              "## APCER at BPCER = x (conservative: BPCER <= x)", "", _md_table(_op_rows(report, "apcer_at_bpcer")),
              "## Per attack species", "", _md_table(_species_rows(report))]
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

    c = report["det_curve"]
    curves = {"APCER (max over species)": (np.asarray(c["apcer"], float), np.asarray(c["bpcer"], float))}
    if len(report["species"]) > 1:
        curves["APCER pooled (non-ISO)"] = (np.asarray(c["apcer_pooled"], float), np.asarray(c["bpcer"], float))
        for sp, a in c["apcer_per_species"].items():
            curves[f"species: {sp}"] = (np.asarray(a, float), np.asarray(c["bpcer"], float))
    d = report["d_eer"]
    pts = {f"D-EER {_pct(d)}": (d, d)} if d is not None and math.isfinite(d) else {}
    n_min = min([report["n_bona_fide"]] + list(report["species"].values()))
    lo = min(0.01, max(1e-4, 0.5 / max(1, n_min)))
    return det_plot(curves, points=pts, title=title, limits=(lo, 0.6), emphasize="APCER (max over species)")


def pad_report_html(report: Mapping, *, scores: Any = None, labels: Any = None, extra_sections: Sequence[str] = ()) -> str:
    """Self-contained HTML rendering (DET curve and score histogram embedded as PNG)."""
    from madpad.report import html

    secs = []
    summary = {
        "bona fide presentations": report["n_bona_fide"],
        "attack presentations": report["n_attack"],
        "attack species": ", ".join(f"{k} ({v})" for k, v in report["species"].items()),
        "D-EER (APCER max over species)": _pct(report["d_eer"]),
        "D-EER bootstrap CI": _ci_pct(report.get("d_eer_ci")),
        "D-EER threshold (interpolated)": _thr(report["d_eer_detail"]["threshold"]),
        "D-EER with pooled APCER (non-ISO)": _pct(report["d_eer_pooled"]),
        "score range": f"{_thr(report['score_range']['min'])} .. {_thr(report['score_range']['max'])}",
    }
    body = [html.definition_list(summary)]
    for n in report.get("notes", []):
        body.append(html.note(n))
    secs.append(html.section("Summary", body))
    fig = det_figure(report)
    det_uri = html.figure_to_data_uri(fig)
    plot_body = [html.image(det_uri, alt="DET curve", caption="DET curve on normal-deviate axes. APCER is the "
                            "maximum over attack species (ISO/IEC 30107-3); rates of 0 are drawn on the border.")]
    if scores is not None and labels is not None:
        from madpad.metrics import parse_labels
        from madpad.report.plots import score_histogram

        s = np.asarray(scores, dtype=float)
        is_att = parse_labels(labels)
        thr = {f"BPCER@APCER={float(k):.0%}": v["threshold"] for k, v in report["bpcer_at_apcer"].items()
               if k in ("0.05", "0.1")}
        hist = score_histogram({"bona fide": s[~is_att], "attack": s[is_att]}, thresholds=thr,
                               xlabel="score (higher = attack)" if report.get("higher_is_attack", True)
                               else "score (higher = bona fide)")
        plot_body.append(html.image(html.figure_to_data_uri(hist), alt="score histogram",
                                    caption="Score distributions with two operating thresholds."))
    secs.append(html.section("DET curve", plot_body))
    secs.append(html.section("BPCER at APCER = x", [
        html.paragraph("Threshold: the largest score threshold at which the APCER of every attack species is at "
                       "most x (conservative); attack when score >= threshold."),
        html.table(_op_rows(report, "bpcer_at_apcer"))]))
    secs.append(html.section("APCER at BPCER = x", [
        html.paragraph("Threshold: the smallest score threshold at which BPCER is at most x (conservative). "
                       "APCER is the maximum over species."),
        html.table(_op_rows(report, "apcer_at_bpcer"))]))
    secs.append(html.section("Per attack species", html.table(_species_rows(report))))
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
                       caption="Attack presentations with the lowest scores")]))
    secs.extend(extra_sections)
    secs.append(html.section("Conventions", html.definition_list(report["conventions"])))
    sub = f"Scores: {report['source']}" if report.get("source") else None
    return html.page(report["title"], secs, subtitle=sub, footer=f"madpad {report.get('madpad_version', '')}")


def write_pad_report(table_or_csv: Any, out_dir: str | Path, *, title: str | None = None,
                     targets: Sequence[float] = DEFAULT_TARGETS, n_bootstrap: int = 1000, confidence: float = 0.95,
                     seed: int = 0, higher_is_attack: bool = True, formats: Sequence[str] = ("json", "md", "html"),
                     extra_sections: Sequence[str] = ()) -> dict:
    """Compute :func:`pad_report` and write ``report.json``/``report.md``/``report.html``
    atomically into ``out_dir``. ``table_or_csv`` is a PAD scores CSV path, a
    :class:`~madpad.report.scores.PadScoreTable` or a dict with ``scores``, ``labels``,
    ``species`` (and optionally ``ids``, ``subjects``). Returns the report dict with
    ``"files"`` (format -> path) added.
    """
    table = _as_table(table_or_csv)
    n_bf = int(np.count_nonzero(table.labels == "bona_fide"))
    if n_bf == 0 or n_bf == len(table):
        missing = "bona fide" if n_bf == 0 else "attack"
        raise ManifestError(f"no {missing} rows; a PAD report needs both bona fide and attack scores",
                            path=table.path, field="label")
    species = np.where(table.labels == "attack", table.species, "")
    rep = pad_report(table.scores, table.labels, species, ids=table.ids, subjects=table.subjects, targets=targets,
                     higher_is_attack=higher_is_attack, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed,
                     title=title, source=table.path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    clean = clean_json(rep)
    if "json" in formats:
        files["json"] = str(atomic_write_json(out / "report.json", clean))
    if "md" in formats:
        files["md"] = str(atomic_write_text(out / "report.md", pad_report_markdown(clean)))
    if "html" in formats:
        files["html"] = str(atomic_write_text(out / "report.html", pad_report_html(
            clean, scores=table.scores, labels=table.labels, extra_sections=extra_sections)))
    clean["files"] = files
    return clean


def load_report(path: str | Path) -> dict:
    """Read a ``report.json`` written by :func:`write_pad_report`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))

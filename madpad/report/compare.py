"""Compare several PAD/MAD detectors scored on the same samples (joined by ``id``).

``python -m madpad.report compare --scores A.csv B.csv [C.csv ...] [--names ...] --out DIR``
writes ``report.json``, ``report.md`` and ``report.html``: one DET plot with every system,
one table (D-EER, BPCER@APCER, APCER@BPCER with bootstrap intervals) and the **paired**
bootstrap interval of each system's difference to the first one. Paired means every
bootstrap replicate resamples the same samples (or the same subjects, when a ``subject``
column is given) for all systems, so what the systems share cancels out of the differences.

The files must hold the same ids with the same label and species; a different id set is an
error naming the counts. A sample that one system failed to acquire (a ``status`` other than
ok) is left out of that system's rates only and counted in its ``n_failed``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import madpad
from madpad.errors import ManifestError, UsageError
from madpad.io import atomic_write_json, atomic_write_text
from madpad.metrics import PadScores, pad_summary_figures, paired_pad_bootstrap
from madpad.report.format import _ci_pct, _key, _md_table, _pct, clean_json
from madpad.report.pad import DEFAULT_TARGETS, KINDS
from madpad.report.scores import PadScoreTable, read_pad_scores

__all__ = ["align_tables", "compare_report", "compare_report_markdown", "compare_report_html",
           "write_compare_report"]


def _names(paths: Sequence[str], names: Sequence[str] | None) -> list[str]:
    if names:
        if len(names) != len(paths):
            raise UsageError(f"--names gives {len(names)} name(s) for {len(paths)} scores file(s)")
        if len(set(names)) != len(names):
            raise UsageError(f"--names must be distinct; got {list(names)}")
        return [str(n) for n in names]
    stems = [Path(p).stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [f"{i + 1}:{s}" for i, s in enumerate(stems)]


def align_tables(tables: Sequence[PadScoreTable]) -> list[np.ndarray]:
    """For each table, the row of each id of the first table (the join on ``id``). Raises
    ManifestError when the id sets differ (naming the counts) or when a label or species
    disagrees with the first table (naming the row)."""
    import polars as pl

    ref = tables[0]
    ids0 = _id_series(ref)
    out = [np.arange(len(ref))]
    for t in tables[1:]:
        ids = _id_series(t)
        a_df, b_df = pl.DataFrame({"id": ids0}), pl.DataFrame({"id": ids})
        miss_df = a_df.join(b_df, on="id", how="anti")   # ids of the first file missing here
        extra_df = b_df.join(a_df, on="id", how="anti")  # ids here not in the first file
        missing, extra = miss_df.height, extra_df.height
        if missing or extra or len(t) != len(ref):
            ex_m = miss_df.get_column("id").head(1).to_list()
            ex_e = extra_df.get_column("id").head(1).to_list()
            bits = []
            if missing:
                bits.append(f"{missing} id(s) of {ref.path} are missing here (e.g. {ex_m[0]!r})")
            if extra:
                bits.append(f"{extra} id(s) here are not in {ref.path} (e.g. {ex_e[0]!r})")
            raise ManifestError(f"the scores files must hold the same ids: {len(ref)} rows in {ref.path}, "
                                f"{len(t)} here; " + "; ".join(bits), path=t.path, field="id")
        j = (pl.DataFrame({"id": ids0}).with_row_index("a")
             .join(pl.DataFrame({"id": ids}).with_row_index("b"), on="id", how="left", maintain_order="left"))
        pos = j.get_column("b").to_numpy().astype(np.int64)
        lab_bad = t.is_attack[pos] != ref.is_attack
        names_t = np.asarray([""] + t.species_names, dtype=object)
        names_r = np.asarray([""] + ref.species_names, dtype=object)
        sp_bad = names_t[t.species_codes[pos].astype(np.int64) + 1] != names_r[ref.species_codes.astype(np.int64) + 1]
        for bad, field in ((lab_bad, "label"), (sp_bad, "species")):
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                r = t.row_number(int(pos[i]))
                theirs = ("attack" if t.is_attack[pos[i]] else "bona_fide") if field == "label" else \
                    names_t[t.species_codes[pos[i]] + 1]
                mine = ("attack" if ref.is_attack[i] else "bona_fide") if field == "label" else \
                    names_r[ref.species_codes[i] + 1]
                raise ManifestError(f"id {ids0[i]!r} has {field} {theirs!r} here but {mine!r} in {ref.path}",
                                    path=t.path, row=r, field=field)
        out.append(pos)
    return out


def _id_series(t: PadScoreTable):
    import polars as pl

    if getattr(t, "_ids_series", None) is not None:
        return t._ids_series
    return pl.Series("id", t.ids.tolist(), dtype=pl.String)


def compare_report(tables: Sequence[PadScoreTable], names: Sequence[str], *,
                   targets: Sequence[float] = DEFAULT_TARGETS, higher_is_attack: bool = True,
                   n_bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0, title: str | None = None,
                   kind: str = "pad", det_points: int = 1000, bin_eps: float | None = None) -> dict:
    """Figures of every system and paired-bootstrap intervals of their differences to the
    first system (see the module docstring). JSON-ready dict."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    if len(tables) < 2:
        raise UsageError("compare needs at least two scores files")
    targets = [float(x) for x in targets]
    positions = align_tables(tables)
    ref = tables[0]
    N = len(ref)
    codes = ref.species_codes
    names_sp = ref.species_names
    subjects = ref.subject_codes
    pads, idx_maps, systems = [], [], []
    for t, pos, name in zip(tables, positions, names):
        acq = t.acquired[pos]
        s = t.scores[pos]
        idx = np.flatnonzero(acq)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            pad = PadScores.from_codes(s[idx], codes[idx], names_sp, higher_is_attack=higher_is_attack,
                                       keep_order=True)
        if pad.n_bona_fide == 0 or pad.n_attack == 0:
            raise ManifestError(f"system {name!r} has no {'bona fide' if pad.n_bona_fide == 0 else 'attack'} "
                                f"scores", path=t.path, field="label")
        pads.append(pad)
        idx_maps.append(idx)
        est = pad_summary_figures(pad, targets)
        entry: dict[str, Any] = {
            "name": name, "source": t.path, "n_bona_fide": pad.n_bona_fide, "n_attack": pad.n_attack,
            "species": pad.species_counts, "n_failed": int(N - idx.size), "d_eer": est["d_eer"],
            "bpcer_at_apcer": {}, "apcer_at_bpcer": {},
        }
        for x in targets:
            op = pad.bpcer_at_apcer(x)
            entry["bpcer_at_apcer"][_key(x)] = {"threshold": op.threshold, "bpcer": op.bpcer, "apcer": op.apcer}
            op = pad.apcer_at_bpcer(x)
            entry["apcer_at_bpcer"][_key(x)] = {"threshold": op.threshold, "apcer": op.apcer, "bpcer": op.bpcer,
                                                "apcer_per_species": op.apcer_per_species}
        curve = pad.det_curve(max_points=det_points)
        entry["det_curve"] = {"apcer": curve.apcer, "bpcer": curve.bpcer}
        systems.append(entry)
    out: dict[str, Any] = {
        "report": "compare", "kind": kind,
        "title": title or ("Comparison of PAD systems (ISO/IEC 30107-3)" if kind == "pad"
                           else "Comparison of morphing attack detectors (ISO/IEC 20059)"),
        "madpad_version": madpad.__version__, "n_samples": N, "targets": targets,
        "higher_is_attack": bool(higher_is_attack), "systems": systems, "differences": [],
        "conventions": {
            "join": "samples joined by id; every file must hold the same ids with the same label and species",
            "figures": "as in the PAD report: APCER max over species, conservative thresholds, interpolated D-EER",
            "failure_to_acquire": "a sample a system failed to acquire is left out of that system's rates only "
                                  "(n_failed)",
            "confidence_intervals": "paired percentile bootstrap: every replicate resamples the same "
                                    + ("subjects" if subjects is not None else "samples (within bona fide and "
                                       "each attack species)")
                                    + " for all systems; differences are system minus the first system",
        },
    }
    if n_bootstrap and n_bootstrap > 0:
        strata = codes.astype(np.int64)
        res = paired_pad_bootstrap(pads, n_samples=N, sample_index=idx_maps, strata=strata, subjects=subjects,
                                   targets=targets, n_resamples=int(n_bootstrap), confidence=confidence, seed=seed,
                                   bin_eps=bin_eps)
        for entry, ivs in zip(systems, res["systems"]):
            entry["ci"] = {k: [v.low, v.high] for k, v in ivs.items()}
        for s, ivs in enumerate(res["differences"], start=1):
            out["differences"].append({
                "system": names[s], "versus": names[0],
                "figures": {k: {"estimate": v.estimate, "low": v.low, "high": v.high, "n_invalid": v.n_invalid}
                            for k, v in ivs.items()}})
        method = next(iter(res["systems"][0].values())).method
        out["confidence_intervals"] = {"method": method, "confidence": confidence, "n_resamples": int(n_bootstrap),
                                       "seed": int(seed)}
    else:
        for s in range(1, len(systems)):
            a, b = systems[0], systems[s]
            figs = {"d_eer": b["d_eer"] - a["d_eer"]}
            for x in targets:
                k = _key(x)
                figs[f"bpcer@apcer={k}"] = b["bpcer_at_apcer"][k]["bpcer"] - a["bpcer_at_apcer"][k]["bpcer"]
                figs[f"apcer@bpcer={k}"] = b["apcer_at_bpcer"][k]["apcer"] - a["apcer_at_bpcer"][k]["apcer"]
            out["differences"].append({"system": names[s], "versus": names[0],
                                       "figures": {k: {"estimate": v, "low": None, "high": None}
                                                   for k, v in figs.items()}})
        out["confidence_intervals"] = None
    return out


# --------------------------------------------------------------------------- rendering
def _V(report):
    return ("MACER", "BSCER") if report.get("kind") == "mad" else ("APCER", "BPCER")


def _fig_label(report, key: str) -> str:
    A, B = _V(report)
    if key == "d_eer":
        return "D-EER"
    crit, x = key.split("=")
    x = float(x)
    pct = f"{x:.0%}" if x >= 0.01 else f"{x:g}"
    return f"{B}@{A}={pct}" if crit == "bpcer@apcer" else f"{A}@{B}={pct}"


def _value(entry, key):
    if key == "d_eer":
        return entry["d_eer"]
    crit, x = key.split("=")
    return (entry["bpcer_at_apcer"][x]["bpcer"] if crit == "bpcer@apcer" else entry["apcer_at_bpcer"][x]["apcer"])


def _keys(report) -> list[str]:
    ks = ["d_eer"]
    for x in report["targets"]:
        ks += [f"bpcer@apcer={_key(x)}", f"apcer@bpcer={_key(x)}"]
    return ks


def _system_rows(report) -> list[dict]:
    rows = []
    for e in report["systems"]:
        row = {"system": e["name"], "bona fide": e["n_bona_fide"], "attacks": e["n_attack"],
               "failed to acquire": e["n_failed"]}
        for k in _keys(report):
            ci = (e.get("ci") or {}).get(k)
            row[_fig_label(report, k)] = _pct(_value(e, k)) + (f" {_ci_pct(ci)}" if ci else "")
        rows.append(row)
    return rows


def _diff_rows(report) -> list[dict]:
    rows = []
    for d in report["differences"]:
        row = {"system": f"{d['system']} - {d['versus']}"}
        for k in _keys(report):
            f = d["figures"][k]
            est = f["estimate"]
            txt = "n/a" if est is None or not math.isfinite(est) else f"{100 * est:+.2f} pp"
            if f.get("low") is not None and f.get("high") is not None:
                txt += f" [{100 * f['low']:+.2f}, {100 * f['high']:+.2f}]"
            row[_fig_label(report, k)] = txt
        rows.append(row)
    return rows


def compare_report_markdown(report) -> str:
    lines = [f"# {report['title']}", "",
             f"{report['n_samples']} samples joined by id across {len(report['systems'])} systems.", "",
             "## Systems", "", _md_table(_system_rows(report)),
             f"## Differences to {report['systems'][0]['name']} (percentage points)", "",
             _md_table(_diff_rows(report))]
    ci = report.get("confidence_intervals")
    if ci:
        lines += [f"Intervals: {ci['confidence']:.0%} {ci['method']}, {ci['n_resamples']} resamples, seed "
                  f"{ci['seed']}. A difference whose interval excludes 0 is significant at that level.", ""]
    lines += ["## Conventions", ""] + [f"- **{k}**: {v}" for k, v in report["conventions"].items()] + [""]
    return "\n".join(lines)


def compare_det_figure(report):
    from madpad.report.plots import det_plot

    A, B = _V(report)
    curves = {e["name"]: (np.asarray(e["det_curve"]["apcer"], float), np.asarray(e["det_curve"]["bpcer"], float))
              for e in report["systems"]}
    pts = {f"{e['name']} D-EER {_pct(e['d_eer'])}": (e["d_eer"], e["d_eer"]) for e in report["systems"]
           if e["d_eer"] is not None and math.isfinite(e["d_eer"])}
    n_min = min(min([e["n_bona_fide"]] + list(e["species"].values())) for e in report["systems"])
    lo = min(0.01, max(1e-4, 0.5 / max(1, n_min)))
    return det_plot(curves, points=pts, limits=(lo, 0.6), xlabel=f"{A} (%), max over species", ylabel=f"{B} (%)")


def compare_report_html(report) -> str:
    from madpad.report import html

    A, B = _V(report)
    secs = [html.section("DET curves", html.image(html.figure_to_data_uri(compare_det_figure(report)),
                                                  alt="DET curves", caption=f"All systems on normal-deviate axes; "
                                                  f"{A} is the maximum over attack species.")),
            html.section("Systems", [html.paragraph("Estimates with their bootstrap intervals."),
                                     html.table(_system_rows(report))]),
            html.section(f"Differences to {report['systems'][0]['name']}", [
                html.paragraph("Estimate and paired bootstrap interval, in percentage points; an interval that "
                               "excludes 0 means the systems differ at the stated confidence."),
                html.table(_diff_rows(report))]),
            html.section("Conventions", html.definition_list(report["conventions"]))]
    return html.page(report["title"], secs, subtitle=f"{report['n_samples']} samples",
                     footer=f"madpad {report.get('madpad_version', '')}")


def write_compare_report(paths: Sequence[str | Path], out_dir: str | Path, *, names: Sequence[str] | None = None,
                         targets: Sequence[float] = DEFAULT_TARGETS, higher_is_attack: bool = True,
                         n_bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0, title: str | None = None,
                         kind: str = "pad") -> dict:
    """Read the scores files, compute :func:`compare_report` and write ``report.json``,
    ``report.md`` and ``report.html`` atomically into ``out_dir``."""
    paths = [str(p) for p in paths]
    nm = _names(paths, names)
    tables = [read_pad_scores(p) for p in paths]
    try:
        rep = compare_report(tables, nm, targets=targets, higher_is_attack=higher_is_attack, n_bootstrap=n_bootstrap,
                             confidence=confidence, seed=seed, title=title, kind=kind)
    except ValueError as exc:
        if isinstance(exc, (ManifestError, UsageError)):
            raise
        raise ManifestError(str(exc)) from None
    clean = clean_json(rep)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": str(atomic_write_json(out / "report.json", clean)),
             "md": str(atomic_write_text(out / "report.md", compare_report_markdown(clean))),
             "html": str(atomic_write_text(out / "report.html", compare_report_html(clean)))}
    clean["files"] = files
    return clean

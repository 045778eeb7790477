"""ISO/IEC 30107-3 PAD report (and ISO/IEC 20059 MAD report): ``report.json``, ``report.md``
and a self-contained ``report.html``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> scores = np.r_[rng.normal(0, 1, 200), rng.normal(3, 1, 100)]
>>> labels = ["bona_fide"] * 200 + ["attack"] * 100
>>> species = [""] * 200 + ["print"] * 50 + ["replay"] * 50
>>> r = pad_report(scores, labels, species, n_bootstrap=0)
>>> r["n_bona_fide"], r["n_attack"], r["species"], sorted(r["bpcer_at_apcer"])
(200, 100, {'print': 50, 'replay': 50}, ['0.01', '0.05', '0.1', '0.2'])

What the report holds (all thresholds conservative, see :mod:`madpad.metrics.pad`):

* D-EER, BPCER@APCER and APCER@BPCER with bootstrap and Wilson intervals, per-species APCER;
* failures to acquire (rows with a ``status`` other than ok): counted per class and
  species, and every rate given both ways ISO/IEC 30107-3 allows -- failures excluded
  (with their count stated) and failures counted as errors of the system;
* ``kind="mad"``: the same figures in ISO/IEC 20059 vocabulary (MACER, BSCER), the
  ``macer_at_bscer`` / ``bscer_at_macer`` keys and the NIST FATE MORPH operating points
  (MACER at BSCER = 0.1 and 0.01);
* with a development set (``dev=``): thresholds fixed on the dev scores at every target and
  the error rates they give on the evaluation scores (``dev_eval``).
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
from madpad.report.format import _key, clean_json
from madpad.report.pad_render import pad_report_html, pad_report_markdown
from madpad.report.scores import PadScoreTable, read_pad_scores

__all__ = ["DEFAULT_TARGETS", "CONVENTIONS", "KINDS", "NIST_FATE_MORPH_BSCER", "pad_report", "pad_report_table",
           "pad_report_markdown", "pad_report_html", "write_pad_report", "clean_json", "prepare_pad"]

DEFAULT_TARGETS = (0.01, 0.05, 0.1, 0.2)
#: report kinds: "pad" (ISO/IEC 30107-3 vocabulary) and "mad" (morphing attack detection, ISO/IEC 20059)
KINDS = ("pad", "mad")
#: BSCER targets at which NIST FATE MORPH reports the MACER (the morph miss rate)
NIST_FATE_MORPH_BSCER = (0.1, 0.01)

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
                            "when a subject column is given, else by sample within each class/species; replicates "
                            "are drawn as weights of bins of the sorted scores (one score wide in the tails, at most "
                            "1/256 of the rank distance to the nearer end in the middle; at most 0.3 % of the "
                            "variance left out) and evaluated all at once",
    "failure_to_acquire": "rows with a status other than ok have no score; rates are given over the acquired "
                          "presentations (failures excluded, count stated) and with every failure counted as an "
                          "error of its class (bona fide failure -> BPCER, attack failure -> APCER of its species)",
}

MAD_CONVENTIONS = {
    "vocabulary": "ISO/IEC 20059: MACER (morphing attack classification error rate) = APCER of morphing attacks; "
                  "BSCER (bona fide sample classification error rate) = BPCER; the apcer/bpcer keys hold the same "
                  "values",
    "nist_fate_morph": "MACER at BSCER = 0.1 and 0.01 (the operating points of NIST FATE MORPH), conservative "
                       "threshold as for every APCER@BPCER",
}


# --------------------------------------------------------------------------- helpers
def _as_table(data: Any) -> PadScoreTable:
    if isinstance(data, PadScoreTable):
        return data
    if isinstance(data, (str, Path)):
        return read_pad_scores(data)
    if isinstance(data, Mapping):
        return PadScoreTable.from_arrays(data["scores"], data["labels"], data.get("species"), ids=data.get("ids"),
                                         subjects=data.get("subjects"), status=data.get("status"))
    raise TypeError("expected a PAD scores CSV path, a PadScoreTable or a dict with scores/labels/species")


def prepare_pad(table: PadScoreTable, *, higher_is_attack: bool = True, keep_order: bool = False) -> PadScores:
    """:class:`madpad.metrics.PadScores` of a table's acquired rows (failures to acquire left
    out). Tables read from a file are already validated and take the fast integer-code
    path; in-memory tables go through the full validation of ``PadScores.from_arrays``."""
    acq = table.acquired
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # constant-score warning is repeated in the report notes
        if getattr(table, "_ids_series", None) is not None:  # read and validated by read_pad_scores
            if acq.all():
                return PadScores.from_codes(table.scores, table.species_codes, table.species_names,
                                            higher_is_attack=higher_is_attack, keep_order=keep_order)
            return PadScores.from_codes(table.scores[acq], table.species_codes[acq], table.species_names,
                                        higher_is_attack=higher_is_attack, keep_order=keep_order)
        sp = np.where(table.is_attack, table.species, "")[acq]
        return PadScores.from_arrays(table.scores[acq], table.is_attack[acq], species=sp,
                                     higher_is_attack=higher_is_attack, keep_order=keep_order)


def _fta_counts(table: PadScoreTable) -> dict:
    """Presentations and failures to acquire per class and species."""
    acq = table.acquired
    codes = table.species_codes
    failed = ~acq
    st = table.failure_statuses()
    fcodes = codes[failed]

    def block(n_total, n_failed, statuses):
        vals, cnt = np.unique(statuses, return_counts=True) if statuses.size else ([], [])
        return {"n_presentations": int(n_total), "n_failed": int(n_failed),
                "rate": (n_failed / n_total) if n_total else float("nan"),
                "statuses": {str(v): int(c) for v, c in zip(vals, cnt)}}

    bf_all = ~table.is_attack
    out = {"bona_fide": block(np.count_nonzero(bf_all), np.count_nonzero(bf_all & failed), st[fcodes == -1]),
           "attack": block(np.count_nonzero(table.is_attack), np.count_nonzero(table.is_attack & failed),
                           st[fcodes >= 0]),
           "species": {}}
    for k, name in enumerate(table.species_names):
        m = codes == k
        out["species"][name] = block(np.count_nonzero(m), np.count_nonzero(m & failed), st[fcodes == k])
    out["n_failed"] = int(np.count_nonzero(failed))
    return out


def _with_failures(rates: Mapping, pad: PadScores, fta: Mapping) -> dict:
    """Rates at the same threshold with every failure to acquire counted as an error of its
    class: bona fide failure -> BPCER numerator, attack failure -> APCER of its species."""
    f_bf = fta["bona_fide"]["n_failed"]
    n_bf = pad.n_bona_fide
    bp = rates.get("bpcer")
    bpcer = ((bp if bp is not None and math.isfinite(bp) else 0.0) * n_bf + f_bf) / (n_bf + f_bf) \
        if n_bf + f_bf else float("nan")
    per = {}
    for name, blk in fta["species"].items():
        n_s = pad.attacks[name].n if name in pad.attacks else 0
        a = rates.get("apcer_per_species", {}).get(name)
        a = a if a is not None and math.isfinite(a) else 0.0
        per[name] = (a * n_s + blk["n_failed"]) / (n_s + blk["n_failed"]) if n_s + blk["n_failed"] else float("nan")
    vals = [v for v in per.values() if math.isfinite(v)]
    return {"bpcer": bpcer, "apcer": max(vals) if vals else float("nan"), "apcer_per_species": per}


def _d_eer_with_failures(pad: PadScores, fta: Mapping) -> float:
    """D-EER with failures counted as errors: a bona fide failure behaves like a score above
    every threshold (always an error), an attack failure like one below every threshold."""
    bf = pad.bona_fide.v
    att = {k: a.v for k, a in pad.attacks.items()}
    lo, hi = pad._bounds()
    span = (hi - lo) + 1.0
    top_s, bottom_s = hi + span, lo - span
    bf2 = np.concatenate([bf, np.full(fta["bona_fide"]["n_failed"], top_s)])
    att2 = {}
    for name, blk in fta["species"].items():
        base = att.get(name, np.zeros(0))
        att2[name] = np.concatenate([base, np.full(blk["n_failed"], bottom_s)])
    att2 = {k: v for k, v in att2.items() if v.size}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PadScores.from_groups(bf2, att2).d_eer().d_eer


def _op_entry(op, pad: PadScores, confidence: float) -> dict:
    d = op.to_dict()
    d.pop("criterion")
    d["n_bona_fide_errors"] = int(round(op.bpcer * pad.n_bona_fide)) if math.isfinite(op.bpcer) else None
    iv = binomial_ci(round(op.bpcer * pad.n_bona_fide), pad.n_bona_fide, confidence=confidence)
    per = {}
    for sp_name, a in pad.attacks.items():
        k = round(op.apcer_per_species[sp_name] * a.n)
        ci = binomial_ci(k, a.n, confidence=confidence)
        per[sp_name] = [ci.low, ci.high]
    d["ci_binomial"] = {"method": f"Wilson {confidence:.0%} at the fixed threshold (independent samples)",
                        "bpcer": [iv.low, iv.high], "apcer_per_species": per}
    return d


def _rename_mad(d: Any) -> Any:
    """Copy of an operating-point dict with ISO/IEC 20059 names (apcer -> macer, bpcer -> bscer)."""
    if isinstance(d, Mapping):
        out = {}
        for k, v in d.items():
            nk = str(k).replace("apcer", "macer").replace("bpcer", "bscer")
            out[nk] = _rename_mad(v)
        return out
    if isinstance(d, list):
        return [_rename_mad(v) for v in d]
    return d


def _hardest(table: PadScoreTable, pad: PadScores, n: int) -> dict:
    """Most attack-like bona fide and most bona-fide-like attacks. The n-th most extreme
    score is read from the sorted classes; the rows are found by one comparison (no sort of
    the whole set; failures to acquire have NaN scores and never compare true)."""
    direction = table.scores if pad.higher_is_attack else -table.scores
    bf_v = pad.bona_fide.v
    k_bf = min(n, bf_v.size)
    att_heads = np.sort(np.concatenate([a.v[:n] for a in pad.attacks.values()]))
    k_at = min(n, att_heads.size)

    def pick(mask, key, k):
        pos = np.flatnonzero(mask)
        return pos[np.argsort(key[pos], kind="stable")[:k]]

    top_bf = pick(~table.is_attack & (direction >= bf_v[-k_bf]), -direction, k_bf) if k_bf else np.zeros(0, int)
    low_at = pick(table.is_attack & (direction <= att_heads[k_at - 1]), direction, k_at) if k_at else np.zeros(0, int)
    raw = table.scores
    names = [""] + table.species_names
    return {
        "bona_fide_highest": [{"id": i, "score": float(raw[p])} for i, p in zip(table.ids_at(top_bf), top_bf)],
        "attack_lowest": [{"id": i, "score": float(raw[p]), "species": names[int(table.species_codes[p]) + 1]}
                          for i, p in zip(table.ids_at(low_at), low_at)],
    }


# --------------------------------------------------------------------------- the report
def pad_report(scores: Any, labels: Any, species: Any = None, *, ids: Any = None, subjects: Any = None,
               targets: Sequence[float] = DEFAULT_TARGETS, higher_is_attack: bool = True, n_bootstrap: int = 1000,
               confidence: float = 0.95, seed: int = 0, title: str | None = None, source: str | None = None,
               det_points: int = 2000, n_hardest: int = 5, status: Any = None, kind: str = "pad",
               dev: Any = None) -> dict:
    """All ISO/IEC 30107-3 figures of a score set as a JSON-ready dict.

    Keys: ``n_bona_fide``, ``n_attack``, ``species`` (name -> count), ``d_eer`` (and
    ``d_eer_detail``, ``d_eer_pooled``, ``d_eer_per_species``), ``bpcer_at_apcer`` and
    ``apcer_at_bpcer`` keyed by ``"0.01"``, ``"0.05"``, ... each with ``threshold``, ``bpcer``,
    ``apcer`` (max over species), ``apcer_per_species``, ``apcer_pooled``, ``acer_non_iso``
    and ``ci`` (bootstrap) / ``ci_binomial`` (at the fixed threshold); ``confidence_intervals``;
    ``conventions``; ``det_curve`` (sampled points, for plotting); ``hardest`` examples.
    ``status`` (one per sample; anything but ``""``/``"ok"`` is a failure to acquire, its
    score ignored) adds ``failure_to_acquire``; ``kind="mad"`` adds the ISO/IEC 20059 keys;
    ``dev`` (a scores CSV path, a :class:`PadScoreTable` or a dict like ``write_pad_report``
    takes) adds ``dev_eval``. Raises ValueError for bad input (see
    :class:`madpad.metrics.PadScores`) and when either class is empty. ``n_bootstrap=0``
    skips the bootstrap.
    """
    table = PadScoreTable.from_arrays(scores, labels, species, ids=ids, subjects=subjects, status=status)
    return pad_report_table(table, targets=targets, higher_is_attack=higher_is_attack, n_bootstrap=n_bootstrap,
                            confidence=confidence, seed=seed, title=title, source=source, det_points=det_points,
                            n_hardest=n_hardest if ids is not None else 0, kind=kind,
                            dev=None if dev is None else _as_table(dev))


def pad_report_table(table: PadScoreTable, *, targets: Sequence[float] = DEFAULT_TARGETS,
                     higher_is_attack: bool = True, n_bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0,
                     title: str | None = None, source: str | None = None, det_points: int = 2000,
                     n_hardest: int = 5, kind: str = "pad", dev: PadScoreTable | None = None,
                     bin_eps: float | None = None, _return_pad: bool = False) -> dict:
    """:func:`pad_report` of a :class:`PadScoreTable` (the path ``write_pad_report`` and the
    CLI take; nothing is converted to Python strings per row)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    subjects = table.subject_codes
    pad = prepare_pad(table, higher_is_attack=higher_is_attack, keep_order=subjects is not None)
    if pad.n_bona_fide == 0:
        raise ValueError("no bona fide scores: a PAD report needs both bona fide and attack presentations")
    if pad.n_attack == 0:
        raise ValueError("no attack scores: a PAD report needs both bona fide and attack presentations")
    targets = [float(x) for x in targets]
    notes = []
    lo_v = min(float(pad.bona_fide.v[0]), min(float(a.v[0]) for a in pad.attacks.values()))
    hi_v = max(float(pad.bona_fide.v[-1]), max(float(a.v[-1]) for a in pad.attacks.values()))
    smin, smax = (lo_v, hi_v) if higher_is_attack else (-hi_v, -lo_v)
    if smin == smax:
        notes.append("All scores are equal: the detector does not separate bona fide from attacks (D-EER = 0.5).")
    deer = pad.d_eer()
    out: dict[str, Any] = {
        "report": "pad" if kind == "pad" else "mad",
        "kind": kind,
        "title": title or ("PAD report (ISO/IEC 30107-3)" if kind == "pad"
                           else "Morphing attack detection report (ISO/IEC 20059)"),
        "source": source if source is not None else table.path,
        "madpad_version": madpad.__version__,
        "n_bona_fide": pad.n_bona_fide,
        "n_attack": pad.n_attack,
        "species": pad.species_counts,
        "score_range": {"min": smin, "max": smax},
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
    if kind == "mad":
        out["conventions"].update(MAD_CONVENTIONS)
    if not higher_is_attack:
        out["conventions"]["score_direction"] = ("higher score = more likely bona fide (flipped internally); "
                                                 "classified attack when score <= threshold")
        out["conventions"]["tie_rule"] = "classified attack when score <= threshold"
    for name, fn in (("bpcer_at_apcer", pad.bpcer_at_apcer), ("apcer_at_bpcer", pad.apcer_at_bpcer)):
        for x in targets:
            out[name][_key(x)] = _op_entry(fn(x), pad, confidence)
    # failures to acquire: counted per class and species, rates both ways
    has_status = table.status is not None or table.n_failed > 0
    fta = _fta_counts(table) if has_status else None
    if fta is not None:
        out["failure_to_acquire"] = fta
        if fta["n_failed"]:
            for name in ("bpcer_at_apcer", "apcer_at_bpcer"):
                for op in out[name].values():
                    op["fta_as_errors"] = _with_failures(op, pad, fta)
            fta["d_eer_fta_as_errors"] = _d_eer_with_failures(pad, fta)
            notes.append(f"{fta['n_failed']} presentation(s) failed to acquire (no score): {fta['bona_fide']['n_failed']} "
                         f"bona fide, {fta['attack']['n_failed']} attack. The main figures exclude them; "
                         f"'fta_as_errors' gives the rates with every failure counted as an error of its class.")
    # bootstrap intervals of the headline figures
    if n_bootstrap and n_bootstrap > 0:
        if subjects is not None and table.n_failed:
            subjects = subjects[table.acquired]
        ivs = pad_bootstrap(None, None, subjects=subjects, targets=targets,
                            n_resamples=int(n_bootstrap), confidence=confidence, seed=seed, pad=pad, bin_eps=bin_eps)
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
    # ISO/IEC 20059 names and the NIST FATE MORPH operating points
    if kind == "mad":
        out["macer_at_bscer"] = _rename_mad(out["apcer_at_bpcer"])
        out["bscer_at_macer"] = _rename_mad(out["bpcer_at_apcer"])
        nist = {}
        for x in NIST_FATE_MORPH_BSCER:
            op = out["apcer_at_bpcer"].get(_key(x)) or _op_entry(pad.apcer_at_bpcer(x), pad, confidence)
            nist[_key(x)] = _rename_mad({k: op[k] for k in ("threshold", "apcer", "apcer_per_species", "bpcer", "ci")
                                         if k in op})
        out["nist_fate_morph"] = {"macer_at_bscer": nist,
                                  "definition": "MACER (max over morphing attack species) at the smallest threshold "
                                                "with BSCER <= 0.1 and <= 0.01"}
    # development -> evaluation
    if dev is not None:
        out["dev_eval"] = _dev_eval(dev, pad, targets, higher_is_attack=higher_is_attack, confidence=confidence,
                                    fta=fta)
    # DET curve (sampled) for plotting and for users who re-plot
    curve = pad.det_curve(max_points=det_points)
    out["det_curve"] = {"threshold": curve.thresholds, "apcer": curve.apcer, "bpcer": curve.bpcer,
                        "apcer_pooled": curve.apcer_pooled, "apcer_per_species": curve.apcer_per_species}
    if n_hardest > 0:
        out["hardest"] = _hardest(table, pad, n_hardest)
    return (out, pad) if _return_pad else out


def _dev_eval(dev: PadScoreTable, pad: PadScores, targets: Sequence[float], *, higher_is_attack: bool,
              confidence: float, fta: Mapping | None) -> dict:
    """Thresholds fixed on the development scores, applied to the evaluation scores."""
    dpad = prepare_pad(dev, higher_is_attack=higher_is_attack)
    if dpad.n_bona_fide == 0 or dpad.n_attack == 0:
        raise ManifestError("the development scores need both bona fide and attack rows", path=dev.path,
                            field="label")
    res: dict[str, Any] = {"source": dev.path, "n_bona_fide_dev": dpad.n_bona_fide, "n_attack_dev": dpad.n_attack,
                           "species_dev": dpad.species_counts,
                           "method": "threshold chosen on the dev scores (conservative, as for the eval figures), "
                                     "then the eval error rates at that fixed threshold; Wilson intervals of the "
                                     "eval rates (independent samples)",
                           "bpcer_at_apcer": {}, "apcer_at_bpcer": {}}
    if dev.n_failed:
        res["dev_failed_to_acquire"] = dev.n_failed

    def applied(t: float, dev_op) -> dict:
        r = pad.rates(t)
        iv = binomial_ci(round(r.bpcer * pad.n_bona_fide), pad.n_bona_fide, confidence=confidence)
        per_ci = {}
        for k, a in pad.attacks.items():
            c = binomial_ci(round(r.apcer_per_species[k] * a.n), a.n, confidence=confidence)
            per_ci[k] = [c.low, c.high]
        d = {"dev_threshold": t, "dev_bpcer": dev_op.get("bpcer"), "dev_apcer": dev_op.get("apcer"),
             "eval_bpcer": r.bpcer, "eval_apcer": r.apcer, "eval_apcer_per_species": r.apcer_per_species,
             "eval_apcer_pooled": r.apcer_pooled,
             "eval_ci_binomial": {"bpcer": [iv.low, iv.high], "apcer_per_species": per_ci}}
        if fta is not None and fta["n_failed"]:
            w = _with_failures({"bpcer": r.bpcer, "apcer_per_species": r.apcer_per_species}, pad, fta)
            d["eval_fta_as_errors"] = w
        return d

    for x in targets:
        op = dpad.bpcer_at_apcer(x)
        res["bpcer_at_apcer"][_key(x)] = applied(op.threshold, {"bpcer": op.bpcer, "apcer": op.apcer})
        op = dpad.apcer_at_bpcer(x)
        res["apcer_at_bpcer"][_key(x)] = applied(op.threshold, {"bpcer": op.bpcer, "apcer": op.apcer})
    de = dpad.d_eer()
    res["d_eer"] = {"dev_d_eer": de.d_eer, **applied(de.threshold, {"bpcer": None, "apcer": None})}
    res["d_eer"].pop("dev_bpcer")
    res["d_eer"].pop("dev_apcer")
    return res


def _sorted_groups(pad: PadScores, kind: str) -> dict[str, list[np.ndarray]]:
    """Sorted score arrays (user scale) of bona fide and of the attack species, for the
    histogram (counted with ``searchsorted``; nothing is re-sorted or concatenated)."""
    def user(v):
        return v if pad.higher_is_attack else -v[::-1]

    return {"bona fide": [user(pad.bona_fide.v)],
            ("morphing attack" if kind == "mad" else "attack"): [user(a.v) for a in pad.attacks.values()]}


def write_pad_report(table_or_csv: Any, out_dir: str | Path, *, title: str | None = None,
                     targets: Sequence[float] = DEFAULT_TARGETS, n_bootstrap: int = 1000, confidence: float = 0.95,
                     seed: int = 0, higher_is_attack: bool = True, formats: Sequence[str] = ("json", "md", "html"),
                     extra_sections: Sequence[str] = (), kind: str = "pad", dev: Any = None) -> dict:
    """Compute :func:`pad_report` and write ``report.json``/``report.md``/``report.html``
    atomically into ``out_dir``. ``table_or_csv`` is a PAD scores CSV path, a
    :class:`~madpad.report.scores.PadScoreTable` or a dict with ``scores``, ``labels``,
    ``species`` (and optionally ``ids``, ``subjects``, ``status``). ``dev`` (same forms) fixes
    the thresholds on development scores (``dev_eval``); ``kind="mad"`` writes the
    ISO/IEC 20059 vocabulary. Returns the report dict with ``"files"`` (format -> path) added.
    """
    table = _as_table(table_or_csv)
    dev_table = None if dev is None else _as_table(dev)
    acq = table.acquired
    n_bf = int(np.count_nonzero(~table.is_attack & acq))
    n_at = int(np.count_nonzero(table.is_attack & acq))
    if n_bf == 0 or n_at == 0:
        missing = "bona fide" if n_bf == 0 else "attack"
        extra = " with a score" if table.n_failed else ""
        raise ManifestError(f"no {missing} rows{extra}; a PAD report needs both bona fide and attack scores",
                            path=table.path, field="label")
    if dev_table is not None:
        d_bf = int(np.count_nonzero(~dev_table.is_attack & dev_table.acquired))
        d_at = int(np.count_nonzero(dev_table.is_attack & dev_table.acquired))
        if d_bf == 0 or d_at == 0:
            raise ManifestError(f"no {'bona fide' if d_bf == 0 else 'attack'} rows in the development scores; "
                                f"thresholds need both classes", path=dev_table.path, field="label")
    try:
        rep, pad = pad_report_table(table, targets=targets, higher_is_attack=higher_is_attack,
                                    n_bootstrap=n_bootstrap, confidence=confidence, seed=seed, title=title,
                                    source=table.path, kind=kind, dev=dev_table, _return_pad=True)
    except ValueError as exc:
        if isinstance(exc, ManifestError):
            raise
        raise ManifestError(str(exc), path=table.path) from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    clean = clean_json(rep)
    if "json" in formats:
        files["json"] = str(atomic_write_json(out / "report.json", clean))
    if "md" in formats:
        files["md"] = str(atomic_write_text(out / "report.md", pad_report_markdown(clean)))
    if "html" in formats:
        groups = _sorted_groups(pad, kind)
        files["html"] = str(atomic_write_text(out / "report.html", pad_report_html(
            clean, groups=groups, extra_sections=extra_sections)))
    clean["files"] = files
    return clean


def load_report(path: str | Path) -> dict:
    """Read a ``report.json`` written by :func:`write_pad_report`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))

"""ISO/IEC 30107-3 figures of the demo's PAD steps (``detect``, ``tshirt``): a
:func:`madpad.report.pad_report` of the items that got a score, and the summary the step
results keep."""

from __future__ import annotations

import numpy as np

from madpad.pipeline.stages.demo.common import APCER_TARGETS


def pad_figures(scores, items, status, *, n_bootstrap: int, seed: int, title: str, subjects=None) -> dict:
    """ISO/IEC 30107-3 report of the items that got a score (failed items are counted apart)."""
    from madpad.report.format import clean_json
    from madpad.report.pad import pad_report

    scores = np.asarray(scores, dtype=np.float64)
    ok = np.array([st == "ok" for st in status], dtype=bool) & np.isfinite(scores)

    def get(p, k):
        return p.get(k) if isinstance(p, dict) else getattr(p, k, None)

    labels = [get(p, "label") for p in items]
    species = [get(p, "species") or "" for p in items]
    ids = [get(p, "id") for p in items]
    if subjects is None:
        subjects = [(p.extra or {}).get("live_subject") or ";".join(p.subjects) for p in items]
    sel = np.flatnonzero(ok)
    rep = pad_report(scores[sel], [labels[i] for i in sel],
                     [species[i] if labels[i] == "attack" else "" for i in sel], ids=[ids[i] for i in sel],
                     subjects=[subjects[i] for i in sel], targets=APCER_TARGETS, n_bootstrap=n_bootstrap, seed=seed,
                     title=title)
    rep["n_failed"] = int((~ok).sum())
    rep["n_failed_by_label"] = {lab: int(sum(1 for i in np.flatnonzero(~ok) if labels[i] == lab))
                                for lab in ("bona_fide", "attack")}
    return clean_json(rep)


def pad_summary(rep: dict) -> dict:
    """The figures of a PAD report that the demo's result and report.json keep."""
    return {"n_bona_fide": rep["n_bona_fide"], "n_attack": rep["n_attack"], "n_failed": rep.get("n_failed", 0),
            "species": rep["species"], "d_eer": rep["d_eer"], "d_eer_ci": rep.get("d_eer_ci"),
            "d_eer_per_species": rep["d_eer_per_species"],
            "bpcer_at_apcer": {k: v["bpcer"] for k, v in rep["bpcer_at_apcer"].items()},
            "apcer_at_bpcer": {k: v["apcer"] for k, v in rep["apcer_at_bpcer"].items()}}

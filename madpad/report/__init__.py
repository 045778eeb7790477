"""PAD and morphing-vulnerability reports (JSON, Markdown, self-contained HTML).

Command line: ``python -m madpad.report pad|vulnerability|compare ...`` (see ``docs/reports.md``).

Library API (imported lazily, so ``import madpad.report`` stays cheap):

* :func:`pad_report` -- every ISO/IEC 30107-3 figure of a score set as a JSON-ready dict
  (failures to acquire, dev -> eval thresholds, ISO/IEC 20059 MAD vocabulary);
* :func:`write_pad_report` -- ``report.json``, ``report.md`` and ``report.html`` in a folder;
* :func:`vulnerability_report` / :func:`write_vulnerability_report` -- MMPMR,
  ProdAvg-MMPMR, RMMR and the MAP matrix from comparison scores;
* :func:`compare_report` / :func:`write_compare_report` -- several detectors on the same
  samples, with paired bootstrap intervals of their differences;
* :mod:`madpad.report.html` and :mod:`madpad.report.plots` -- the building blocks that
  every madpad HTML report uses.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "pad_report": "madpad.report.pad",
    "pad_report_table": "madpad.report.pad",
    "compare_report": "madpad.report.compare",
    "write_compare_report": "madpad.report.compare",
    "write_pad_report": "madpad.report.pad",
    "pad_report_markdown": "madpad.report.pad_render",
    "pad_report_html": "madpad.report.pad_render",
    "read_pad_scores": "madpad.report.scores",
    "read_comparison_scores": "madpad.report.scores",
    "PadScoreTable": "madpad.report.scores",
    "ComparisonTable": "madpad.report.scores",
    "vulnerability_report": "madpad.report.vulnerability",
    "write_vulnerability_report": "madpad.report.vulnerability",
}

__all__ = [
    "ComparisonTable", "PadScoreTable", "compare_report", "html", "pad_report", "pad_report_html",
    "pad_report_markdown", "pad_report_table", "plots", "read_comparison_scores", "read_pad_scores",
    "vulnerability_report", "write_compare_report", "write_pad_report", "write_vulnerability_report",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in ("html", "plots"):
        return importlib.import_module(f"madpad.report.{name}")
    raise AttributeError(f"module 'madpad.report' has no attribute {name!r}")

"""Number and table formatting shared by the madpad reports (PAD, vulnerability, compare):
JSON-safe values, percentages, intervals, thresholds and Markdown tables."""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np


def clean_json(obj: Any) -> Any:
    """NaN/inf -> None, numpy scalars/arrays -> Python, recursively (strict JSON)."""
    if isinstance(obj, Mapping):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f":  # fast path for long float arrays (DET curves)
            vals = obj.tolist()
            if np.isfinite(obj).all():
                return vals
            return clean_json(vals)
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


def _md_table(rows: list[dict]) -> str:
    if not rows:
        return "_(none)_\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines) + "\n"

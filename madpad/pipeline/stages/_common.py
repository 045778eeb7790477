"""Helpers shared by the stage functions: tables, per-process component caches, failures."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from madpad.io import atomic_write_text

# Components (segmenters, embedders, morph generators) built once per worker process.
_COMPONENTS: dict = {}


def component(kind: str, spec: Any, build):
    """The component for ``(kind, spec)`` built once per process by ``build()``."""
    key = (kind, json.dumps(spec, sort_keys=True, default=str))
    if key not in _COMPONENTS:
        _COMPONENTS[key] = build()
    return _COMPONENTS[key]


def spec_hash(spec: Any, n: int = 12) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:n]


def write_csv(path: str | Path, rows: Sequence[Mapping], columns: Sequence[str] | None = None) -> Path:
    """Atomic CSV with a fixed column order (extra keys appended); floats written with repr."""
    cols = list(columns or [])
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_cell(r.get(c, "")) for c in cols])
    return atomic_write_text(path, buf.getvalue())


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    if isinstance(v, (np.floating,)):
        return _cell(float(v))
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def read_csv(path: str | Path) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        from madpad.errors import ManifestError

        raise ManifestError("table not found", path=p)
    with open(p, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def is_failure(result: Any) -> bool:
    """True for the runner's ``ItemFailure`` values (an item that raised)."""
    return type(result).__name__ == "ItemFailure"


def failure_text(result: Any) -> str:
    err = getattr(result, "error", result)
    return f"{type(err).__name__}: {err}" if isinstance(err, BaseException) else str(err)


def run_map(ctx, fn, items: list, *, desc: str) -> list:
    """``ctx.map`` with a serial fallback for contexts without one (library use)."""
    if not items:
        return []
    mapper = getattr(ctx, "map", None)
    if mapper is None:
        return [fn(it) for it in items]
    return list(mapper(fn, items, desc=desc))


def log(ctx, msg: str, *args) -> None:
    logger = getattr(ctx, "log", None)
    if logger is not None:
        logger.info(msg, *args)


def as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [value]


def finite_mean(values: Iterable[float]) -> float:
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")

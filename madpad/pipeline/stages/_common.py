"""Helpers shared by the stage functions: tables, per-process component caches, published
files, failures."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

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


def _plain(v: Any) -> Any:
    """A table cell value: numpy scalars as Python numbers, NaN and None as an empty cell."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return v


def write_csv(path: str | Path, rows: Sequence[Mapping], columns: Sequence[str] | None = None) -> Path:
    """Atomic CSV (:func:`madpad.data.write_table`) with a fixed column order (extra keys
    appended); floats written with repr, NaN and None as empty cells."""
    from madpad.data import write_table

    return write_table(path, [{k: _plain(v) for k, v in r.items()} for r in rows], columns=columns, fmt="csv")


def read_csv(path: str | Path) -> list[dict]:
    """The rows (dicts of stripped strings) of a CSV table (:func:`madpad.data.read_table`);
    a missing or malformed file raises :class:`madpad.errors.ManifestError` naming it."""
    from madpad.data import read_table

    return read_table(path, fmt="csv").rows


def publish_file(src: str | Path, dst: Path) -> bool:
    """Copy ``src`` (a per-item file in the stage cache folder) to the output path ``dst``;
    False when ``src`` is missing."""
    src = Path(src)
    if not src.is_file():
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return True


def publish_folder(scratch: Path, out: Path) -> None:
    """Replace the output folder ``out`` by a copy of ``scratch`` (a job folder in the stage
    cache directory, where an interrupted job resumes)."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(scratch, out)


def scratch_dir(ctx, *parts: str) -> Path:
    """A folder for per-item files that must survive an interrupted run (the stage cache dir)."""
    base = Path(ctx.cache_dir) if getattr(ctx, "cache_dir", None) else Path(ctx.outputs[next(iter(ctx.outputs))]).parent
    d = base.joinpath("files", *parts)
    d.mkdir(parents=True, exist_ok=True)
    return d


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

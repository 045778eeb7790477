"""Columnar CSV reading for large tables (score files), with row-precise errors.

`polars <https://pola.rs>`_ parses the file (multi-threaded, no Python object per row);
the caller checks whole columns at once and, on a fault, names the first bad row the way
:func:`madpad.data.read_table` does: the **row is the record number with the header as
row 1** (a blank line is a record too, so for ordinary files it is the line number).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "s.csv").write_text("id,score\\na,0.5\\nb,x\\n")
>>> t = read_columns(d / "s.csv", ["id", "score"])
>>> t.height, t.row_number(1)
(2, 3)
>>> t.check([(t.strings("score").str.strip_chars().cast(float, strict=False).is_null(), "score", "not a number")])
Traceback (most recent call last):
...
madpad.errors.ManifestError: ...s.csv row 3: field 'score': not a number

Every problem raises :class:`madpad.errors.ManifestError` (``path``, ``row``, ``field``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from madpad.errors import ManifestError

__all__ = ["ColumnarTable", "read_columns", "first_true"]


def _polars():
    import polars as pl

    return pl


def _decoded_lines(fh):
    """Lines of a binary file decoded one at a time (so a decoding fault has a row)."""
    first = True
    for raw in fh:
        if first and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        first = False
        yield raw.decode("utf-8")


def read_header(path: Path, required: Sequence[str]) -> list[str]:
    """The header (names as written) after checking required and duplicate columns (row 1)."""
    if not path.exists():
        raise ManifestError("file not found", path=path)
    if not path.is_file():
        raise ManifestError("not a file", path=path)
    with open(path, "rb") as fh:
        try:
            header = next(csv.reader(_decoded_lines(fh)))
        except StopIteration:
            raise ManifestError(f"file is empty; expected a header line {','.join(required)}", path=path) from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ManifestError(f"cannot parse CSV ({exc})", path=path, row=1) from None
    names = [h.strip() for h in header]
    missing = [c for c in required if c not in names]
    if missing:
        raise ManifestError(f"missing column(s) {missing}; expected header {','.join(required)} "
                            f"(got {','.join(names)})", path=path, row=1)
    dup = sorted({h for h in names if names.count(h) > 1 and h})
    if dup:
        raise ManifestError(f"duplicate column(s) {dup}", path=path, row=1)
    return header


def _scan_for_fault(path: Path, n_columns: int) -> None:
    """Row-by-row scan (only after polars refused the file) that raises at the first
    structural fault: too many values, undecodable bytes, broken quoting."""
    line = 1
    with open(path, "rb") as fh:
        reader = csv.reader(_decoded_lines(fh), strict=True)
        try:
            next(reader)
            for values in reader:
                line += 1
                if len(values) > n_columns and any(v.strip() for v in values):
                    raise ManifestError(f"{len(values)} values for {n_columns} columns", path=path, row=line)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ManifestError(f"cannot parse CSV ({exc})", path=path, row=line + 1) from None


def first_true(mask: Any) -> int | None:
    """Index of the first True of a boolean numpy array or polars Series (nulls count as
    False), or None."""
    if mask is None:
        return None
    if hasattr(mask, "arg_true"):
        idx = mask.fill_null(False).arg_true()
        return int(idx[0]) if idx.len() else None
    arr = np.asarray(mask, dtype=bool)
    if not arr.size:
        return None
    i = int(np.argmax(arr))
    return i if arr[i] else None


@dataclass
class ColumnarTable:
    """The requested columns of a CSV as polars string Series (header names stripped).

    ``rows`` maps a position in the table to its row number (record number, header = row
    1); blank records (every requested column empty) are already dropped.
    """

    path: Path
    frame: Any                         # polars.DataFrame, String columns
    header: list[str]
    rows: np.ndarray | None = None     # None: position i is row i + 2 (no blank record dropped)
    n_blank: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.frame.height)

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns)

    def has(self, name: str) -> bool:
        return name in self.frame.columns

    def strings(self, name: str):
        """Column ``name`` as a polars String Series (nulls kept)."""
        return self.frame.get_column(name)

    def stripped(self, name: str):
        """Column ``name`` with surrounding whitespace removed and nulls as ``""``."""
        return self.frame.get_column(name).fill_null("").str.strip_chars()

    def row_number(self, i: int) -> int:
        return int(i) + 2 if self.rows is None else int(self.rows[int(i)])

    def error(self, i: int | None, field: str | None, message: str) -> ManifestError:
        return ManifestError(message, path=self.path, row=None if i is None else self.row_number(i), field=field)

    def check(self, checks: Iterable[tuple[Any, str | None, str | Callable[[int], str]]]) -> None:
        """Raise for the first row that fails any check. Each check is ``(bad_mask, field,
        message)`` where ``message`` is a string or a function of the row position; among
        faults on the same row the first check listed wins."""
        best = None
        for order, (mask, fld, msg) in enumerate(checks):
            i = first_true(mask)
            if i is not None and (best is None or i < best[0]):
                best = (i, order, fld, msg)
        if best is not None:
            i, _, fld, msg = best
            raise self.error(i, fld, msg(i) if callable(msg) else msg)


def read_columns(path: str | Path, required: Sequence[str], *, optional: Sequence[str] = (),
                 float_columns: Sequence[str] = ()) -> ColumnarTable:
    """Read the ``required`` and present ``optional`` columns of a CSV with polars.

    Checks the header first (missing or duplicate columns: row 1), reads every requested
    column as text (``float_columns`` are tried as Float64 first and re-read as text only
    when that fails, so a bad number can be located), drops blank records and returns a
    :class:`ColumnarTable`. Structural faults (too many values on a row, undecodable
    bytes, broken quoting) are located by a row-by-row scan and raised with their row.
    """
    pl = _polars()
    p = Path(path)
    header = read_header(p, required)
    stripped = [h.strip() for h in header]
    wanted = [c for c in list(required) + [c for c in optional if c not in required] if c in stripped]
    raw = {c: header[stripped.index(c)] for c in wanted}

    def _read(float_ok: bool):
        schema = {raw[c]: (pl.Float64 if (float_ok and c in float_columns) else pl.String) for c in wanted}
        return pl.read_csv(p, columns=[raw[c] for c in wanted], schema_overrides=schema, infer_schema=False,
                           has_header=True, encoding="utf8", raise_if_empty=False)

    floats_typed = bool(float_columns)
    try:
        try:
            df = _read(True)
        except Exception:  # noqa: BLE001 - a bad number in a float column: re-read as text to locate it
            if not float_columns:
                raise
            floats_typed = False
            df = _read(False)
    except Exception as exc:  # noqa: BLE001 - polars raises several exception types
        _scan_for_fault(p, len(header))
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ManifestError(f"cannot parse CSV ({first})", path=p) from None
    df = df.rename({raw[c]: c for c in wanted if raw[c] != c})
    # blank records: every requested column null or whitespace. Cheap first: a record can only
    # be blank where all but the first column are null (a blank or whitespace-only line has one field)
    blank = None
    if df.height and all(df.get_column(c).null_count() for c in wanted[1:]):
        cand = None
        for c in wanted[1:]:
            e = df.get_column(c).is_null()
            cand = e if cand is None else (cand & e)
        if cand.any():
            first = df.get_column(wanted[0])
            e = first.is_null() if first.dtype != pl.String else first.fill_null("").str.strip_chars().eq("")
            blank = cand & e
    rows = None
    n_blank = int(blank.sum()) if blank is not None else 0
    if n_blank:
        keep = ~blank
        rows = (np.flatnonzero(keep.to_numpy()) + 2).astype(np.int64)
        df = df.filter(keep)
    return ColumnarTable(path=p, frame=df, header=stripped, rows=rows, n_blank=n_blank,
                         extra={"floats_typed": floats_typed})

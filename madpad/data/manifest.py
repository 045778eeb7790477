"""Dataset manifests: one format (CSV with a header, or JSONL with the same field names).

Three kinds of manifest share the format (field definitions in ``data_manifests/README.md``):

* **image manifest** ``id,path,subject,label,species,capture,source`` (+ extra columns, kept);
* **D-MAD pair manifest** ``id,suspect,live,label,species,subjects`` (``subjects`` ``;``-joined);
* **morph manifest** ``id,path,a,b,subject_a,subject_b,alpha,method,seed,params,status,error``
  (``params`` a JSON object, in CSV as a JSON string).

``label`` is ``bona_fide`` or ``attack``; an attack needs an attack ``species`` (morph method,
presentation attack instrument type, ...); a bona fide row has an empty species.

Paths are relative to a dataset root given at load time (default: the manifest's folder),
always with ``/`` separators. Loading validates once, at the boundary: missing columns,
unknown labels, duplicate ids, missing files, absolute/Windows-style paths and paths that
escape the root all raise :class:`madpad.errors.ManifestError` naming the manifest file, the
row and the field. Row numbers are those a spreadsheet user sees: in a CSV the header is
row 1 and the first data row is row 2; in a JSONL file the row is the line number.

Loaders return a :class:`Manifest` (a ``list`` of dataclass rows with ``.path``/``.root``/
``.kind`` attributes) whose path fields are absolute :class:`~pathlib.Path` objects resolved
under the root; the manifest's own relative strings are kept in ``row.rel`` so writers can
write the file back unchanged.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io as _io
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from madpad.data.subjects import SUBJECT_SEP, record_subjects, split_subjects
from madpad.errors import ManifestError
from madpad.io import atomic_write_text, resolve_under_root

BONA_FIDE = "bona_fide"
ATTACK = "attack"
LABELS = (BONA_FIDE, ATTACK)

IMAGE_COLUMNS = ("id", "path", "subject", "label", "species", "capture", "source")
PAIR_COLUMNS = ("id", "suspect", "live", "label", "species", "subjects")
MORPH_COLUMNS = ("id", "path", "a", "b", "subject_a", "subject_b", "alpha", "method", "seed", "params",
                 "status", "error")

#: Columns that must be present in the header (others of the *_COLUMNS default to "").
IMAGE_REQUIRED = ("id", "path", "subject", "label")
PAIR_REQUIRED = ("id", "suspect", "live", "label", "subjects")
MORPH_REQUIRED = ("id", "path", "subject_a", "subject_b", "method")

MAX_LISTED = 5
_BOM = b"\xef\xbb\xbf"  # the UTF-8 byte order mark Excel writes
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


# --------------------------------------------------------------------------- row types
@dataclass
class ImageRecord:
    """One image. ``path`` is absolute (resolved under the root) after loading;
    ``subject`` may hold several ``;``-joined ids for an attack made from several people
    (a morph's contributors)."""

    id: str
    path: Path
    subject: str
    label: str
    species: str = ""
    capture: str = ""
    source: str = ""
    extra: dict = field(default_factory=dict)
    rel: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def subjects(self) -> tuple[str, ...]:
        return split_subjects(self.subject)

    @property
    def is_attack(self) -> bool:
        return self.label == ATTACK

    def to_row(self) -> dict:
        row = {"id": self.id, "path": _rel_or_path(self, "path"), "subject": self.subject, "label": self.label,
               "species": self.species, "capture": self.capture, "source": self.source}
        row.update(self.extra)
        return row


@dataclass
class PairRecord:
    """A differential-MAD pair: a ``suspect`` image (document presented at the border,
    possibly a morph) and a trusted ``live`` capture. ``label`` is ``attack`` when the
    suspect is a morph (``species`` = morph method); ``subjects`` are the suspect's
    contributing subjects (one for bona fide)."""

    id: str
    suspect: Path
    live: Path
    label: str
    species: str = ""
    subjects: tuple = ()
    extra: dict = field(default_factory=dict)
    rel: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_attack(self) -> bool:
        return self.label == ATTACK

    def to_row(self) -> dict:
        row = {"id": self.id, "suspect": _rel_or_path(self, "suspect"), "live": _rel_or_path(self, "live"),
               "label": self.label, "species": self.species, "subjects": SUBJECT_SEP.join(self.subjects)}
        row.update(self.extra)
        return row


@dataclass
class MorphRecord:
    """A generated morph of contributors ``a`` and ``b`` (ids or paths of the source images,
    kept as written) with subjects ``subject_a``/``subject_b``. ``path`` is None for a
    row whose generation failed (``status`` != "ok")."""

    id: str
    path: Path | None
    a: str
    b: str
    subject_a: str
    subject_b: str
    alpha: float = 0.5
    method: str = ""
    seed: int = 0
    params: dict = field(default_factory=dict)
    status: str = "ok"
    error: str = ""
    extra: dict = field(default_factory=dict)
    rel: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def subjects(self) -> tuple[str, ...]:
        return (self.subject_a, self.subject_b)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_row(self) -> dict:
        row = {"id": self.id, "path": "" if self.path is None else _rel_or_path(self, "path"), "a": self.a,
               "b": self.b, "subject_a": self.subject_a, "subject_b": self.subject_b, "alpha": float(self.alpha),
               "method": self.method, "seed": int(self.seed), "params": dict(self.params), "status": self.status,
               "error": self.error}
        row.update(self.extra)
        return row


def _rel_or_path(rec: Any, name: str) -> str:
    rel = rec.rel.get(name) if rec.rel else None
    if rel:
        return rel
    value = getattr(rec, name)
    return "" if value is None else str(value).replace(os.sep, "/")


class Manifest(list):
    """A list of rows plus where they came from: ``.path`` (the manifest file or None),
    ``.root`` (dataset root the paths were resolved under), ``.kind`` ("images", "pairs",
    "morphs") and ``.extra_columns`` (columns beyond the standard ones, in file order)."""

    def __init__(self, rows: Iterable = (), *, path=None, root=None, kind: str = "", extra_columns=()):
        super().__init__(rows)
        self.path = None if path is None else Path(path)
        self.root = None if root is None else Path(root)
        self.kind = kind
        self.extra_columns = tuple(extra_columns)

    def by_id(self) -> dict:
        return {r.id: r for r in self}

    def subjects(self) -> set[str]:
        out: set[str] = set()
        for r in self:
            out.update(record_subjects(r))
        return out

    def __repr__(self) -> str:
        return f"Manifest(kind={self.kind!r}, n={len(self)}, path={str(self.path) if self.path else None!r})"


# --------------------------------------------------------------------------- generic tables
@dataclass
class Table:
    """Raw rows of a CSV/JSONL file: ``columns`` (header order), ``rows`` (dicts) and
    ``row_numbers`` (the spreadsheet row / JSONL line of each row)."""

    path: Path
    columns: list
    rows: list
    row_numbers: list

    def __len__(self) -> int:
        return len(self.rows)


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in ("csv", "jsonl"):
            raise ManifestError(f"unknown manifest format {fmt!r}; use 'csv' or 'jsonl'", path=path)
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".txt", ""):
        return "csv"
    raise ManifestError(f"cannot tell the format from the suffix {suffix!r}; name the file .csv or .jsonl",
                        path=path)


def read_table(path: str | os.PathLike, *, fmt: str | None = None) -> Table:
    """Read a CSV (header + rows; UTF-8, an Excel BOM is accepted) or JSONL file.

    Rows with more or fewer fields than the header raise :class:`ManifestError` naming the row.
    Blank lines are skipped (they still count for row numbers). Values are stripped strings in
    CSV; JSONL values keep their JSON types.
    """
    p = Path(path)
    if not p.is_file():
        raise ManifestError("manifest file not found", path=p)
    kind = _format_of(p, fmt)
    raw = p.read_bytes()
    bom = len(_BOM) if raw.startswith(_BOM) else 0
    try:
        text = raw[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[bom: bom + exc.start].count(b"\n") + 1  # the line an editor shows (the row, unless a quoted
        # field spans lines)
        raise ManifestError(f"not UTF-8 text ({exc.reason} at byte {bom + exc.start}); save the file as UTF-8",
                            path=p, row=line) from None
    if kind == "jsonl":
        return _read_jsonl(p, text)
    return _read_csv(p, text)


def _read_csv(p: Path, text: str) -> Table:
    reader = csv.reader(_io.StringIO(text, newline=""))
    header = None
    rows, numbers = [], []
    record_no = 0
    try:
        for fields in reader:
            record_no += 1
            if header is None:
                if not fields or all(not f.strip() for f in fields):
                    raise ManifestError("the header row is empty; the first row must name the columns", path=p,
                                        row=record_no)
                header = [f.strip() for f in fields]
                seen: dict = {}
                for i, name in enumerate(header):
                    if not name:
                        raise ManifestError(f"column {i + 1} of the header has no name", path=p, row=record_no)
                    if name in seen:
                        raise ManifestError(f"column {name!r} appears twice in the header", path=p, row=record_no,
                                            field=name)
                    seen[name] = i
                continue
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise ManifestError(f"has {len(fields)} fields but the header has {len(header)} "
                                    f"({','.join(header)}); quote values that contain commas", path=p, row=record_no)
            rows.append({k: v.strip() for k, v in zip(header, fields)})
            numbers.append(record_no)
    except csv.Error as exc:
        raise ManifestError(f"malformed CSV ({exc})", path=p, row=record_no + 1) from None
    if header is None:
        raise ManifestError("empty file; expected a header row naming the columns", path=p)
    return Table(p, header, rows, numbers)


def _read_jsonl(p: Path, text: str) -> Table:
    columns: list = []
    rows, numbers = [], []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"invalid JSON ({exc.msg} at column {exc.colno})", path=p, row=line_no) from None
        if not isinstance(obj, dict):
            raise ManifestError(f"each line must be a JSON object; got {type(obj).__name__}", path=p, row=line_no)
        for k in obj:
            if k not in columns:
                columns.append(k)
        rows.append({str(k): (v.strip() if isinstance(v, str) else v) for k, v in obj.items()})
        numbers.append(line_no)
    return Table(p, columns, rows, numbers)


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):  # float() first: repr(np.float64(0.1)) is 'np.float64(0.1)'
        return repr(float(value)) if math.isfinite(value) else str(float(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if isinstance(value, tuple):
        return SUBJECT_SEP.join(map(str, value))
    return str(value)


def write_table(path: str | os.PathLike, rows: Sequence[Mapping], *, columns: Sequence[str] | None = None,
                fmt: str | None = None) -> Path:
    """Write rows (dicts) atomically as CSV (header + rows) or JSONL (by suffix or ``fmt``).

    ``columns`` fixes the order; keys not listed are appended in first-seen order.
    In CSV, dict/list values are written as compact JSON strings, tuples ``;``-joined.
    """
    p = Path(path)
    kind = _format_of(p, fmt)
    cols = list(columns or [])
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    if kind == "jsonl":
        lines = []
        for r in rows:
            obj = {}
            for c in cols:
                v = r.get(c, "")
                if isinstance(v, Path):
                    v = str(v)
                elif isinstance(v, tuple):
                    v = list(v)
                obj[c] = v
            lines.append(json.dumps(obj, ensure_ascii=False, default=str))
        atomic_write_text(p, "".join(line + "\n" for line in lines))
        return p
    buf = _io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_cell_text(r.get(c, "")) for c in cols])
    atomic_write_text(p, buf.getvalue())
    return p


# --------------------------------------------------------------------------- validation helpers
class _Ctx:
    """Row-level validation context: file, row number, root, and the missing-file list."""

    def __init__(self, path: Path, root: Path, check_files: bool):
        self.path = path
        self.root = root
        self.check_files = check_files
        self.missing: list = []  # (row, field, rel)
        self._root_str: str | None = None

    def err(self, msg: str, row: int | None = None, fld: str | None = None) -> ManifestError:
        return ManifestError(msg, path=self.path, row=row, field=fld)

    def text(self, raw: Mapping, name: str, row: int, *, required: bool = False) -> str:
        v = raw.get(name, "")
        if type(v) is str:  # the common case (every CSV value)
            if required and not v:
                raise self.err("is empty; a value is required", row, name)
            return v
        if v is None:
            v = ""
        if isinstance(v, (dict, list)):
            raise self.err(f"expected a text value, got a JSON {type(v).__name__}", row, name)
        s = _cell_text(v).strip()
        if required and not s:
            raise self.err("is empty; a value is required", row, name)
        return s

    def under_root(self, rel: str, row: int, fld: str) -> Path:
        """``root/rel`` normalised, refusing paths whose text leaves the root (``..``).

        The check is lexical (no file system calls per row, so large manifests load fast), and
        symbolic links inside the root are followed when files are read, so a root whose
        sub-folders link to other disks works.
        """
        if self._root_str is None:
            self._root_str = os.path.normpath(os.path.abspath(self.root))
        full = os.path.normpath(os.path.join(self._root_str, rel))
        if not (full == self._root_str or full.startswith(self._root_str.rstrip(os.sep) + os.sep)) or os.path.isabs(rel):
            return resolve_under_root(self.root, rel, manifest=self.path, row=row, field=fld)  # raises, same message
        return Path(full)

    def resolve(self, rel: str, row: int, fld: str) -> Path:
        if not rel:
            raise self.err("is empty; expected a path relative to the dataset root", row, fld)
        if "\\" in rel or _WINDOWS_DRIVE.match(rel):
            raise self.err(f"path {rel!r} looks like a Windows path; write paths relative to the dataset root "
                           f"with '/' separators (e.g. {rel.replace(chr(92), '/').split(':', 1)[-1].lstrip('/')!r})",
                           row, fld)
        if rel.startswith(("/", "~")):
            raise self.err(f"path {rel!r} is absolute; manifest paths must be relative to the dataset root "
                           f"(pass the root when loading, e.g. root=...)", row, fld)
        full = self.under_root(rel, row, fld)
        if self.check_files and not full.is_file():
            self.missing.append((row, fld, rel))
        return full

    def finish(self) -> None:
        if not self.missing:
            return
        n = len(self.missing)
        listed = ", ".join(f"row {r} {f}={rel!r}" for r, f, rel in self.missing[:MAX_LISTED])
        more = f" and {n - MAX_LISTED} more" if n > MAX_LISTED else ""
        row, fld, _ = self.missing[0]
        raise ManifestError(f"{n} file(s) not found under the dataset root {str(self.root)!r}: {listed}{more}. "
                            f"Check the root the paths are relative to (root= / --root), or skip this check "
                            f"(check_files=False / --no-files)",
                            path=self.path, row=row, field=fld)


def _check_label(ctx: _Ctx, raw: Mapping, row: int, *, species_field: str = "species") -> tuple[str, str]:
    label = ctx.text(raw, "label", row, required=True)
    if label not in LABELS:
        close = difflib.get_close_matches(label.lower().replace("-", "_").replace(" ", "_"), LABELS, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ctx.err(f"must be one of {{'bona_fide', 'attack'}}; got {label!r}{hint}", row, "label")
    species = ctx.text(raw, species_field, row)
    if label == ATTACK and not species:
        raise ctx.err("is empty but label is 'attack'; an attack needs its attack species "
                      "(e.g. the morph method or instrument type)", row, species_field)
    if label == BONA_FIDE and species:
        raise ctx.err(f"must be empty for a bona fide row; got {species!r}", row, species_field)
    return label, species


def _check_header(table: Table, required: Sequence[str], kind: str) -> None:
    if not table.rows and not table.columns:
        raise ManifestError(f"empty {kind} manifest: no rows", path=table.path)
    have = set(table.columns)
    missing = [c for c in required if c not in have]
    if missing:
        hints = []
        for m in missing:
            close = difflib.get_close_matches(m, [c for c in table.columns if c not in required], n=1, cutoff=0.6)
            if close:
                hints.append(f"{close[0]!r} -> {m!r}?")
        hint = f" (rename {', '.join(hints)})" if hints else ""
        raise ManifestError(f"missing required column(s) {missing} in this {kind} manifest; found "
                            f"{list(table.columns)}{hint}", path=table.path, row=1, field=missing[0])


def _check_ids(ctx: _Ctx, table: Table) -> None:
    seen: dict = {}
    for raw, row in zip(table.rows, table.row_numbers):
        rid = ctx.text(raw, "id", row, required=True)
        if rid in seen:
            raise ctx.err(f"duplicate id {rid!r} (first used in row {seen[rid]}); ids must be unique", row, "id")
        seen[rid] = row


def _extras(raw: Mapping, standard: Sequence[str]) -> dict:
    return {k: v for k, v in raw.items() if k not in standard}


def _root_for(path: Path, root) -> Path:
    return Path(root) if root is not None else path.resolve().parent


# --------------------------------------------------------------------------- loaders
def load_images(path: str | os.PathLike, *, root: str | os.PathLike | None = None, check_files: bool = True,
                fmt: str | None = None) -> Manifest:
    """Load and validate an image manifest (CSV or JSONL).

    ``root`` is the dataset folder the ``path`` column is relative to (default: the
    manifest's own folder). With ``check_files`` every listed file must exist (the error
    lists up to 5 missing files and the count). Returns a :class:`Manifest` of
    :class:`ImageRecord` with absolute paths; unknown columns are kept in ``row.extra``.
    """
    table = read_table(path, fmt=fmt)
    _check_header(table, IMAGE_REQUIRED, "image")
    ctx = _Ctx(table.path, _root_for(table.path, root), check_files)
    _check_ids(ctx, table)
    out = Manifest(path=table.path, root=ctx.root, kind="images",
                   extra_columns=[c for c in table.columns if c not in IMAGE_COLUMNS])
    for raw, row in zip(table.rows, table.row_numbers):
        label, species = _check_label(ctx, raw, row)
        rel = ctx.text(raw, "path", row)
        subject = ctx.text(raw, "subject", row, required=True)
        subject = SUBJECT_SEP.join(split_subjects(subject))
        if not subject:
            raise ctx.err("has no subject id", row, "subject")
        out.append(ImageRecord(
            id=ctx.text(raw, "id", row), path=ctx.resolve(rel, row, "path"), subject=subject, label=label,
            species=species, capture=ctx.text(raw, "capture", row), source=ctx.text(raw, "source", row),
            extra=_extras(raw, IMAGE_COLUMNS), rel={"path": rel}))
    ctx.finish()
    return out


def load_pairs(path: str | os.PathLike, *, root: str | os.PathLike | None = None, check_files: bool = True,
               fmt: str | None = None) -> Manifest:
    """Load and validate a D-MAD pair manifest (``suspect`` and ``live`` paths under ``root``).

    ``subjects`` holds the suspect's contributing subject ids, ``;``-joined (a JSON list in
    JSONL is accepted); a bona fide pair has exactly one subject.
    """
    table = read_table(path, fmt=fmt)
    _check_header(table, PAIR_REQUIRED, "pair")
    ctx = _Ctx(table.path, _root_for(table.path, root), check_files)
    _check_ids(ctx, table)
    out = Manifest(path=table.path, root=ctx.root, kind="pairs",
                   extra_columns=[c for c in table.columns if c not in PAIR_COLUMNS])
    for raw, row in zip(table.rows, table.row_numbers):
        label, species = _check_label(ctx, raw, row)
        subjects = split_subjects(raw.get("subjects"))
        if not subjects:
            raise ctx.err("is empty; list the suspect's subject id(s), ';'-joined", row, "subjects")
        if label == BONA_FIDE and len(subjects) != 1:
            raise ctx.err(f"a bona fide pair has one subject; got {len(subjects)} ({';'.join(subjects)})",
                          row, "subjects")
        s_rel, l_rel = ctx.text(raw, "suspect", row), ctx.text(raw, "live", row)
        out.append(PairRecord(
            id=ctx.text(raw, "id", row), suspect=ctx.resolve(s_rel, row, "suspect"),
            live=ctx.resolve(l_rel, row, "live"), label=label, species=species, subjects=subjects,
            extra=_extras(raw, PAIR_COLUMNS), rel={"suspect": s_rel, "live": l_rel}))
    ctx.finish()
    return out


def load_morphs(path: str | os.PathLike, *, root: str | os.PathLike | None = None, check_files: bool = True,
                fmt: str | None = None) -> Manifest:
    """Load and validate a morph manifest (as written by ``python -m madpad.generate``).

    Rows with ``status`` "ok" (or empty, read as "ok") need an existing ``path``; failed rows
    keep ``path=None`` and their ``error``. ``alpha`` must be a number in [0, 1], ``seed`` an
    integer, ``params`` a JSON object (CSV: a JSON string; empty means ``{}``).
    """
    table = read_table(path, fmt=fmt)
    _check_header(table, MORPH_REQUIRED, "morph")
    ctx = _Ctx(table.path, _root_for(table.path, root), check_files)
    _check_ids(ctx, table)
    out = Manifest(path=table.path, root=ctx.root, kind="morphs",
                   extra_columns=[c for c in table.columns if c not in MORPH_COLUMNS])
    for raw, row in zip(table.rows, table.row_numbers):
        status = ctx.text(raw, "status", row) or "ok"
        rel = ctx.text(raw, "path", row)
        if status == "ok":
            full = ctx.resolve(rel, row, "path")
        else:
            full = None
            if rel:
                full = ctx.under_root(rel, row, "path")
        sa = ctx.text(raw, "subject_a", row, required=True)
        sb = ctx.text(raw, "subject_b", row, required=True)
        alpha_raw = raw.get("alpha", "")
        alpha = 0.5
        if alpha_raw not in ("", None):
            try:
                alpha = float(alpha_raw)
            except (TypeError, ValueError):
                raise ctx.err(f"must be a number in [0, 1]; got {alpha_raw!r}", row, "alpha") from None
            if not (0.0 <= alpha <= 1.0):
                raise ctx.err(f"must be in [0, 1]; got {alpha}", row, "alpha")
        seed_raw = raw.get("seed", "")
        seed = 0
        if seed_raw not in ("", None):
            try:
                seed = int(str(seed_raw))
            except ValueError:
                raise ctx.err(f"must be an integer; got {seed_raw!r}", row, "seed") from None
        params = _parse_params(ctx, raw.get("params", ""), row)
        out.append(MorphRecord(
            id=ctx.text(raw, "id", row), path=full, a=ctx.text(raw, "a", row), b=ctx.text(raw, "b", row),
            subject_a=sa, subject_b=sb, alpha=alpha, method=ctx.text(raw, "method", row, required=True), seed=seed,
            params=params, status=status, error=ctx.text(raw, "error", row), extra=_extras(raw, MORPH_COLUMNS),
            rel={"path": rel}))
    ctx.finish()
    return out


def _parse_params(ctx: _Ctx, value: Any, row: int) -> dict:
    if value in ("", None):
        return {}
    if isinstance(value, dict):
        return value
    try:
        obj = json.loads(str(value))
    except json.JSONDecodeError as exc:
        raise ctx.err(f"must be a JSON object (e.g. {{\"blend\": 0.5}}); cannot parse ({exc.msg})", row,
                      "params") from None
    if not isinstance(obj, dict):
        raise ctx.err(f"must be a JSON object; got a JSON {type(obj).__name__}", row, "params")
    return obj


# --------------------------------------------------------------------------- writers
_PATH_FIELDS = {ImageRecord: ("path",), PairRecord: ("suspect", "live"), MorphRecord: ("path",)}


def _relativize(records: list, root) -> list:
    """Records whose path fields have no manifest string get one relative to ``root``."""
    if root is None:
        return records
    out = []
    for r in records:
        rels = {}
        for name in _PATH_FIELDS.get(type(r), ()):
            value = getattr(r, name)
            if value is not None and not (r.rel or {}).get(name):
                p = Path(value)
                rels[name] = relative_to_root(p, root) if p.is_absolute() else p.as_posix()
        out.append(with_rel(r, **rels) if rels else r)
    return out


def _write_records(path, records, columns, fmt, root=None) -> Path:
    rows = [r.to_row() for r in _relativize(records, root)]
    p = Path(path)
    kind = _format_of(p, fmt)
    if kind == "csv":
        for r in rows:
            if isinstance(r.get("params"), dict):
                r["params"] = json.dumps(r["params"], sort_keys=True, separators=(",", ":"))
    return write_table(p, rows, columns=columns, fmt=kind)


def write_images(path: str | os.PathLike, records: Iterable[ImageRecord], *, root: str | os.PathLike | None = None,
                 fmt: str | None = None) -> Path:
    """Write an image manifest atomically (CSV or JSONL by suffix).

    Paths are written as each row's manifest string (``row.rel``, kept by the loaders); rows
    without one (built in code) get their absolute path made relative to ``root`` (a path
    outside ``root`` raises :class:`ManifestError`), or are written as given when ``root`` is None.
    """
    return _write_records(path, list(records), IMAGE_COLUMNS, fmt, root)


def write_pairs(path: str | os.PathLike, records: Iterable[PairRecord], *, root: str | os.PathLike | None = None,
                fmt: str | None = None) -> Path:
    """Write a D-MAD pair manifest atomically (``subjects`` ``;``-joined in CSV, a list in JSONL);
    ``root`` as in :func:`write_images`."""
    recs = _relativize(list(records), root)
    p = Path(path)
    if _format_of(p, fmt) == "jsonl":
        rows = []
        for r in recs:
            row = r.to_row()
            row["subjects"] = list(r.subjects)
            rows.append(row)
        return write_table(p, rows, columns=PAIR_COLUMNS, fmt="jsonl")
    return _write_records(p, recs, PAIR_COLUMNS, fmt)


def write_morphs(path: str | os.PathLike, records: Iterable[MorphRecord], *, root: str | os.PathLike | None = None,
                 fmt: str | None = None) -> Path:
    """Write a morph manifest atomically (``params`` as a JSON string in CSV, an object in JSONL);
    ``root`` as in :func:`write_images`."""
    return _write_records(path, list(records), MORPH_COLUMNS, fmt, root)


def relative_to_root(path: str | os.PathLike, root: str | os.PathLike) -> str:
    """The manifest form of ``path``: relative to ``root`` with ``/`` separators
    (raises :class:`ManifestError` when ``path`` is outside ``root``)."""
    p, r = Path(path).resolve(), Path(root).resolve()
    try:
        return p.relative_to(r).as_posix()
    except ValueError:
        raise ManifestError(f"{str(p)!r} is not inside the dataset root {str(r)!r}") from None


def with_rel(record, **rels: str):
    """Return a copy of ``record`` with its relative path strings set (``path=...`` etc.)."""
    new = dataclasses.replace(record)
    new.rel = {**(record.rel or {}), **rels}
    return new

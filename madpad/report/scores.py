"""Readers for the two score-file formats the reports consume (validated at the boundary).

**PAD scores CSV** (written by ``detect score`` / ``detect tshirt``)::

    id,score,label,species[,subject][,...]
    bf_0001,0.12,bona_fide,
    at_0001,0.91,attack,landmark

``label`` is ``bona_fide`` or ``attack``; ``species`` (the attack species / PAI species,
e.g. the morph method) is empty for bona fide and required for attacks; scores are
higher = more likely attack. An optional ``subject`` column enables the subject-level
bootstrap. Other columns are ignored.

**Comparison scores CSV** (morphing vulnerability, written by ``generate compare``)::

    system,kind,reference,probe,reference_subjects,probe_subject,score

``kind`` is ``genuine`` / ``impostor`` (licit comparisons that set the FR threshold) or
``morph`` (``reference`` is the morph, ``reference_subjects`` its contributors joined by
``;``, and ``probe_subject`` must be one of them); ``score`` is a similarity (higher = more
similar).

Every problem raises :class:`madpad.errors.ManifestError` naming the file, the row (the
line number, header = row 1) and the field.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from madpad.errors import ManifestError

__all__ = ["PAD_COLUMNS", "COMPARISON_COLUMNS", "PadScoreTable", "ComparisonTable", "read_pad_scores",
           "read_comparison_scores"]

PAD_COLUMNS = ("id", "score", "label", "species")
COMPARISON_COLUMNS = ("system", "kind", "reference", "probe", "reference_subjects", "probe_subject", "score")
LABELS = ("bona_fide", "attack")
KINDS = ("genuine", "impostor", "morph")


@dataclass
class PadScoreTable:
    """Validated PAD scores (arrays aligned by row)."""

    ids: np.ndarray          # str
    scores: np.ndarray       # float64, higher = attack
    labels: np.ndarray       # str, 'bona_fide' | 'attack'
    species: np.ndarray      # str, '' for bona fide
    subjects: np.ndarray | None = None
    path: str | None = None

    def __len__(self) -> int:
        return int(self.scores.size)

    @classmethod
    def from_arrays(cls, scores, labels, species=None, *, ids=None, subjects=None, path=None) -> "PadScoreTable":
        """Wrap in-memory arrays (validated later by :func:`madpad.report.pad_report`).
        ``species=None`` gives every attack the species ``"attack"``."""
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        lab = np.asarray(labels).reshape(-1)
        if lab.dtype == bool or lab.dtype.kind in "iu":
            lab = np.where(lab.astype(bool), "attack", "bona_fide")
        lab = lab.astype(str)
        n = s.size
        if species is None:
            sp = np.where(lab == "attack", "attack", "")
        else:
            sp = np.asarray(["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()
                             for v in species], dtype=str)
        ids_arr = np.asarray([str(i) for i in (ids if ids is not None else range(n))], dtype=str)
        subj = None if subjects is None else np.asarray(subjects).astype(str)
        return cls(ids=ids_arr, scores=s, labels=lab, species=sp, subjects=subj, path=path)


@dataclass
class ComparisonTable:
    """Validated comparison scores (arrays aligned by row)."""

    system: np.ndarray
    kind: np.ndarray
    reference: np.ndarray
    probe: np.ndarray
    reference_subjects: np.ndarray
    probe_subject: np.ndarray
    score: np.ndarray
    path: str | None = None

    def __len__(self) -> int:
        return int(self.score.size)

    @property
    def systems(self) -> list[str]:
        return list(dict.fromkeys(self.system.tolist()))


def _open_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    """Yield (line number, row dict) after checking the header."""
    if not path.exists():
        raise ManifestError("file not found", path=path)
    if not path.is_file():
        raise ManifestError("not a file", path=path)
    fh = open(path, newline="", encoding="utf-8-sig")
    try:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise ManifestError(f"file is empty; expected a header line {','.join(required)}", path=path) from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ManifestError(f"cannot parse CSV ({exc})", path=path, row=1) from None
        header = [h.strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise ManifestError(f"missing column(s) {missing}; expected header {','.join(required)} "
                                f"(got {','.join(header)})", path=path, row=1)
        dup = sorted({h for h in header if header.count(h) > 1 and h})
        if dup:
            raise ManifestError(f"duplicate column(s) {dup}", path=path, row=1)
        line = 1
        try:
            for values in reader:
                line += 1
                if not values or all(not v.strip() for v in values):
                    continue  # blank line
                if len(values) > len(header):
                    raise ManifestError(f"{len(values)} values for {len(header)} columns", path=path, row=line)
                values = values + [""] * (len(header) - len(values))
                yield line, dict(zip(header, values))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ManifestError(f"cannot parse CSV ({exc})", path=path, row=line + 1) from None
    finally:
        fh.close()


def _score(raw: str, *, path, row) -> float:
    try:
        v = float(raw)
    except ValueError:
        raise ManifestError(f"{raw.strip()!r} is not a number", path=path, row=row, field="score") from None
    if not math.isfinite(v):
        raise ManifestError(f"score is {raw.strip()!r}; scores must be finite numbers", path=path, row=row,
                            field="score")
    return v


def read_pad_scores(path: str | Path) -> PadScoreTable:
    """Read and validate a PAD scores CSV (see the module docstring)."""
    p = Path(path)
    ids, scores, labels, species, subjects = [], [], [], [], []
    seen: dict[str, int] = {}
    has_subject = None
    for row, rec in _open_rows(p, PAD_COLUMNS):
        if has_subject is None:
            has_subject = "subject" in rec
        rid = rec["id"].strip()
        if not rid:
            raise ManifestError("empty id", path=p, row=row, field="id")
        if rid in seen:
            raise ManifestError(f"duplicate id {rid!r} (first at row {seen[rid]})", path=p, row=row, field="id")
        seen[rid] = row
        lab = rec["label"].strip()
        if lab not in LABELS:
            raise ManifestError(f"'label' must be one of {{'bona_fide', 'attack'}}; got {lab!r}", path=p, row=row,
                                field="label")
        sp = rec["species"].strip()
        if lab == "attack" and not sp:
            raise ManifestError("attack row without species; give the attack species (e.g. the morph method "
                                "or PAI type)", path=p, row=row, field="species")
        if lab == "bona_fide" and sp:
            raise ManifestError(f"bona fide row has species {sp!r}; species must be empty for bona fide",
                                path=p, row=row, field="species")
        ids.append(rid)
        status = (rec.get("status") or "").strip()
        if status not in ("", "ok") and not rec["score"].strip():
            raise ManifestError(f"empty score (the row's status is {status!r}); remove rows without a score "
                                f"before reporting", path=p, row=row, field="score")
        scores.append(_score(rec["score"], path=p, row=row))
        labels.append(lab)
        species.append(sp)
        if has_subject:
            subj = rec.get("subject", "").strip()
            if not subj:
                raise ManifestError("empty subject (the column is present, so every row needs one)", path=p,
                                    row=row, field="subject")
            subjects.append(subj)
    if not scores:
        raise ManifestError("no score rows after the header", path=p)
    return PadScoreTable(ids=np.asarray(ids), scores=np.asarray(scores, dtype=np.float64),
                         labels=np.asarray(labels), species=np.asarray(species),
                         subjects=np.asarray(subjects) if has_subject else None, path=str(p))


def read_comparison_scores(path: str | Path) -> ComparisonTable:
    """Read and validate a comparison-scores CSV (see the module docstring)."""
    p = Path(path)
    cols = {c: [] for c in COMPARISON_COLUMNS}
    morph_subjects: dict[str, tuple[str, int]] = {}
    for row, rec in _open_rows(p, COMPARISON_COLUMNS):
        vals = {c: rec[c].strip() for c in COMPARISON_COLUMNS}
        for c in ("system", "reference", "probe", "reference_subjects", "probe_subject"):
            if not vals[c]:
                raise ManifestError(f"empty {c}", path=p, row=row, field=c)
        if vals["kind"] not in KINDS:
            raise ManifestError(f"'kind' must be one of {set(KINDS)}; got {vals['kind']!r}", path=p, row=row,
                                field="kind")
        refs = [s.strip() for s in vals["reference_subjects"].split(";")]
        if any(not s for s in refs):
            raise ManifestError(f"empty subject id in {vals['reference_subjects']!r}", path=p, row=row,
                                field="reference_subjects")
        kind = vals["kind"]
        if kind == "morph":
            if len(refs) < 2:
                raise ManifestError(f"a morph needs at least two contributing subjects joined by ';'; got "
                                    f"{vals['reference_subjects']!r}", path=p, row=row, field="reference_subjects")
            if vals["probe_subject"] not in refs:
                raise ManifestError(f"probe subject {vals['probe_subject']!r} is not a contributor of morph "
                                    f"{vals['reference']!r} ({vals['reference_subjects']!r})", path=p, row=row,
                                    field="probe_subject")
        elif kind == "genuine" and refs != [vals["probe_subject"]]:
            raise ManifestError(f"genuine comparison of different subjects ({vals['reference_subjects']!r} vs "
                                f"{vals['probe_subject']!r})", path=p, row=row, field="probe_subject")
        elif kind == "impostor" and vals["probe_subject"] in refs:
            raise ManifestError(f"impostor comparison of the same subject {vals['probe_subject']!r}", path=p,
                                row=row, field="probe_subject")
        vals["reference_subjects"] = ";".join(refs)
        if kind == "morph":
            key = ";".join(sorted(refs))
            first = morph_subjects.setdefault(vals["reference"], (key, row))
            if first[0] != key:
                raise ManifestError(f"morph {vals['reference']!r} has contributors {vals['reference_subjects']!r} "
                                    f"here but {first[0]!r} at row {first[1]}", path=p, row=row,
                                    field="reference_subjects")
        vals["score"] = _score(rec["score"], path=p, row=row)
        for c in COMPARISON_COLUMNS:
            cols[c].append(vals[c])
    if not cols["score"]:
        raise ManifestError("no comparison rows after the header", path=p)
    return ComparisonTable(**{c: (np.asarray(v, dtype=np.float64) if c == "score" else np.asarray(v, dtype=str))
                              for c, v in cols.items()}, path=str(p))

"""Readers for the two score-file formats the reports consume (validated at the boundary).

**PAD scores CSV** (written by ``detect score`` / ``detect tshirt``)::

    id,score,label,species[,subject][,status][,...]
    bf_0001,0.12,bona_fide,
    at_0001,0.91,attack,landmark
    at_0002,,attack,landmark,,no_face

``label`` is ``bona_fide`` or ``attack``; ``species`` (the attack species / PAI species,
e.g. the morph method) is empty for bona fide and required for attacks; scores are
higher = more likely attack. An optional ``subject`` column enables the subject-level
bootstrap. An optional ``status`` column marks **failures to acquire**: a row whose status
is neither empty nor ``ok`` (the detectors write ``failed``, ``no_face``, ...) has no
usable score (its score is ignored, usually empty) and is counted per class and species
as a failure to acquire, never dropped silently. Other columns are ignored.

**Comparison scores CSV** (morphing vulnerability, written by ``generate compare``)::

    system,kind,reference,probe,reference_subjects,probe_subject,score

``kind`` is ``genuine`` / ``impostor`` (licit comparisons that set the FR threshold) or
``morph`` (``reference`` is the morph, ``reference_subjects`` its contributors joined by
``;``, and ``probe_subject`` must be one of them); ``score`` is a similarity (higher = more
similar).

Both files are parsed column-wise (:func:`madpad.data.columnar.read_columns`, polars), so
10 million rows take seconds. Every problem raises :class:`madpad.errors.ManifestError`
naming the file, the **first** bad row (the record number, header = row 1) and the field.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from madpad.data.columnar import ColumnarTable, read_columns
from madpad.errors import ManifestError

__all__ = ["PAD_COLUMNS", "COMPARISON_COLUMNS", "OK_STATUSES", "PadScoreTable", "ComparisonTable", "read_pad_scores",
           "read_comparison_scores"]

PAD_COLUMNS = ("id", "score", "label", "species")
COMPARISON_COLUMNS = ("system", "kind", "reference", "probe", "reference_subjects", "probe_subject", "score")
LABELS = ("bona_fide", "attack")
KINDS = ("genuine", "impostor", "morph")
#: status values of an acquired row (any other status is a failure to acquire)
OK_STATUSES = ("", "ok")


def _strings(values) -> np.ndarray:
    return np.asarray(["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()
                       for v in values], dtype=str)


class PadScoreTable:
    """Validated PAD scores, one entry per row.

    Arrays (aligned by row): ``scores`` (float64, NaN on failure-to-acquire rows),
    ``is_attack`` (bool), ``species_codes`` (int32: -1 bona fide, ``k`` = ``species_names[k]``),
    ``acquired`` (bool: False on failure-to-acquire rows), ``subject_codes`` (int64 or None).
    ``ids``, ``labels``, ``species``, ``subjects`` and ``status`` are string arrays built on
    first use (cheap for small tables; avoided by the report on large ones).
    """

    def __init__(self, ids: Any = None, scores: Any = None, labels: Any = None, species: Any = None,
                 subjects: Any = None, path: str | None = None, *, status: Any = None):
        """In-memory constructor from string arrays (the reader uses :meth:`_from_parts`)."""
        from madpad.metrics import parse_labels

        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        lab = np.asarray(labels).reshape(-1)
        is_att = parse_labels(lab)  # ValueError naming the first bad label
        sp = np.where(is_att, "attack", "") if species is None else _strings(species)
        names = sorted(set(sp[is_att].tolist()) - {""}) if is_att.any() else []
        codes = np.full(s.size, -1, dtype=np.int32)
        if names:
            lookup = {k: i for i, k in enumerate(names)}
            att_idx = np.flatnonzero(is_att)
            codes[att_idx] = [lookup.get(v, -2) for v in sp[att_idx].tolist()]
        st = None if status is None else _strings(status)
        acquired = np.ones(s.size, dtype=bool) if st is None else np.isin(st, OK_STATUSES)
        subj_codes = None
        if subjects is not None:
            subj = np.asarray(subjects).astype(str)
            _, subj_codes = np.unique(subj, return_inverse=True)
            subj_codes = subj_codes.reshape(-1).astype(np.int64)
        self._set(scores=s, is_attack=is_att, species_codes=codes, species_names=names, acquired=acquired,
                  subject_codes=subj_codes, path=path, ids=ids, labels=lab, species=sp, subjects=subjects,
                  status=st)

    def _set(self, *, scores, is_attack, species_codes, species_names, acquired, subject_codes, path,
             ids=None, labels=None, species=None, subjects=None, status=None, ids_series=None,
             subjects_series=None, failed_status=None, row_numbers=None):
        self.scores = scores
        self._row_numbers = row_numbers
        self.is_attack = is_attack
        self.species_codes = species_codes
        self.species_names = list(species_names)
        self.acquired = acquired
        self.subject_codes = subject_codes
        self.path = path
        self._ids = ids
        self._ids_series = ids_series
        self._labels = labels
        self._species = species
        self._subjects = subjects
        self._subjects_series = subjects_series
        self._status = status
        self._failed_status = failed_status

    @classmethod
    def _from_parts(cls, **parts) -> "PadScoreTable":
        obj = cls.__new__(cls)
        obj._set(**parts)
        return obj

    @classmethod
    def from_arrays(cls, scores, labels, species=None, *, ids=None, subjects=None, path=None,
                    status=None) -> "PadScoreTable":
        """Wrap in-memory arrays (validated later by :func:`madpad.report.pad_report`).
        ``species=None`` gives every attack the species ``"attack"``; ``status`` (optional)
        marks failure-to-acquire rows (any status other than ``""``/``"ok"``)."""
        n = np.asarray(scores).reshape(-1).size
        ids_arr = np.asarray([str(i) for i in (ids if ids is not None else range(n))], dtype=str)
        return cls(ids=ids_arr, scores=scores, labels=labels, species=species, subjects=subjects, path=path,
                   status=status)

    def __len__(self) -> int:
        return int(self.scores.size)

    # ------------------------------------------------------------------ string views (lazy)
    @property
    def ids(self) -> np.ndarray:
        if self._ids is None:
            self._ids = (np.asarray(self._ids_series.to_list(), dtype=str) if self._ids_series is not None
                         else np.asarray([str(i) for i in range(len(self))], dtype=str))
        return np.asarray(self._ids).astype(str)

    def ids_at(self, index) -> list[str]:
        """The ids of a few rows (no full conversion of the id column)."""
        index = np.asarray(index, dtype=np.int64)
        if self._ids is None and self._ids_series is not None:
            return [str(v) for v in self._ids_series.gather(index).to_list()]
        return [str(v) for v in np.asarray(self.ids)[index].tolist()]

    @property
    def labels(self) -> np.ndarray:
        if self._labels is None or np.asarray(self._labels).dtype.kind not in "U":
            self._labels = np.where(self.is_attack, "attack", "bona_fide")
        return self._labels

    @property
    def species(self) -> np.ndarray:
        if self._species is None:
            names = np.asarray([""] + self.species_names, dtype=str)
            self._species = names[self.species_codes.astype(np.int64) + 1]
        return self._species

    @property
    def subjects(self) -> np.ndarray | None:
        if self._subjects is None and self._subjects_series is not None:
            self._subjects = np.asarray(self._subjects_series.to_list(), dtype=str)
        return None if self._subjects is None else np.asarray(self._subjects).astype(str)

    @property
    def status(self) -> np.ndarray | None:
        """Status per row (``"ok"`` for acquired rows), or None when the file had no status column."""
        if self._status is None and self._failed_status is not None:
            st = np.full(len(self), "ok", dtype=object)
            st[~self.acquired] = self._failed_status
            self._status = st.astype(str)
        return self._status

    def row_number(self, i: int) -> int | None:
        """The file row (record number, header = row 1) of entry ``i``; None for in-memory tables."""
        if self.path is None or getattr(self, "_ids_series", None) is None:
            return None
        return int(i) + 2 if self._row_numbers is None else int(self._row_numbers[int(i)])

    @property
    def n_failed(self) -> int:
        return int(np.count_nonzero(~self.acquired))

    def failure_statuses(self) -> np.ndarray:
        """Status strings of the failure-to-acquire rows (row order)."""
        if self._failed_status is not None:
            return np.asarray(self._failed_status, dtype=str)
        st = self.status
        return np.zeros(0, dtype=str) if st is None else np.asarray(st)[~self.acquired]


class ComparisonTable:
    """Validated comparison scores (string arrays and float64 ``score``, aligned by row)."""

    def __init__(self, system, kind, reference, probe, reference_subjects, probe_subject, score, path=None):
        self.system = system
        self.kind = kind
        self.reference = reference
        self.probe = probe
        self.reference_subjects = reference_subjects
        self.probe_subject = probe_subject
        self.score = score
        self.path = path

    def __len__(self) -> int:
        return int(self.score.size)

    @property
    def systems(self) -> list[str]:
        return list(dict.fromkeys(self.system.tolist()))


# --------------------------------------------------------------------------- PAD scores
def _score_checks(t: ColumnarTable, *, skip) -> list:
    """Checks of a *text* score column (after a typed read found a fault): empty, not a
    number, not finite; rows where ``skip`` is True (failures to acquire) are not checked."""
    import polars as pl

    txt = t.stripped("score")
    val = txt.cast(pl.Float64, strict=False)
    keep = ~skip if skip is not None else pl.Series([True] * t.height)
    empty = (txt == "") & keep
    nan_num = val.is_null() & (txt != "") & keep
    nonfinite = val.is_not_null() & ~val.fill_null(0.0).is_finite() & keep
    return [
        (empty, "score", "empty score; give a number, or a 'status' other than 'ok' for a failure to acquire"),
        (nan_num, "score", lambda i: f"{txt[i]!r} is not a number"),
        (nonfinite, "score", lambda i: f"score is {txt[i]!r}; scores must be finite numbers"),
    ]


def _clean_species(raw):
    """Species with nulls as "" and surrounding whitespace removed; the (few) distinct
    values are stripped, not the 10^7 rows."""
    import polars as pl

    raw = raw.fill_null("")
    uniq = raw.unique().to_list()
    fixed = {u: u.strip() for u in uniq if u != u.strip()}
    if not fixed:
        return raw
    if len(uniq) > 1000:
        return raw.str.strip_chars()
    return raw.replace_strict(list(fixed), list(fixed.values()), default=raw, return_dtype=pl.String)


def read_pad_scores(path: str | Path) -> PadScoreTable:
    """Read and validate a PAD scores CSV (see the module docstring)."""
    import polars as pl

    p = Path(path)
    t = read_columns(p, PAD_COLUMNS, optional=("subject", "status"), float_columns=("score",))
    if t.height == 0:
        raise ManifestError("no score rows after the header", path=p)
    ids = t.stripped("id")
    lab = t.strings("label")
    if not lab.is_in(list(LABELS)).all():  # only then pay for stripping whitespace
        lab = t.stripped("label")
    sp = _clean_species(t.strings("species"))
    is_att = lab == "attack"
    is_bf = lab == "bona_fide"
    failed = None
    if t.has("status"):
        st = t.stripped("status")
        failed = ~st.is_in(list(OK_STATUSES))
    subj = t.stripped("subject") if t.has("subject") else None

    def dup_mask():
        if ids.hash().n_unique() == t.height:  # 64-bit hashes all distinct => ids all distinct
            return None
        return ~ids.is_first_distinct()

    def dup_message(i):
        first = int((ids == ids[i]).arg_true()[0])
        return f"duplicate id {ids[i]!r} (first at row {t.row_number(first)})"

    checks = [
        (ids == "", "id", "empty id"),
        (dup_mask(), "id", dup_message),
        (~(is_att | is_bf), "label", lambda i: f"'label' must be one of {{'bona_fide', 'attack'}}; got {lab[i]!r}"),
        (is_att & (sp == ""), "species", "attack row without species; give the attack species (e.g. the morph "
                                         "method or PAI type)"),
        (is_bf & (sp != ""), "species", lambda i: f"bona fide row has species {sp[i]!r}; species must be empty "
                                                  f"for bona fide"),
    ]
    score = t.strings("score")
    if t.extra.get("floats_typed"):
        keep = score.is_not_null() & score.is_finite()
        bad_score = ~keep if failed is None else (~keep & ~failed)
        if bad_score.any():  # locate and describe it on the text
            t_text = read_columns(p, PAD_COLUMNS, optional=("subject", "status"))
            if t_text.height != t.height:
                raise ManifestError("the file changed while it was read", path=p)
            checks += _score_checks(t_text, skip=failed)
    else:
        checks += _score_checks(t, skip=failed)
    if subj is not None:
        checks.append((subj == "", "subject", "empty subject (the column is present, so every row needs one)"))
    t.check(checks)

    # ---- arrays
    if t.extra.get("floats_typed"):
        scores = score.to_numpy().astype(np.float64, copy=False)
    else:
        scores = t.stripped("score").cast(pl.Float64, strict=False).to_numpy()
    acquired = np.ones(t.height, dtype=bool) if failed is None else ~failed.to_numpy()
    if not acquired.all():
        scores = np.where(acquired, scores, np.nan)
    is_att_np = is_att.to_numpy()
    names = sorted(sp.filter(is_att).unique().to_list())
    if len(names) == 1:
        codes = np.where(is_att_np, 0, -1).astype(np.int32)
    elif len(names) <= 32:  # a handful of species: one string comparison each
        codes = np.full(t.height, -1, dtype=np.int32)
        for k, name in enumerate(names):
            codes[(sp == name).to_numpy() & is_att_np] = k
    elif names:
        codes_s = sp.replace_strict(names, list(range(len(names))), default=-1, return_dtype=pl.Int32)
        codes = np.where(is_att_np, codes_s.to_numpy(), -1).astype(np.int32)
    else:
        codes = np.full(t.height, -1, dtype=np.int32)
    subject_codes = None
    if subj is not None:
        subject_codes = subj.cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
    failed_status = None
    if failed is not None:
        failed_status = np.asarray(st.filter(failed).to_list(), dtype=str)
    return PadScoreTable._from_parts(scores=scores, is_attack=is_att_np, species_codes=codes, species_names=names,
                                     acquired=acquired, subject_codes=subject_codes, path=str(p), ids_series=ids,
                                     subjects_series=subj, failed_status=failed_status, row_numbers=t.rows)


# --------------------------------------------------------------------------- comparison scores
def read_comparison_scores(path: str | Path) -> ComparisonTable:
    """Read and validate a comparison-scores CSV (see the module docstring)."""
    import polars as pl

    p = Path(path)
    t = read_columns(p, COMPARISON_COLUMNS, float_columns=("score",))
    if t.height == 0:
        raise ManifestError("no comparison rows after the header", path=p)
    v = {c: t.stripped(c) for c in COMPARISON_COLUMNS if c != "score"}
    kind = v["kind"]
    parts = v["reference_subjects"].str.split(";").list.eval(pl.element().str.strip_chars())
    refs_norm = parts.list.join(";")
    n_refs = parts.list.len()
    has_empty_part = parts.list.eval(pl.element() == "").list.any()
    probe_in = pl.DataFrame({"parts": parts, "probe": v["probe_subject"]}).select(
        pl.col("parts").list.contains(pl.col("probe"))).to_series()
    is_m, is_g, is_i = kind == "morph", kind == "genuine", kind == "impostor"
    checks = [(v[c] == "", c, f"empty {c}") for c in ("system", "reference", "probe", "reference_subjects",
                                                          "probe_subject")]
    checks += [
        (~(is_m | is_g | is_i), "kind", lambda i: f"'kind' must be one of {{'genuine', 'impostor', 'morph'}}; got "
                                                  f"{kind[i]!r}"),
        (has_empty_part, "reference_subjects", lambda i: f"empty subject id in {v['reference_subjects'][i]!r}"),
        (is_m & (n_refs < 2), "reference_subjects",
         lambda i: f"a morph needs at least two contributing subjects joined by ';'; got "
                   f"{v['reference_subjects'][i]!r}"),
        (is_m & (n_refs >= 2) & ~probe_in, "probe_subject",
         lambda i: f"probe subject {v['probe_subject'][i]!r} is not a contributor of morph {v['reference'][i]!r} "
                   f"({v['reference_subjects'][i]!r})"),
        (is_g & ((n_refs != 1) | ~probe_in), "probe_subject",
         lambda i: f"genuine comparison of different subjects ({v['reference_subjects'][i]!r} vs "
                   f"{v['probe_subject'][i]!r})"),
        (is_i & probe_in, "probe_subject", lambda i: f"impostor comparison of the same subject "
                                                     f"{v['probe_subject'][i]!r}"),
    ]
    # a morph keeps the same contributors on every row
    key = parts.list.sort().list.join(";")
    frame = pl.DataFrame({"ref": v["reference"], "key": key, "m": is_m, "pos": pl.int_range(0, t.height, eager=True)})
    mf = frame.filter(pl.col("m")).with_columns(first_key=pl.col("key").first().over("ref"),
                                                first_pos=pl.col("pos").first().over("ref"))
    bad = mf.filter(pl.col("key") != pl.col("first_key"))
    incons = None
    if bad.height:
        b0 = bad.row(0, named=True)
        incons = np.zeros(t.height, dtype=bool)
        incons[b0["pos"]] = True

        def incons_msg(i, b0=b0):
            return (f"morph {v['reference'][i]!r} has contributors {refs_norm[i]!r} here but {b0['first_key']!r} "
                    f"at row {t.row_number(b0['first_pos'])}")
        checks.append((incons, "reference_subjects", incons_msg))
    # the same comparison twice would count twice in MMPMR/FMR: refuse it, naming both rows
    cmp_key = pl.DataFrame({c: v[c] for c in ("system", "kind", "reference", "probe")}).select(
        pl.concat_str(pl.all(), separator="\x1f")).to_series()
    first = cmp_key.is_first_distinct()
    if not first.all():
        dup_pos = int((~first).arg_true()[0])
        first_pos = int((cmp_key == cmp_key[dup_pos]).arg_true()[0])
        dup = np.zeros(t.height, dtype=bool)
        dup[dup_pos] = True

        def dup_msg(i, first_pos=first_pos):
            return (f"duplicate comparison (system {v['system'][i]!r}, kind {kind[i]!r}, reference "
                    f"{v['reference'][i]!r}, probe {v['probe'][i]!r}); first at row {t.row_number(first_pos)}")
        checks.append((dup, "probe", dup_msg))
    score = t.strings("score")
    if t.extra.get("floats_typed"):
        if not (score.is_not_null() & score.is_finite()).all():
            t_text = read_columns(p, COMPARISON_COLUMNS)
            checks += _score_checks(t_text, skip=None)
    else:
        checks += _score_checks(t, skip=None)
    t.check(checks)
    scores = (score.to_numpy().astype(np.float64, copy=False) if t.extra.get("floats_typed")
              else t.stripped("score").cast(pl.Float64).to_numpy())

    def arr(s):
        return np.asarray(s.to_list(), dtype=str)

    return ComparisonTable(system=arr(v["system"]), kind=arr(kind), reference=arr(v["reference"]),
                           probe=arr(v["probe"]), reference_subjects=arr(refs_norm),
                           probe_subject=arr(v["probe_subject"]), score=scores, path=str(p))

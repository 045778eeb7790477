"""FR comparison scores: genuine/impostor score sets and morphing-vulnerability comparisons.

:func:`genuine_impostor_scores` is the one place where reference x probe embeddings become
genuine (same subject) and impostor (other subject) comparison scores; the morph comparisons
below (``python -m madpad.generate compare``), the T-shirt IAPMR job (:mod:`madpad.pad.iapmr`)
and the segmentation study all use it.

Given a morph manifest, bona fide probe images and bona fide reference (enrolment) images, and
one or more face-recognition systems (:mod:`madpad.face` embedders), this module computes:

* ``kind=morph``: every successful morph (as the enrolled reference) against every probe image
  of each of its contributing subjects;
* ``kind=genuine``: every reference against every probe of the same subject (never an image
  against itself);
* ``kind=impostor``: every reference against every probe of the other subjects (zero-effort
  impostors).

The genuine/impostor scores set the FR decision thresholds (e.g. at FMR 0.1% and 1%) that
``python -m madpad.report vulnerability`` uses for MMPMR, ProdAvg-MMPMR, RMMR and MAP.
Scores are cosine similarities of L2-normalised embeddings: **higher = more similar** (a
match when ``score >= t`` by default). Output format: ``docs/CONTRACTS.md``, "Comparison scores
CSV": ``system,kind,reference,probe,reference_subjects,probe_subject,score``.

Images whose embedding fails (no face, unreadable) are left out of the comparisons and listed
in a failures CSV beside the output, with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from madpad.cli import parse_component_spec
from madpad.errors import UsageError

log = logging.getLogger(__name__)

COMPARISON_COLUMNS = ("system", "kind", "reference", "probe", "reference_subjects", "probe_subject", "score")
FAILURE_COLUMNS = ("system", "role", "id", "path", "status", "error")


@dataclass(frozen=True)
class GenuineImpostorScores:
    """Reference x probe comparison scores split into genuine and impostor comparisons.

    ``scores`` (n_ref, n_probe) cosine similarities (NaN where an embedding failed);
    ``same_subject`` marks genuine pairs; ``compared`` marks the pairs that count (both
    embeddings finite and the pair not excluded, e.g. an image against itself);
    ``excluded`` the pairs left out on purpose.
    """

    scores: np.ndarray
    same_subject: np.ndarray
    compared: np.ndarray
    excluded: np.ndarray

    @property
    def genuine(self) -> np.ndarray:
        """Genuine scores, reference-major order."""
        return self.scores[self.compared & self.same_subject]

    @property
    def impostor(self) -> np.ndarray:
        """Zero-effort impostor scores, reference-major order."""
        return self.scores[self.compared & ~self.same_subject]

    @property
    def genuine_missing(self) -> int:
        """Genuine pairs not compared because an embedding failed."""
        return int((~self.compared & ~self.excluded & self.same_subject).sum())

    @property
    def impostor_missing(self) -> int:
        """Impostor pairs not compared because an embedding failed."""
        return int((~self.compared & ~self.excluded & ~self.same_subject).sum())

    def pairs(self) -> Iterator[tuple[int, int, str, float]]:
        """``(reference index, probe index, "genuine" | "impostor", score)`` of every compared
        pair, reference-major."""
        for i, j in zip(*np.nonzero(self.compared)):
            yield int(i), int(j), ("genuine" if self.same_subject[i, j] else "impostor"), float(self.scores[i, j])


def genuine_impostor_scores(references, probes, reference_subjects: Sequence[str], probe_subjects: Sequence[str],
                            *, exclude=None) -> GenuineImpostorScores:
    """Compare every reference embedding with every probe embedding.

    ``references`` (N, D) and ``probes`` (M, D) embeddings (NaN rows: failed images, never
    compared); ``reference_subjects`` (N) and ``probe_subjects`` (M) subject ids: equal ids
    make a genuine pair, different ids an impostor pair. ``exclude`` (N, M) bool marks pairs
    that must not be compared (the same file as reference and probe).
    """
    from madpad.face.similarity import similarity_matrix

    rs = np.asarray([str(s) for s in reference_subjects], dtype=object)
    ps = np.asarray([str(s) for s in probe_subjects], dtype=object)
    R, P = np.asarray(references, dtype=np.float64), np.asarray(probes, dtype=np.float64)
    if len(R) != len(rs) or len(P) != len(ps):
        raise ValueError(f"{len(R)} reference and {len(P)} probe embeddings for {len(rs)} reference and "
                         f"{len(ps)} probe subjects")
    if len(rs) and len(ps):
        S = similarity_matrix(R, P)
    else:
        S = np.zeros((len(rs), len(ps)), dtype=np.float64)
    same = (rs[:, None] == ps[None, :]).astype(bool) if S.size else np.zeros(S.shape, dtype=bool)
    excluded = np.zeros(S.shape, dtype=bool) if exclude is None else np.asarray(exclude, dtype=bool)
    if excluded.shape != S.shape:
        raise ValueError(f"exclude must have shape {S.shape}; got {excluded.shape}")
    compared = np.isfinite(S) & ~excluded
    return GenuineImpostorScores(S, same, compared, excluded)


@dataclass(frozen=True)
class SystemSpec:
    """An FR system to run: ``label`` (the ``system`` column), embedder ``name`` and its params."""

    label: str
    name: str
    params: dict = field(default_factory=dict)


def parse_system(spec: str) -> SystemSpec:
    """``NAME[:key=value[,key=value...]][@LABEL]`` -> :class:`SystemSpec`.

    Examples: ``dlib``; ``arcface_onnx:model_path=/models/w600k_r50.onnx@arcface_r50``.
    Values are parsed as YAML scalars (numbers, booleans, strings). The label defaults to NAME.
    """
    text = str(spec).strip()
    label = None
    if "@" in text:
        text, label = text.rsplit("@", 1)
        label = label.strip()
        if not label:
            raise UsageError(f"system {spec!r}: empty label after '@'")
    name, params = parse_component_spec(text, what=f"FR system {spec!r}")
    return SystemSpec(label or name, name, params)


@dataclass
class ComparisonResult:
    """Rows written (as dicts), per-image embedding failures, and counts per (system, kind)."""

    rows: list
    failures: list
    counts: dict
    warnings: list = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for (system, kind), n in sorted(self.counts.items()):
            out.append(f"{system}: {n} {kind} comparison(s)")
        if self.failures:
            out.append(f"{len(self.failures)} image(s) could not be embedded and were left out:")
            for f in self.failures[:10]:
                out.append(f"  [{f['system']}] {f['role']} {f['id']}: {f['status']} ({f['error']})")
            if len(self.failures) > 10:
                out.append(f"  ... and {len(self.failures) - 10} more")
        out.extend(self.warnings[:10])
        return out


def _bona_fide(records: Sequence[Any], role: str) -> list:
    out = [r for r in records if getattr(r, "label", "bona_fide") == "bona_fide"]
    if len(out) < len(records):
        log.info("%s: %d attack row(s) ignored (bona fide images only)", role, len(records) - len(out))
    if not out:
        raise UsageError(f"no bona fide {role} images")
    return out


def compute_comparisons(*, morphs: Sequence[Any], probes: Sequence[Any], references: Sequence[Any],
                        systems: Sequence[SystemSpec | str], cache: Any = None, progress: bool | None = None,
                        embedders: dict | None = None) -> ComparisonResult:
    """Compute the comparison scores (see the module docstring).

    ``morphs``: morph records (``id``, ``path``, ``subject_a``, ``subject_b``, ``status``);
    rows that are not ``ok`` are skipped. ``probes``/``references``: image records (``id``,
    ``path``, ``subject``, ``label``); attack rows are ignored. ``systems``: specs or strings
    for :func:`parse_system`. ``cache``: an :class:`madpad.face.EmbeddingCache`, a directory or
    None. ``embedders`` maps a system label to a ready embedder object (tests, reuse).
    """
    from madpad.face.embed import embed_batch, get_embedder
    from madpad.face.similarity import similarity_matrix

    specs = [s if isinstance(s, SystemSpec) else parse_system(s) for s in systems]
    if not specs:
        raise UsageError("no FR system given (e.g. --systems dlib)")
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise UsageError(f"FR system labels must be unique; got {labels} (add @LABEL to tell them apart)")
    ok_morphs = [m for m in morphs if getattr(m, "status", "ok") in ("ok", "") and m.path is not None]
    if len(ok_morphs) < len(morphs):
        log.info("%d morph row(s) without an image (status not ok) skipped", len(morphs) - len(ok_morphs))
    probes = _bona_fide(probes, "probe")
    references = _bona_fide(references, "reference")
    warnings: list[str] = []

    probe_subj = [str(p.subject) for p in probes]
    ref_subj = [str(r.subject) for r in references]
    probe_by_subject: dict[str, list[int]] = {}
    for j, s in enumerate(probe_subj):
        probe_by_subject.setdefault(s, []).append(j)
    for m in ok_morphs:
        for s in (m.subject_a, m.subject_b):
            if s not in probe_by_subject:
                warnings.append(f"morph {m.id}: no probe image of contributor {s!r}")
    ref_paths = [Path(r.path).resolve() for r in references]
    probe_paths = [Path(p.path).resolve() for p in probes]
    same_file = np.array([[rp == pp for pp in probe_paths] for rp in ref_paths], dtype=bool) \
        if references and probes else np.zeros((len(references), len(probes)), bool)

    # one embedding pass per system over the distinct files
    files: list[Path] = []
    index: dict[Path, int] = {}
    roles: dict[Path, tuple[str, str]] = {}
    for role, recs in (("morph", ok_morphs), ("probe", probes), ("reference", references)):
        for r in recs:
            p = Path(r.path).resolve()
            if p not in index:
                index[p] = len(files)
                files.append(p)
                roles[p] = (role, str(r.id))
    m_idx = np.array([index[Path(m.path).resolve()] for m in ok_morphs], dtype=int)
    p_idx = np.array([index[p] for p in probe_paths], dtype=int)
    r_idx = np.array([index[p] for p in ref_paths], dtype=int)

    rows: list[dict] = []
    failures: list[dict] = []
    counts: dict[tuple[str, str], int] = {}
    for spec in specs:
        emb = (embedders or {}).get(spec.label) or get_embedder(spec.name, **spec.params)
        batch = embed_batch([str(f) for f in files], emb, cache=cache,
                            progress=bool(progress) if progress is not None else False,
                            desc=f"embed {spec.label}")
        E = np.asarray(batch.embeddings, dtype=np.float64)
        for i, (st, err) in enumerate(zip(batch.status, batch.error)):
            if st != "ok":
                role, rid = roles[files[i]]
                failures.append({"system": spec.label, "role": role, "id": rid, "path": str(files[i]),
                                 "status": st, "error": err})
        good = np.isfinite(E).all(axis=1)
        # genuine / impostor: references x probes (never an image against itself)
        licit = genuine_impostor_scores(E[r_idx], E[p_idx], ref_subj, probe_subj, exclude=same_file)
        for i, j, kind, score in licit.pairs():
            rows.append({"system": spec.label, "kind": kind, "reference": references[i].id, "probe": probes[j].id,
                         "reference_subjects": ref_subj[i], "probe_subject": probe_subj[j], "score": score})
            counts[(spec.label, kind)] = counts.get((spec.label, kind), 0) + 1
        # morphs x probes of each contributor
        if len(m_idx) and len(p_idx):
            SM = similarity_matrix(E[m_idx], E[p_idx])
            for k, m in enumerate(ok_morphs):
                if not good[m_idx[k]]:
                    continue
                subjects = list(dict.fromkeys([str(m.subject_a), str(m.subject_b)]))
                for s in subjects:
                    for j in probe_by_subject.get(s, []):
                        if not good[p_idx[j]]:
                            continue
                        rows.append({"system": spec.label, "kind": "morph", "reference": m.id,
                                     "probe": probes[j].id, "reference_subjects": ";".join(subjects),
                                     "probe_subject": s, "score": float(SM[k, j])})
                        counts[(spec.label, "morph")] = counts.get((spec.label, "morph"), 0) + 1
    for kind in ("genuine", "impostor", "morph"):
        for spec in specs:
            if counts.get((spec.label, kind), 0) == 0:
                warnings.append(f"{spec.label}: no {kind} comparisons (check subjects, probes and references)")
    return ComparisonResult(rows, failures, counts, warnings)


def write_comparisons(path: str | Path, result: ComparisonResult) -> tuple[Path, Path | None]:
    """Write the comparison CSV atomically (and ``<stem>.failures.csv`` when images failed)."""
    from madpad.data import write_table

    p = Path(path)
    write_table(p, [{**r, "score": f"{r['score']:.6f}"} for r in result.rows], columns=COMPARISON_COLUMNS, fmt="csv")
    fail_path = p.with_name(p.stem + ".failures.csv")
    if result.failures:
        write_table(fail_path, result.failures, columns=FAILURE_COLUMNS, fmt="csv")
        return p, fail_path
    if fail_path.exists():
        fail_path.unlink()  # stale list from an earlier run
    return p, None


__all__ = [
    "COMPARISON_COLUMNS",
    "ComparisonResult",
    "GenuineImpostorScores",
    "SystemSpec",
    "compute_comparisons",
    "genuine_impostor_scores",
    "parse_system",
    "write_comparisons",
]

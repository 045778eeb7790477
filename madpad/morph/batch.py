"""Batch morph generation: requests from a pairs CSV or a pair-selection strategy, a resumable job
that writes the morph images and a morph manifest (``docs/CONTRACTS.md``).

The job writes ``OUT/<id>.<format>`` per morph and ``OUT/manifest.csv`` with one row per
requested morph (``id,path,a,b,subject_a,subject_b,alpha,method,seed,params,status,error``;
``status`` is ``ok``, ``failed`` or ``pending`` for rows not yet run). The manifest is rewritten
atomically after every item, so an interrupted job leaves a valid file. Rerunning skips rows that
are ``ok`` with their image present and the same method, alpha and parameters; failed rows are
retried. Each item gets a deterministic seed derived from the job seed and the morph id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from madpad.errors import MadpadError, ManifestError

log = logging.getLogger(__name__)

#: Default cap on the longer side of source images (``--max-side``): larger images are shrunk on
#: reading, so the working and output size, and the memory, stay bounded.
DEFAULT_MAX_SIDE = 2048

_ID_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=-]{0,199}$")
MANIFEST_NAME = "manifest.csv"


@dataclass
class MorphRequest:
    """One morph to make: absolute source paths, their subject ids, alpha, and the morph id."""

    id: str
    a: Path
    b: Path
    subject_a: str
    subject_b: str
    alpha: float = 0.5
    extra: dict = field(default_factory=dict)


@dataclass
class JobSummary:
    """Outcome of :func:`run_morph_job`."""

    out_dir: Path
    manifest: Path
    total: int
    made: int
    skipped: int
    failed: int
    failures: list = field(default_factory=list)  # (id, error)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        out = [(f"{self.total} morph(s) requested: {self.made} made, {self.skipped} already done (skipped), "
                f"{self.failed} failed; manifest: {self.manifest}")]
        for mid, err in self.failures[:10]:
            out.append(f"  failed {mid}: {err}")
        if len(self.failures) > 10:
            out.append(f"  ... and {len(self.failures) - 10} more (see the 'error' column of the manifest)")
        return out


def item_seed(seed: int, morph_id: str) -> int:
    """Deterministic per-item seed (31 bits) from the job seed and the morph id."""
    digest = hashlib.sha256(f"{int(seed)}:{morph_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def default_morph_id(a: Path, b: Path, alpha: float) -> str:
    stem = f"{Path(a).stem}__{Path(b).stem}"
    if abs(alpha - 0.5) > 1e-9:
        stem += f"_a{alpha:.2f}"
    return re.sub(r"[^A-Za-z0-9._+=-]+", "_", stem).strip("._") or "morph"


# --------------------------------------------------------------------------- reading pairs
def _subject_from(path: Path, pattern: re.Pattern | None) -> str:
    if pattern is None:
        return path.stem
    m = pattern.search(path.name)
    if not m:
        return ""
    return m.group(1) if m.groups() else m.group(0)


def read_pairs_csv(path: str | Path, *, default_alpha: float = 0.5, subject_pattern: str | None = None,
                   check_files: bool = True) -> list[MorphRequest]:
    """Read a pairs CSV: columns ``a``, ``b`` (image paths, absolute or relative to the CSV's
    folder) and optional ``alpha`` (weight of b, in [0, 1]), ``id``, ``subject_a``, ``subject_b``.

    Missing subject columns/values are taken from the file name: the first group of
    ``subject_pattern`` (a regular expression, e.g. ``^(\\d+)_`` for FRLL) or the file stem.
    Raises :class:`~madpad.errors.ManifestError` naming the file, row and field for a missing
    column, an empty path, a bad alpha, a bad or duplicate id, or missing image files.
    """
    from madpad.data import read_table
    from madpad.io import resolve_relative_to

    p = Path(path)
    table = read_table(p, fmt="csv")
    missing = [c for c in ("a", "b") if c not in table.columns]
    if missing:
        raise ManifestError(f"missing required column(s) {missing}; a pairs CSV needs columns a,b "
                            f"(optional alpha,id,subject_a,subject_b); found {list(table.columns)}",
                            path=p, row=1, field=missing[0])
    if not table.rows:
        raise ManifestError("no pairs (the file has a header but no rows)", path=p)
    pattern = None
    if subject_pattern:
        try:
            pattern = re.compile(subject_pattern)
        except re.error as exc:
            raise ManifestError(f"--subject-pattern {subject_pattern!r} is not a valid regular expression ({exc})")
    base = p.resolve().parent
    out: list[MorphRequest] = []
    seen: dict[str, int] = {}
    not_found: list[tuple[int, str, str]] = []
    for raw, row in zip(table.rows, table.row_numbers):
        paths = {}
        for fld in ("a", "b"):
            val = str(raw.get(fld) or "").strip()
            if not val:
                raise ManifestError("is empty; expected an image path", path=p, row=row, field=fld)
            full = resolve_relative_to(base, val)
            if check_files and not full.is_file():
                not_found.append((row, fld, val))
            paths[fld] = full
        alpha = default_alpha
        araw = str(raw.get("alpha") or "").strip()
        if araw:
            try:
                alpha = float(araw)
            except ValueError:
                raise ManifestError(f"must be a number in [0, 1]; got {araw!r}", path=p, row=row,
                                    field="alpha") from None
        if not (0.0 <= alpha <= 1.0):
            raise ManifestError(f"must be in [0, 1]; got {alpha}", path=p, row=row, field="alpha")
        mid = str(raw.get("id") or "").strip() or default_morph_id(paths["a"], paths["b"], alpha)
        if not _ID_OK.match(mid):
            raise ManifestError(f"{mid!r} is not a usable morph id (letters, digits and . _ - + = only; "
                                "it becomes the file name)", path=p, row=row, field="id")
        if mid in seen:
            raise ManifestError(f"duplicate morph id {mid!r} (first in row {seen[mid]}); give an 'id' column "
                                "or remove the repeated pair", path=p, row=row, field="id")
        seen[mid] = row
        subs = {}
        for fld in ("a", "b"):
            s = str(raw.get(f"subject_{fld}") or "").strip() or _subject_from(paths[fld], pattern)
            if not s:
                raise ManifestError(f"no subject id: the column is empty and --subject-pattern does not match "
                                    f"{paths[fld].name!r}", path=p, row=row, field=f"subject_{fld}")
            subs[fld] = s
        if subs["a"] == subs["b"]:
            raise ManifestError(f"both images belong to subject {subs['a']!r}; a morph needs two subjects",
                                path=p, row=row, field="subject_b")
        extra = {k: v for k, v in raw.items() if k not in ("a", "b", "alpha", "id", "subject_a", "subject_b")}
        out.append(MorphRequest(mid, paths["a"], paths["b"], subs["a"], subs["b"], alpha, extra))
    if not_found:
        n = len(not_found)
        listed = ", ".join(f"row {r} {f}={v!r}" for r, f, v in not_found[:5])
        more = f" and {n - 5} more" if n > 5 else ""
        r0, f0, _ = not_found[0]
        raise ManifestError(f"{n} image file(s) not found (relative paths are taken from the CSV's folder "
                            f"{str(base)!r}): {listed}{more}", path=p, row=r0, field=f0)
    return out


def requests_from_pairs(pairs: Sequence[Any], *, alpha: float = 0.5) -> list[MorphRequest]:
    """Morph requests from :class:`madpad.morph.pairs.MorphPair` values (records with id/path/subject)."""
    out = []
    for pr in pairs:
        mid = re.sub(r"[^A-Za-z0-9._+=-]+", "_", f"{pr.a.id}__{pr.b.id}")
        if abs(alpha - 0.5) > 1e-9:
            mid += f"_a{alpha:.2f}"
        extra = {} if pr.score is None else {"pair_score": f"{pr.score:.6f}"}
        out.append(MorphRequest(mid, Path(pr.a.path), Path(pr.b.path), str(pr.a.subject), str(pr.b.subject),
                                alpha, extra))
    return out


def write_pairs_csv(path: str | Path, requests: Sequence[MorphRequest]) -> Path:
    """Write requests as a pairs CSV (``id,a,b,alpha,subject_a,subject_b`` + extras), atomically."""
    from madpad.data import write_table

    rows = [{"id": r.id, "a": str(r.a), "b": str(r.b), "alpha": r.alpha, "subject_a": r.subject_a,
             "subject_b": r.subject_b, **r.extra} for r in requests]
    return write_table(Path(path), rows, columns=["id", "a", "b", "alpha", "subject_a", "subject_b"], fmt="csv")


# --------------------------------------------------------------------------- attribution
def attribution_text(requests: Sequence[MorphRequest], *, method: str, params: dict) -> str:
    from madpad.data.frll import dataset_credits

    folders = sorted({str(Path(r.a).parent) for r in requests} | {str(Path(r.b).parent) for r in requests})
    credits = dataset_credits(folders)
    lines = ["# Attribution of the source images", ""]
    if credits:
        lines += ["The morphs in this folder are derived from photographs of the", ""]
        lines += [f"- {c}" for c in credits] + [""]
        lines += [("The subjects consented to the use of their photos \"in original or altered forms\" for "
                   "research and illustration."), ""]
    else:
        lines += [("The morphs in this folder are derived from the source images listed in `manifest.csv` "
                   "(columns `a` and `b`). Keep the licence and attribution terms of those images."), ""]
    lines += [(f"Changed: morphed with madpad `{method}` (two source photographs combined per image; "
               f"parameters in `manifest.csv`, column `params`): {json.dumps(params, sort_keys=True)}"), "",
              "Source folders:", ""]
    lines += [f"- `{f}`" for f in folders[:20]]
    if len(folders) > 20:
        lines.append(f"- ... and {len(folders) - 20} more")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the job
_FACE_COLUMNS = ("face_a_box", "faces_a", "face_b_box", "faces_b")


def _record_faces(rec, faces) -> None:
    """Manifest columns naming the face used of each contributor and how many were found."""
    if not isinstance(faces, dict) or not faces:
        return
    for who in ("a", "b"):
        info = faces.get(who) or {}
        box = info.get("box")
        rec.extra[f"face_{who}_box"] = " ".join(f"{float(v):g}" for v in box) if box is not None else ""
        rec.extra[f"faces_{who}"] = str(info.get("n_faces", "")) if info else ""


def _existing_rows(manifest: Path) -> dict[str, dict]:
    if not manifest.is_file():
        return {}
    from madpad.data import read_table

    try:
        table = read_table(manifest, fmt="csv")
    except ManifestError as exc:
        log.warning("ignoring unreadable previous manifest %s (%s); everything is redone", manifest, exc)
        return {}
    return {str(r.get("id", "")): r for r in table.rows if r.get("id")}


def _done(prev: dict | None, out_dir: Path, *, method: str, alpha: float, params_json: str) -> bool:
    if not prev or prev.get("status") != "ok":
        return False
    rel = str(prev.get("path") or "")
    if not rel or not (out_dir / rel).is_file():
        return False
    try:
        same_alpha = abs(float(prev.get("alpha", "nan")) - alpha) < 1e-9
    except ValueError:
        return False
    try:
        same_params = json.loads(prev.get("params") or "{}") == json.loads(params_json)
    except json.JSONDecodeError:
        return False
    return prev.get("method") == method and same_alpha and same_params


def run_morph_job(requests: Sequence[MorphRequest], generator: Any, out_dir: str | Path, *, method: str,
                  seed: int = 0, fmt: str = "png", quality: int = 95, progress: bool | None = None,
                  max_side: int | None = DEFAULT_MAX_SIDE) -> JobSummary:
    """Make every requested morph with ``generator`` (``morph(a, b, *, alpha, seed)`` and ``params()``).

    Per-item failures (no face, unreadable image, any error of one item) are recorded as
    ``status=failed`` with the error and the job carries on. ``progress=None`` shows a tqdm bar
    only on a terminal. ``max_side``: source images are shrunk on reading so their longer side is
    at most this many pixels (None or 0: no cap), which bounds the working and output size. When
    the generator reports the faces it used (``generator.last_faces``, e.g. the landmark
    methods), the manifest gets columns ``face_a_box``/``face_b_box`` (``x0 y0 x1 y1`` in the
    image as read) and ``faces_a``/``faces_b`` (faces found; more than 1 means others were present
    and the selection policy chose one). A morph is ``ok`` only when both faces were found upright
    (the landmark methods fail a turned or upside-down face). Returns a :class:`JobSummary`.
    """
    from tqdm.auto import tqdm

    from madpad.data import MorphRecord, write_morphs
    from madpad.io import atomic_write_text, read_image, write_image

    fmt = fmt.lower().lstrip(".")
    if fmt not in ("png", "jpg"):
        raise ManifestError(f"--format must be png or jpg; got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from madpad.io import remove_stale_temporaries, test_kill_point

    stale = remove_stale_temporaries(out)  # left by a killed run (only madpad's own temp names)
    if stale:
        log.warning("removed %d temporary file(s) an interrupted run left in %s: %s", len(stale), out,
                    ", ".join(p.name for p in stale[:5]) + (" ..." if len(stale) > 5 else ""))
    manifest = out / MANIFEST_NAME
    params = dict(generator.params())
    params_json = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    prev = _existing_rows(manifest)
    atomic_write_text(out / "ATTRIBUTION.md", attribution_text(requests, method=method, params=params))

    records: list = []
    targets: list[str] = []  # output file of each record, relative to out
    for r in requests:
        p = prev.get(r.id)
        rel = f"{r.id}.{fmt}"
        if _done(p, out, method=method, alpha=r.alpha, params_json=params_json):
            rel = str(p.get("path"))
            status, path = "ok", out / rel
        else:
            status, path = "pending", None
        targets.append(rel)
        records.append(MorphRecord(
            id=r.id, path=path, a=str(r.a), b=str(r.b), subject_a=r.subject_a, subject_b=r.subject_b,
            alpha=float(r.alpha), method=method, seed=item_seed(seed, r.id), params=params, status=status,
            error="", extra=dict(r.extra), rel={"path": rel if status == "ok" else ""}))
        if status == "ok":  # keep the face columns of a finished morph
            records[-1].extra.update({k: str(p.get(k) or "") for k in _FACE_COLUMNS if k in p})
    todo = [i for i, rec in enumerate(records) if rec.status != "ok"]
    skipped = len(records) - len(todo)
    write_morphs(manifest, records)
    t0 = time.perf_counter()
    made, failures = 0, []
    bar = tqdm(total=len(todo), desc=f"morph {method}", unit="morph",
               disable=(not sys.stderr.isatty()) if progress is None else (not progress))
    try:
        for i in todo:
            rec, req = records[i], requests[i]
            try:
                img_a = read_image(req.a, max_side=max_side or None)
                img_b = read_image(req.b, max_side=max_side or None)
                if hasattr(generator, "last_faces"):
                    generator.last_faces = {}
                try:
                    img = generator.morph(img_a, img_b, alpha=req.alpha, seed=rec.seed)
                finally:
                    _record_faces(rec, getattr(generator, "last_faces", None))
                write_image(out / targets[i], img, quality=quality)
                rec.status, rec.error, rec.path, rec.rel = "ok", "", out / targets[i], {"path": targets[i]}
                made += 1
            except (MadpadError, OSError, ValueError, RuntimeError) as exc:  # per-item failure: record, go on
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                rec.status, rec.error = "failed", msg
                failures.append((rec.id, msg))
                log.info("morph %s failed: %s", rec.id, msg)
            except Exception as exc:  # noqa: BLE001 - unexpected library errors (e.g. cv2.error) are per item too
                msg = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                rec.status, rec.error = "failed", msg
                failures.append((rec.id, msg))
                log.warning("morph %s failed unexpectedly: %s", rec.id, msg)
            write_morphs(manifest, records)
            test_kill_point("generate.item")
            bar.update(1)
    finally:
        bar.close()
    return JobSummary(out, manifest, len(records), made, skipped, len(failures), failures,
                      time.perf_counter() - t0)


__all__ = [
    "DEFAULT_MAX_SIDE",
    "MANIFEST_NAME",
    "JobSummary",
    "MorphRequest",
    "attribution_text",
    "item_seed",
    "read_pairs_csv",
    "requests_from_pairs",
    "run_morph_job",
    "write_pairs_csv",
]

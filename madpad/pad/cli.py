"""Command lines of the T-shirt PAD.

``python -m madpad.detect tshirt --images IMAGES.csv --out SCORES.csv`` (:func:`main_tshirt`) scores
images; ``python -m madpad.pad fit-scorer`` (:func:`main_fit_scorer`) trains the learned scorer
from a scores file's feature columns; ``python -m madpad.pad synth`` builds a synthetic attack set.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np

from madpad.cli import (
    apply_runtime_options,
    int_arg,
    resolve_config,
    run_main,
    setup_logging,
)
from madpad.errors import ImageReadError, MadpadError, ManifestError, UsageError
from madpad.io import read_image, resolve_relative_to

log = logging.getLogger("madpad.pad")

LABELS = ("bona_fide", "attack")
NO_FACE_POLICIES = {"bona_fide": 0.0, "attack": 1.0, "exclude": float("nan")}
#: score of an image with a person but no face: ``fta`` (default) leaves it empty (failure to acquire)
PERSON_NO_FACE_POLICIES = {"fta": float("nan"), "bona_fide": 0.0, "attack": 1.0, "exclude": float("nan")}
PASS_THROUGH = ("subject", "printed_subject")


def _table_format(p: Path) -> str:
    return "jsonl" if p.suffix.lower() in (".jsonl", ".ndjson") else "csv"


def _cell(row: dict, key: str) -> str:
    v = row.get(key)
    return "" if v is None else str(v).strip()


def read_image_list(path) -> list[dict]:
    """Read IMAGES.csv (``id,path`` + optional ``label,species,subject,...``); paths are absolute
    or relative to the CSV's folder. Raises :class:`ManifestError` naming file, row and field."""
    from madpad.data import read_table

    p = Path(path)
    if not p.is_file():
        raise ManifestError("image list not found", path=p)
    table = read_table(p, fmt=_table_format(p))
    cols = table.columns
    missing = [c for c in ("id", "path") if c not in cols]
    if missing:
        raise ManifestError(f"missing column(s) {missing}; the header must contain id,path "
                            f"(optional label,species); got {cols}", path=p)
    rows, seen = [], set()
    for r, i in zip(table.rows, table.row_numbers):
        rid = _cell(r, "id")
        if not rid:
            raise ManifestError("empty id", path=p, row=i, field="id")
        if rid in seen:
            raise ManifestError(f"duplicate id {rid!r}", path=p, row=i, field="id")
        seen.add(rid)
        if not _cell(r, "path"):
            raise ManifestError("empty path", path=p, row=i, field="path")
        label = _cell(r, "label")
        species = _cell(r, "species")
        if label and label not in LABELS:
            raise ManifestError(f"'label' must be one of {set(LABELS)}; got {label!r}", path=p, row=i, field="label")
        if label == "attack" and not species:
            raise ManifestError("attack rows need a species", path=p, row=i, field="species")
        if label == "bona_fide":
            species = ""
        row = {"id": rid, "path": resolve_relative_to(p.parent, _cell(r, "path")), "label": label, "species": species}
        for k in PASS_THROUGH:
            if k in cols:
                row[k] = _cell(r, k)
        rows.append(row)
    if not rows:
        raise ManifestError("no data rows", path=p)
    return rows


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    return str(v)


def build_tshirt_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m madpad.detect tshirt",
        description="T-shirt presentation attack detection: face + person detectors and a spatial-consistency "
                    "check. Writes id,score,label,species (+ explanation columns); score: higher = attack "
                    "(classify attack when score >= threshold).")
    ap.add_argument("--images", required=True, help="CSV with id,path (optional label,species); relative paths "
                    "are taken relative to the CSV's folder")
    ap.add_argument("--out", required=True, help="output scores CSV (written atomically)")
    ap.add_argument("--person-detector", default=None,
                    help="NAME[:k=v,...]: nanodet (default; every person, ONNX model from model_path=FILE or "
                         "$MADPAD_SHARED/models/person), centernet, mediapipe_pose (single person, no model file), "
                         "mediapipe_selfie, hog, yolo:weights=PATH")
    ap.add_argument("--face-detector", default=None,
                    help="NAME[:k=v,...] from madpad.face: union (default: dlib_hog+mediapipe+mtcnn, rotated "
                         "passes up to 30 degrees), dlib_hog, mediapipe, mtcnn, haar, dlib_cnn, yolo:weights=PATH")
    ap.add_argument("--scorer", default="rules", help="'rules' (default) or a learned scorer MODEL.npz "
                    "(python -m madpad.pad fit-scorer)")
    ap.add_argument("--no-face", choices=sorted(NO_FACE_POLICIES), default="bona_fide",
                    help="score of an image with neither a face nor a person (status no_face): bona_fide -> 0 "
                         "(default), attack -> 1, exclude -> row goes to OUT.excluded.csv instead of OUT. Images "
                         "that cannot be read go to OUT.failed.csv")
    ap.add_argument("--person-no-face", choices=sorted(PERSON_NO_FACE_POLICIES), default="fta",
                    help="score of an image with a person but no face (status person_no_face): fta -> empty "
                         "score, a failure to acquire for 'madpad.report pad' (default), bona_fide -> 0, "
                         "attack -> 1, exclude -> OUT.excluded.csv")
    ap.add_argument("--config", help="YAML with rule parameters (see madpad.pad.spatial.RuleConfig)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a rule parameter")
    ap.add_argument("--print-config", action="store_true", help="print the resolved rule parameters and exit")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N images")
    ap.add_argument("--threads", type=int_arg(1), default=None)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("-v", "--verbose", action="count", default=0)
    return ap


def main_tshirt(argv=None) -> int:
    args = build_tshirt_parser().parse_args(argv)
    return run_main(lambda: _run_tshirt(args), prog="madpad.detect tshirt")


def _run_tshirt(args) -> int:
    from madpad.pad.spatial import RULES, RuleConfig
    from madpad.pad.tshirt import TshirtDetector

    setup_logging(args.verbose)
    apply_runtime_options(threads=args.threads)
    cfg = resolve_config(RuleConfig().to_dict(), config_path=args.config, set_items=args.set, where="rules")
    cfg["no_face_score"] = NO_FACE_POLICIES[args.no_face]
    cfg["person_no_face_score"] = PERSON_NO_FACE_POLICIES[args.person_no_face]
    rules = RuleConfig.from_dict(cfg)
    if args.print_config:
        from madpad.cli import dump_config

        print(dump_config(rules.to_dict()), end="")
        return 0
    from madpad.cli import check_output_file

    check_output_file(args.out, option="--out")  # before any scoring work
    rows = read_image_list(args.images)
    if args.limit is not None:
        rows = rows[: max(0, args.limit)]
    scorer = None
    if args.scorer != "rules":
        from madpad.pad.learned import LearnedScorer

        scorer = LearnedScorer.load(args.scorer)
    out = Path(args.out)
    if out.exists() and out.is_dir():
        raise UsageError(f"--out {out} is a directory; give a CSV file path")
    from madpad.pad.tshirt import DEFAULT_FACE_DETECTOR, DEFAULT_PERSON_DETECTOR

    pad = TshirtDetector.from_names(person=args.person_detector or DEFAULT_PERSON_DETECTOR,
                                    face=args.face_detector or DEFAULT_FACE_DETECTOR, rules=rules, scorer=scorer)

    from tqdm.auto import tqdm

    results, excluded, failed = [], [], []
    t0 = time.perf_counter()
    for r in tqdm(rows, desc="tshirt PAD", unit="img", disable=args.no_progress or None):
        base = {"id": r["id"], "label": r["label"], "species": r["species"]}
        base.update({k: r[k] for k in PASS_THROUGH if k in r})
        try:
            img = read_image(r["path"])
            res = pad.analyze(img)
            row = {**base, "score": res.score, **res.row(), "error": ""}
        except (ImageReadError, MadpadError, ValueError, RuntimeError) as exc:
            log.warning("%s: %s", r["id"], exc)
            failed.append({**base, "score": float("nan"), "status": "failed", "error": str(exc).replace("\n", " ")})
            continue
        if (row["status"] == "no_face" and args.no_face == "exclude") or (
                row["status"] == "person_no_face" and args.person_no_face == "exclude"):
            excluded.append(row)
        else:
            results.append(row)
    dt = time.perf_counter() - t0
    extra = ["status", "error", "n_faces", "n_persons", "fired"] + [f"rule_{r}" for r in RULES]
    from madpad.pad.spatial import FEATURE_NAMES

    extra += [f"f_{n}" for n in FEATURE_NAMES] + ["explanation"]
    header = ["id", "score", "label", "species"] + [k for k in PASS_THROUGH if any(k in r for r in rows)] + extra
    _write_csv(out, header, results)
    side = {"excluded": excluded, "failed": failed}
    for tag, items in side.items():
        p = out.with_name(out.stem + f".{tag}.csv")
        if items:
            _write_csv(p, header, items)
        elif p.exists():
            p.unlink()  # stale file from an earlier run
    n_ok = sum(1 for r in results if r["status"] == "ok")
    n_noface = sum(1 for r in results + excluded if r["status"] == "no_face")
    n_fta = sum(1 for r in results + excluded if r["status"] == "person_no_face")
    fta_note = {"fta": " (failures to acquire: empty score)", "exclude": " (excluded)"}.get(args.person_no_face, "")
    print(f"scored {len(rows)} image(s) in {dt:.1f} s: ok {n_ok}, no_face {n_noface}"
          f"{' (excluded)' if args.no_face == 'exclude' and n_noface else ''}, person_no_face {n_fta}"
          f"{fta_note if n_fta else ''}, failed {len(failed)} -> {out}",
          file=sys.stderr)
    if failed:
        print(f"{len(failed)} image(s) failed; listed with their errors in "
              f"{out.with_name(out.stem + '.failed.csv')} (not in {out.name})", file=sys.stderr)
    return 0


def _write_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    """Atomic CSV of ``rows`` restricted to the ``header`` columns (floats as ``%.6g``, NaN empty)."""
    from madpad.data import write_table

    write_table(path, [{k: _fmt(r.get(k, "")) for k in header} for r in rows], columns=header, fmt="csv")


# --------------------------------------------------------------------------- learned scorer
def read_feature_table(path) -> tuple[list[dict], np.ndarray]:
    """Rows and feature matrix from a scores CSV written by ``detect tshirt`` (``f_*`` columns)."""
    rows, X, _ = _read_feature_table(path)
    return rows, X


def _read_feature_table(path) -> tuple[list[dict], np.ndarray, list[str]]:
    from madpad.data import read_table
    from madpad.pad.spatial import FEATURE_NAMES

    p = Path(path)
    if not p.is_file():
        raise ManifestError("scores file not found", path=p)
    table = read_table(p, fmt="csv")
    need = [f"f_{n}" for n in FEATURE_NAMES]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ManifestError(f"missing feature column(s) {missing[:5]}; write the file with "
                            "'python -m madpad.detect tshirt' of this madpad version", path=p)
    rows = table.rows
    X = np.full((len(rows), len(need)), np.nan)
    for i, (r, row_no) in enumerate(zip(rows, table.row_numbers)):
        for j, c in enumerate(need):
            v = r.get(c) or ""
            if v:
                try:
                    X[i, j] = float(v)
                except ValueError:
                    raise ManifestError(f"not a number: {v!r}", path=p, row=row_no, field=c) from None
    return rows, X, list(table.columns)


def main_fit_scorer(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m madpad.pad fit-scorer",
        description="Train the learned T-shirt PAD scorer (logistic regression over the spatial features) "
                    "from a labelled scores CSV written by 'detect tshirt'; saves MODEL.npz (no pickle).")
    ap.add_argument("--scores", required=True, help="training scores CSV (label column required; status=ok rows used)")
    ap.add_argument("--out", required=True, help="model file (.npz)")
    ap.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength")
    ap.add_argument("--apply", nargs=2, metavar=("SCORES_IN", "SCORES_OUT"),
                    help="also rescore another scores CSV with the fitted model (no re-detection)")
    args = ap.parse_args(argv)

    def body():
        from madpad.cli import check_output_file
        from madpad.pad.learned import fit_scorer

        check_output_file(args.out, option="--out")
        if args.apply:
            check_output_file(args.apply[1], option="--apply SCORES_OUT")
        rows, X = read_feature_table(args.scores)
        keep = [i for i, r in enumerate(rows) if r.get("status") == "ok" and r.get("label") in LABELS]
        if not keep:
            raise UsageError(f"{args.scores}: no labelled rows with status ok to train on")
        y = np.array([rows[i]["label"] == "attack" for i in keep], dtype=int)
        try:
            model = fit_scorer(X[keep], y, C=args.C)
        except ValueError as exc:
            raise UsageError(f"{args.scores}: {exc}") from None
        model.meta["trained_on"] = str(args.scores)
        model.save(args.out)
        print(f"trained on {len(keep)} rows ({int(y.sum())} attack) -> {args.out}", file=sys.stderr)
        if args.apply:
            apply_scorer(model, args.apply[0], args.apply[1])
        return 0

    return run_main(body, prog="madpad.pad fit-scorer")


def apply_scorer(model, scores_in, scores_out) -> None:
    """Rescore a scores CSV from its feature columns (rows with status ok; others unchanged)."""
    rows, X, header = _read_feature_table(scores_in)
    s = model.score(X)
    for r, v in zip(rows, s):
        if r.get("status") == "ok":
            r["score"] = f"{float(v):.6g}"
    _write_csv(Path(scores_out), list(header), rows)

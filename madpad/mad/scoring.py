"""Scoring suspect/live pairs with a detector: per-pair failures, resumable score files.

Library form of ``python -m madpad.detect score`` (:func:`score_pairs_file`), used by the
command line (:mod:`madpad.mad.cli`), by training (:mod:`madpad.mad.training`, scores of the
dev/test splits) and by pipeline stages. Scores: higher = more likely a morph.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from madpad.errors import ManifestError, UsageError


def feature_cache(directory=None):
    """The per-image feature cache: ``directory`` when given, else ``$MADPAD_CACHE/mad-features``
    when that variable is set, else memory only."""
    from madpad.io import env_path
    from madpad.mad.cache import FeatureCache

    if directory:
        return FeatureCache(directory)
    env = env_path("MADPAD_CACHE")
    return FeatureCache(env / "mad-features") if env else FeatureCache()


def score_with_status(detector, pairs, *, cache=None):
    """(scores, status, error); per-pair failures isolated for detectors without score_pairs."""
    if hasattr(detector, "score_pairs"):
        r = detector.score_pairs(pairs, cache=cache)
        return r.scores, r.status, r.error
    from madpad.errors import MadpadError

    try:
        s = detector.score(pairs, cache=cache)
        return s, ["ok"] * len(pairs), [""] * len(pairs)
    except (MadpadError, OSError, ValueError) as exc:
        if len(pairs) == 1:
            return np.array([np.nan]), ["failed"], [f"{type(exc).__name__}: {exc}"]
    scores, status, error = [], [], []
    for p in pairs:
        s, st, er = score_with_status(detector, [p], cache=cache)
        scores.append(s[0])
        status += st
        error += er
    return np.asarray(scores, dtype=np.float64), status, error


def model_fingerprint(path: str | os.PathLike) -> str:
    """Hash of a checkpoint folder's files (identifies the model in score files, for resume)."""
    h = hashlib.sha256()
    for f in sorted(Path(path).iterdir()):
        if f.is_file() and not f.name.startswith(("scores_", "train_summary")) and f.suffix in (".json", ".npz", ".safetensors"):
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


def _previous_rows(out: Path, model_id: str) -> dict:
    if not out.is_file():
        return {}
    try:
        from madpad.data import read_table

        t = read_table(out)
    except (ManifestError, OSError):  # an unreadable old output is simply recomputed
        return {}
    if "model" not in t.columns:
        return {}
    return {r["id"]: r for r in t.rows if r.get("model") == model_id and r.get("status") == "ok" and r.get("score")}


def runtime_overrides(model: str | os.PathLike, *, device: str | None = None,
                      batch_size: int | None = None) -> dict[str, Any]:
    """Runtime options for :func:`madpad.mad.load_detector` of the checkpoint ``model``, for the
    detectors that take them: their own progress bars off (:func:`score_pairs_file` shows one),
    the torch ``device`` and the evaluation ``batch_size`` of foundation detectors."""
    from madpad.mad import detector_class
    from madpad.mad.base import read_header

    if not Path(model).is_dir():
        return {}
    try:
        cls = detector_class(read_header(model).get("detector"), path=model)
    except ManifestError:
        return {}  # load_detector reports the unreadable checkpoint
    return cls.runtime_overrides(progress=False, device=device or None, batch_size=batch_size or None)


def load_checkpoint(model: str | os.PathLike, **overrides):
    """:func:`madpad.mad.load_detector`, with a truncated or corrupt checkpoint file (npz,
    safetensors, JSON) turned into one :class:`~madpad.errors.CheckpointError` line naming it."""
    import zipfile

    from madpad.errors import CheckpointError, MadpadError
    from madpad.mad import load_detector

    try:
        return load_detector(model, **overrides)
    except MadpadError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, RuntimeError) as exc:
        if isinstance(exc, FileNotFoundError) and exc.filename:
            raise CheckpointError(f"{model}: checkpoint file {exc.filename} not found") from None
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        files = sorted(f.name for f in Path(model).glob("*") if f.suffix in (".npz", ".safetensors", ".json"))
        raise CheckpointError(f"{model}: truncated or corrupt checkpoint (files {files}; "
                              f"{type(exc).__name__}: {msg})") from None
    except Exception as exc:  # safetensors' own SafetensorError and other decoder errors
        if type(exc).__name__ not in ("SafetensorError", "HeaderTooLarge", "JSONDecodeError"):
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(f"{model}: truncated or corrupt checkpoint ({type(exc).__name__}: {msg})") from None


def untrained_detector(spec: str):
    """(detector, model id) of a registered detector that needs no training (``--detector``):
    ``NAME[:key=value,...]`` (:func:`madpad.cli.parse_component_spec`), e.g.
    ``demorph_distance:alpha=0.3``. The options are part of the model id, so a resumed run reuses
    only scores made with the same ones."""
    import json

    from madpad.cli import parse_component_spec
    from madpad.mad import MORPH_DETECTORS, get_detector

    name, params = parse_component_spec(spec, what="--detector")
    cls = MORPH_DETECTORS.load(name)
    if cls.trainable:
        raise UsageError(f"--detector {name}: this detector must be trained first; score a checkpoint with "
                         f"--model (train one with 'python -m madpad.detect train')")
    det = get_detector(name, **{**cls.runtime_overrides(progress=False), **params})
    return det, f"untrained:{name}" + (f":{json.dumps(params, sort_keys=True)}" if params else "")


def score_pairs_file(*, model: str | os.PathLike | None = None, pairs_path: str | os.PathLike,
                     out: str | os.PathLike, cache_dir=None, chunk: int = 256, progress: bool = True,
                     overrides: dict | None = None, detector: str | None = None) -> dict:
    """Library form of ``detect score``; returns counts (ok / failed / reused). ``detector``
    (instead of ``model``): the name of an untrained detector, scored without a checkpoint."""
    from tqdm.auto import tqdm

    from madpad.data import write_table
    from madpad.mad.pairs import read_pairs_csv

    if detector is not None:
        pairs = read_pairs_csv(pairs_path)
        det, mid = untrained_detector(detector)
    else:
        if model is None or not Path(model).is_dir():
            raise UsageError(f"--model {model}: not a checkpoint directory (train one with "
                             f"'python -m madpad.detect train')")
        pairs = read_pairs_csv(pairs_path)
        det = load_checkpoint(model, **(overrides or {}))
        mid = model_fingerprint(model)
    out = Path(out)
    done = _previous_rows(out, mid)
    todo = [p for p in pairs if p.id not in done]
    cache = feature_cache(cache_dir)
    results: dict[str, dict] = {}
    for pid, r in done.items():
        results[pid] = {"score": r["score"], "status": "ok", "error": ""}

    subjects = {p.id: p.extra.get("live_subject") or (p.subjects[0] if p.subjects else "") for p in pairs}
    with_subject = all(subjects.values())  # enables the report's subject bootstrap

    def flush():
        rows = []
        for p in pairs:
            r = results.get(p.id)
            if r is None:
                continue
            rows.append({"id": p.id, "score": r["score"], "label": p.label or "",
                         "species": p.species if p.label == "attack" else "", "status": r["status"],
                         "error": r["error"], "model": mid, **({"subject": subjects[p.id]} if with_subject else {})})
        write_table(out, rows, columns=["id", "score", "label", "species", "status", "error", "model"]
                    + (["subject"] if with_subject else []))

    bar = tqdm(total=len(todo), desc="scoring pairs", unit="pair", disable=not progress)
    for i in range(0, len(todo), chunk):
        part = todo[i:i + chunk]
        s, st, er = score_with_status(det, part, cache=cache)
        for p, sv, stv, erv in zip(part, s, st, er):
            ok = stv == "ok" and np.isfinite(sv)
            results[p.id] = {"score": repr(float(sv)) if ok else "", "status": stv if not ok or stv != "ok" else "ok",
                             "error": erv if not ok else ""}
            if stv == "ok" and not ok:
                results[p.id].update(status="failed", error="non-finite score")
        flush()
        bar.update(len(part))
    bar.close()
    if not todo:
        flush()
    failed = [(pid, r) for pid, r in results.items() if r["status"] != "ok"]
    return {"n": len(pairs), "ok": len(pairs) - len(failed), "failed": failed, "reused": len(done),
            "cache_hits": cache.hits, "cache_misses": cache.misses}


__all__ = ["feature_cache", "model_fingerprint", "runtime_overrides", "score_pairs_file", "score_with_status",
           "untrained_detector"]

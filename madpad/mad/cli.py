"""``python -m madpad.detect train`` and ``python -m madpad.detect score``.

train::

    python -m madpad.detect train --config CONFIG.yaml [--set key=value ...] [--print-config]

Builds the detector named by ``detector`` with ``params``, optionally builds D-MAD pairs
first (``data.build``), fits on ``data.train`` (early stopping / C selection on
``data.dev``), writes the checkpoint to ``out`` and, when ``data.dev`` / ``data.test`` are
given, ``out/scores_<split>.csv`` (``id,score,label,species``) and the error rates in
``out/train_summary.json``. Example configs ship in ``madpad/configs/detect/``.

score::

    python -m madpad.detect score --model CKPT --pairs PAIRS.csv --out SCORES.csv

``PAIRS.csv``: ``id,suspect,live`` (+ optional ``label,species,subjects,live_subject``), paths
absolute or relative to the CSV's folder. Writes ``id,score,label,species,status,error,model``
(+ ``subject`` when every pair names one)
atomically (readable by ``python -m madpad.report pad``); higher score = more likely a
morph. Rerunning the same command keeps the finished rows of the same model (resume).
Exit codes: 0 when the job ran (even with per-pair failures), 2 for bad input.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from madpad.errors import ManifestError, UsageError

log = logging.getLogger("madpad.detect")

TRAIN_DEFAULTS: dict = {
    "detector": "embedding_logreg",
    "params": {},
    "data": {
        "train": None,
        "dev": None,
        "test": None,
        "train_species": None,   # attack species kept for train + dev (cross-method protocol)
        "test_species": None,    # attack species kept for test
        "build": {
            "frll": None,          # FRLL folder (neutral/, smiling/)
            "images": None,        # or an image manifest (id,path,subject,label,...,capture)
            "images_root": None,
            "morphs": [],          # morph manifests (from python -m madpad.generate)
            "out": None,           # default: <out>/pairs
            "fractions": [0.6, 0.2, 0.2],
            "seed": 0,
            "live_variants": 2,
            "attack_live": "both",
            "live_strength": 1.0,
            "suspect_long_side": 600,
            "suspect_jpeg_quality": 90,
            "max_morphs_per_method": 0,
        },
    },
    "out": None,
    "cache": None,          # per-image feature cache folder (default: $MADPAD_CACHE/mad-features if set)
    "seed": 0,
    "threads": None,
}


# --------------------------------------------------------------------------- helpers
def _feature_cache(directory):
    from madpad.io import env_path
    from madpad.mad.cache import FeatureCache

    if directory:
        return FeatureCache(directory)
    env = env_path("MADPAD_CACHE")
    return FeatureCache(env / "mad-features") if env else FeatureCache()


def _score_with_status(detector, pairs, *, cache=None):
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
        s, st, er = _score_with_status(detector, [p], cache=cache)
        scores.append(s[0])
        status += st
        error += er
    return np.asarray(scores, dtype=np.float64), status, error


def _evaluate(pairs, scores, status) -> dict:
    from madpad.mad.evaluation import summarize

    ok = np.array([s == "ok" for s in status]) & np.isfinite(scores)
    lab = [p for p, k in zip(pairs, ok) if k]
    if not lab or any(p.label is None for p in lab):
        return {}
    y = np.array([p.y for p in lab])
    out = summarize(scores[ok], y, [p.species for p in lab])
    out["n_failed"] = int((~ok).sum())
    return out


def _fmt_rates(m: dict) -> str:
    if not m:
        return "(no labels)"
    f = lambda v: "nan" if v != v else f"{100 * v:.2f}%"
    return (f"D-EER {f(m['d_eer'])}, BPCER@APCER1% {f(m['bpcer_at_apcer_1'])}, 5% {f(m['bpcer_at_apcer_5'])}, "
            f"10% {f(m['bpcer_at_apcer_10'])} ({m['n_bona_fide']} bona fide, {m['n_attack']} attack"
            f"{', ' + str(m['n_failed']) + ' failed' if m.get('n_failed') else ''})")


# --------------------------------------------------------------------------- train
def _build_pairs(cfg: dict) -> dict:
    from madpad.data import load_images, load_morphs
    from madpad.mad.pairs import BuildConfig, build_dmad_pairs

    b = cfg["data"]["build"]
    if b["frll"] and b["images"]:
        raise UsageError("data.build: give either 'frll' (a folder) or 'images' (a manifest), not both")
    if b["frll"]:
        from madpad.data.frll import frll_images

        images = frll_images(b["frll"])
    else:
        images = load_images(b["images"], root=b["images_root"])
    morph_files = b["morphs"] or []
    if isinstance(morph_files, str):
        morph_files = [morph_files]
    if not morph_files:
        raise UsageError("data.build.morphs: list at least one morph manifest (python -m madpad.generate output)")
    morphs = []
    for mf in morph_files:
        morphs += list(load_morphs(mf))
    out = Path(b["out"] or Path(cfg["out"]) / "pairs")
    bc = BuildConfig(fractions=tuple(b["fractions"]), seed=int(b["seed"]), live_variants=int(b["live_variants"]),
                     attack_live=b["attack_live"], live_strength=float(b["live_strength"]),
                     suspect_long_side=int(b["suspect_long_side"]), suspect_jpeg_quality=int(b["suspect_jpeg_quality"]),
                     max_morphs_per_method=int(b["max_morphs_per_method"]))
    built = build_dmad_pairs(images, morphs, out, config=bc)
    print(f"pairs built in {out}: " + ", ".join(f"{k}: {v['bona_fide']} bona fide + {v['attack']} attack"
                                                 for k, v in built.counts.items())
          + (f"; {built.dropped_morphs} morphs dropped (contributors in different splits)" if built.dropped_morphs else "")
          + (f"; {len(built.failures)} image failures (see failures.csv)" if built.failures else ""))
    data = cfg["data"]
    for split in ("train", "dev", "test"):
        if not data[split] and split in built.files:
            data[split] = str(built.files[split])
    return {"counts": built.counts, "dropped_morphs": built.dropped_morphs, "failures": len(built.failures),
            "directory": str(out)}


def _load_split(path, species, *, name: str):
    from madpad.mad.pairs import filter_pairs, read_pairs_csv

    if not path:
        return None
    pairs = read_pairs_csv(path, require_labels=True)
    if species:
        species = [species] if isinstance(species, str) else list(species)
        pairs = filter_pairs(pairs, species=species)
    n_att = sum(p.label == "attack" for p in pairs)
    if (n_att == 0 or n_att == len(pairs)) and name != "train":
        print(f"warning: data.{name} ({path}) has {len(pairs) - n_att} bona fide and {n_att} attack pairs"
              f"{' of species ' + str(species) if species else ''}; it is not used", file=sys.stderr)
        return None
    if n_att == 0 or n_att == len(pairs):
        raise UsageError(f"data.{name} ({path}) needs bona fide and attack pairs"
                         f"{' of species ' + str(species) if species else ''}; got {len(pairs) - n_att} bona fide "
                         f"and {n_att} attack")
    return pairs


def train_from_config(cfg: dict) -> dict:
    """Library form of ``detect train``: returns the summary written to train_summary.json."""
    from madpad.io import atomic_write_json
    from madpad.mad import get_detector
    from madpad.mad.pairs import write_scores_csv

    if not cfg.get("out"):
        raise UsageError("'out' (the checkpoint directory) is required, e.g. --set out=runs/my_detector")
    out = Path(cfg["out"])
    summary: dict = {"config": copy.deepcopy(cfg)}
    b = cfg["data"]["build"]
    if b["frll"] or b["images"]:
        summary["build"] = _build_pairs(cfg)
    data = cfg["data"]
    if not data["train"]:
        raise UsageError("data.train (a labelled pair CSV) is required, or data.build to make one")
    train = _load_split(data["train"], data["train_species"], name="train")
    dev = _load_split(data["dev"], data["train_species"], name="dev")
    test = _load_split(data["test"], data["test_species"], name="test")
    params = dict(cfg.get("params") or {})
    if cfg["detector"] in ("foundation", "foundation_smad"):
        params.setdefault("checkpoint_dir", str(out / "_train_state"))
        params.setdefault("seed", int(cfg["seed"]))
    det = get_detector(cfg["detector"], **params)
    cache = _feature_cache(cfg.get("cache"))
    t0 = time.time()
    fit_kwargs = {"dev": dev}
    if "cache" in _fit_params(det):
        fit_kwargs["cache"] = cache
    det.fit(train, **fit_kwargs)
    summary["train_seconds"] = round(time.time() - t0, 1)
    summary["counts"] = {n: {"bona_fide": sum(p.label == "bona_fide" for p in ps),
                             "attack": sum(p.label == "attack" for p in ps)}
                         for n, ps in (("train", train), ("dev", dev), ("test", test)) if ps}
    det.save(out)
    print(f"checkpoint written: {out} ({cfg['detector']}, trained in {summary['train_seconds']} s)")
    for name, ps in (("dev", dev), ("test", test)):
        if not ps:
            continue
        s, st, er = _score_with_status(det, ps, cache=cache)
        write_scores_csv(out / f"scores_{name}.csv", ps, s, status=st, errors=er)
        summary[name] = _evaluate(ps, s, st)
        print(f"{name}: {_fmt_rates(summary[name])} -> {out / f'scores_{name}.csv'}")
    if hasattr(det, "history_") and det.history_:
        summary["history"] = det.history_
    atomic_write_json(out / "train_summary.json", summary)
    return summary


def _fit_params(det) -> set:
    import inspect

    return set(inspect.signature(det.fit).parameters)


def main_train(argv: Sequence[str] | None = None) -> int:
    from madpad.cli import (
        apply_runtime_options,
        dump_config,
        resolve_config,
        run_main,
        setup_logging,
    )

    ap = argparse.ArgumentParser(prog="python -m madpad.detect train",
                                 description="Train a differential morph detector (or a baseline) from a YAML config. "
                                             "Scores: higher = more likely a morph.")
    ap.add_argument("--config", help="YAML config (see madpad/configs/detect/*.yaml)")
    ap.add_argument("--set", dest="set_items", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value (dotted keys, e.g. params.epochs=5); repeatable")
    ap.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    ap.add_argument("--list", action="store_true", help="list the registered detectors and exit")
    ap.add_argument("-v", "--verbose", action="count", default=0)
    args = ap.parse_args(list(argv) if argv is not None else None)

    def body() -> int:
        if args.list:
            from madpad.mad import DETECTORS

            for e in DETECTORS.describe():
                print(f"{e['name']:<20} {e['description']} [extra: {e['extra']}]")
            return 0
        cfg = resolve_config(TRAIN_DEFAULTS, config_path=args.config, set_items=args.set_items)
        _expand_paths(cfg)
        if args.print_config:
            print(dump_config(cfg), end="")
            return 0
        setup_logging(args.verbose)
        apply_runtime_options(threads=cfg["threads"], seed=cfg["seed"])
        train_from_config(cfg)
        return 0

    return run_main(body, prog="python -m madpad.detect train")


def _expand_paths(cfg: dict) -> None:
    """Expand '$VAR' / '${VAR}' and '~' in path values (so configs can say
    ${MADPAD_SHARED}/data/frll); relative paths stay relative to the working directory."""

    def fix(v):
        if not v:
            return v
        v = os.path.expanduser(os.path.expandvars(str(v)))
        if "$" in v:
            raise UsageError(f"config path {v!r} names an environment variable that is not set")
        return v

    d = cfg["data"]
    for k in ("train", "dev", "test"):
        d[k] = fix(d[k])
    b = d["build"]
    for k in ("frll", "images", "images_root", "out"):
        b[k] = fix(b[k])
    b["morphs"] = [fix(m) for m in ([b["morphs"]] if isinstance(b["morphs"], str) else (b["morphs"] or []))]
    cfg["out"] = fix(cfg["out"])
    cfg["cache"] = fix(cfg["cache"])
    for k, v in list(cfg.get("params", {}).items()):
        if k in ("model_config", "pretrained") and isinstance(v, str) and ("/" in v or v.endswith(".json")):
            cfg["params"][k] = fix(v)


# --------------------------------------------------------------------------- score
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


def score_pairs_file(*, model: str | os.PathLike, pairs_path: str | os.PathLike, out: str | os.PathLike,
                     cache_dir=None, chunk: int = 256, progress: bool = True, overrides: dict | None = None) -> dict:
    """Library form of ``detect score``; returns counts (ok / failed / reused)."""
    from tqdm.auto import tqdm

    from madpad.data import write_table
    from madpad.mad import load_detector
    from madpad.mad.pairs import read_pairs_csv

    if not Path(model).is_dir():
        raise UsageError(f"--model {model}: not a checkpoint directory (train one with 'python -m madpad.detect train')")
    pairs = read_pairs_csv(pairs_path)
    det = load_detector(model, **(overrides or {}))
    mid = model_fingerprint(model)
    out = Path(out)
    done = _previous_rows(out, mid)
    todo = [p for p in pairs if p.id not in done]
    cache = _feature_cache(cache_dir)
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
        s, st, er = _score_with_status(det, part, cache=cache)
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


def main_score(argv: Sequence[str] | None = None) -> int:
    from madpad.cli import apply_runtime_options, run_main, setup_logging

    ap = argparse.ArgumentParser(prog="python -m madpad.detect score",
                                 description="Score suspect/live pairs with a trained detector. Writes "
                                             "id,score,label,species (+status,error,model); higher = more likely a morph.")
    ap.add_argument("--model", required=True, help="checkpoint directory (from 'detect train')")
    ap.add_argument("--pairs", required=True, help="CSV with id,suspect,live[,label,species]; relative paths are "
                                                   "relative to the CSV's folder")
    ap.add_argument("--out", required=True, help="output scores CSV")
    ap.add_argument("--cache", default=None, help="per-image feature cache folder (default: $MADPAD_CACHE/mad-features "
                                                  "when set, else memory only)")
    ap.add_argument("--device", default=None, help="foundation detectors: cpu, cuda, auto")
    ap.add_argument("--batch-size", type=int, default=None, help="foundation detectors: images per forward pass")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("-v", "--verbose", action="count", default=0)
    args = ap.parse_args(list(argv) if argv is not None else None)

    def body() -> int:
        setup_logging(args.verbose)
        apply_runtime_options(threads=args.threads)
        overrides: dict[str, Any] = {}
        from madpad.mad.base import read_header

        head = read_header(args.model) if Path(args.model).is_dir() else None
        if head is not None and head.get("detector", "").startswith("foundation"):
            overrides["progress"] = False
            if args.device:
                overrides["device"] = args.device
            if args.batch_size:
                overrides["eval_batch_size"] = args.batch_size
        elif head is not None and head.get("detector") in ("embedding_distance", "embedding_classifier"):
            overrides["progress"] = False
        r = score_pairs_file(model=args.model, pairs_path=args.pairs, out=args.out, cache_dir=args.cache,
                             progress=not args.no_progress, overrides=overrides)
        msg = f"scored {r['ok']} of {r['n']} pairs -> {args.out}"
        if r["reused"]:
            msg += f" ({r['reused']} reused from a previous run)"
        print(msg)
        if r["failed"]:
            print(f"{len(r['failed'])} pair(s) failed (status/error columns), e.g.:", file=sys.stderr)
            for pid, rr in r["failed"][:5]:
                print(f"  {pid}: {rr['status']}: {rr['error']}", file=sys.stderr)
        return 0

    return run_main(body, prog="python -m madpad.detect score")

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
    python -m madpad.detect score --detector embedding_distance --pairs PAIRS.csv --out SCORES.csv

``--detector NAME[:key=value,...]`` scores with an untrained detector (no checkpoint), the baseline
to compare trained detectors against, e.g. ``demorph_distance:alpha=0.3,demorph_sharpness=true``.

``PAIRS.csv``: ``id,suspect,live`` (+ optional ``label,species,subjects,live_subject``), paths
absolute or relative to the CSV's folder. Writes ``id,score,label,species,status,error,model``
(+ ``subject`` when every pair names one)
atomically (readable by ``python -m madpad.report pad``); higher score = more likely a
morph. Rerunning the same command keeps the finished rows of the same model (resume).
Exit codes: 0 when the job ran (even with per-pair failures), 2 for bad input.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from madpad.mad.scoring import model_fingerprint, runtime_overrides, score_pairs_file
from madpad.mad.training import TRAIN_DEFAULTS, load_train_config, train_from_config

log = logging.getLogger("madpad.detect")

# the library functions live in madpad.mad.training and madpad.mad.scoring; re-exported here
__all__ = ["TRAIN_DEFAULTS", "main_score", "main_train", "model_fingerprint", "score_pairs_file",
           "train_from_config"]


# --------------------------------------------------------------------------- train
def main_train(argv: Sequence[str] | None = None) -> int:
    from madpad.cli import dump_config, run_main, setup_logging

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
            from madpad.mad import MORPH_DETECTORS

            for e in MORPH_DETECTORS.describe():
                print(f"{e['name']:<20} {e['description']} [extra: {e['extra']}]")
            return 0
        cfg = load_train_config(args.config, args.set_items)
        if args.print_config:
            print(dump_config(cfg), end="")
            return 0
        setup_logging(args.verbose)
        if cfg.get("out"):
            from madpad.cli import check_output_dir

            check_output_dir(cfg["out"], option="out (the checkpoint directory)")  # before any training work
        train_from_config(cfg, echo=print, warn=lambda msg: print(f"warning: {msg}", file=sys.stderr))
        return 0

    return run_main(body, prog="python -m madpad.detect train")


# --------------------------------------------------------------------------- score
def main_score(argv: Sequence[str] | None = None) -> int:
    from madpad.cli import apply_runtime_options, int_arg, run_main, setup_logging

    ap = argparse.ArgumentParser(prog="python -m madpad.detect score",
                                 description="Score suspect/live pairs with a trained detector. Writes "
                                             "id,score,label,species (+status,error,model); higher = more likely a morph.")
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="checkpoint directory (from 'detect train')")
    which.add_argument("--detector", help="an untrained detector, scored without a checkpoint: NAME[:key=value,...] "
                                          "(e.g. embedding_distance, demorph_distance:alpha=0.3)")
    ap.add_argument("--pairs", required=True, help="CSV with id,suspect,live[,label,species]; relative paths are "
                                                   "relative to the CSV's folder")
    ap.add_argument("--out", required=True, help="output scores CSV")
    ap.add_argument("--cache", default=None, help="per-image feature cache folder (default: $MADPAD_CACHE/mad-features "
                                                  "when set, else memory only)")
    ap.add_argument("--device", default=None, help="foundation detectors: cpu, cuda, auto")
    ap.add_argument("--batch-size", type=int, default=None, help="foundation detectors: images per forward pass")
    ap.add_argument("--threads", type=int_arg(1), default=None)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("-v", "--verbose", action="count", default=0)
    args = ap.parse_args(list(argv) if argv is not None else None)

    def body() -> int:
        from madpad.cli import check_output_dir, check_output_file

        setup_logging(args.verbose)
        check_output_file(args.out, option="--out")  # before any scoring work
        check_output_dir(args.cache, option="--cache")
        apply_runtime_options(threads=args.threads)
        overrides = (runtime_overrides(args.model, device=args.device, batch_size=args.batch_size)
                     if args.model else {})
        r = score_pairs_file(model=args.model, pairs_path=args.pairs, out=args.out, cache_dir=args.cache,
                             progress=not args.no_progress, overrides=overrides, detector=args.detector)
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

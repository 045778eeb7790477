"""``python -m madpad.generate``: make morphs in batch, and compare them with FR systems.

Generate (method-specific options appear with ``--method NAME --help``)::

    python -m madpad.generate --method landmark --pairs PAIRS.csv --out DIR [--alpha 0.5] [--seed 0]
        [--limit N] [--format png|jpg] [--max-side 2048]
    python -m madpad.generate --method landmark_spliced --manifest IMAGES.csv [--root ROOT]
        --strategy random|same_gender|most_similar --n-pairs N [--capture enrolment] --out DIR
    python -m madpad.generate --list-methods

PAIRS.csv has columns ``a,b`` (image paths, absolute or relative to the CSV's folder) and
optional ``alpha``, ``id``, ``subject_a``, ``subject_b``. The job writes ``DIR/<id>.<format>``,
``DIR/manifest.csv`` (one row per requested morph, with ``status`` and ``error``) and
``DIR/ATTRIBUTION.md``; rerunning skips finished morphs and retries failed ones.

Compare (comparison scores for ``python -m madpad.report vulnerability``)::

    python -m madpad.generate compare --morphs DIR/manifest.csv --probes IMAGES.csv [--root ROOT]
        [--probe-capture probe] [--references IMAGES.csv] [--reference-capture enrolment]
        --systems dlib[,mobileface,hse_faceres,faceapi_resnet128] [arcface_onnx:model_path=FILE@arcface]
        --out COMPARISONS.csv

Exit codes: 0 when the job ran (per-item failures are recorded, not fatal), 2 for bad input.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from madpad.cli import (
    apply_runtime_options,
    check_output_dir,
    check_output_file,
    int_arg,
    run_main,
    setup_logging,
)
from madpad.errors import UsageError

PROG = "python -m madpad.generate"
log = logging.getLogger("madpad.generate")


# --------------------------------------------------------------------------- generate
def _base_parser(add_help: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, add_help=add_help,
        description="Generate face morphs in batch (and, with the 'compare' subcommand, FR comparison scores "
                    "for morphing-vulnerability reports).",
        epilog="Subcommand: 'python -m madpad.generate compare --help'. Method options: '--method NAME --help'.")
    p.add_argument("--method", default=None, help="morph method (see --list-methods)")
    p.add_argument("--list-methods", action="store_true", help="list the morph methods and exit")
    src = p.add_argument_group("what to morph (give --pairs, or --manifest with a strategy)")
    src.add_argument("--pairs", type=Path, default=None,
                     help="CSV with columns a,b (+ optional alpha,id,subject_a,subject_b)")
    src.add_argument("--subject-pattern", default=None, metavar="REGEX",
                     help="with --pairs and no subject columns: regex whose first group is the subject id in the "
                          "file name (e.g. '^(\\d+)_' for FRLL); default: the file stem")
    src.add_argument("--manifest", type=Path, default=None, help="image manifest (madpad.data format)")
    src.add_argument("--root", type=Path, default=None, help="dataset root of --manifest (default: its folder)")
    src.add_argument("--strategy", default="same_gender", choices=["random", "same_gender", "most_similar"],
                     help="pair selection from --manifest (default same_gender)")
    src.add_argument("--n-pairs", type=int, default=None, help="number of pairs to select from --manifest")
    src.add_argument("--capture", default=None,
                     help="use only manifest images with this capture value (e.g. enrolment)")
    src.add_argument("--age-band", type=float, default=None, help="pair only subjects at most this many years apart")
    src.add_argument("--same-gender", action="store_true",
                     help="also require the same gender for the random/most_similar strategies")
    src.add_argument("--fr-system", default="dlib",
                     help="FR system for --strategy most_similar: NAME[:key=value,...] (default dlib)")
    src.add_argument("--max-per-subject", type=int, default=None,
                     help="most_similar: a subject appears in at most this many pairs")
    src.add_argument("--cache-dir", type=Path, default=None,
                     help="embedding cache for most_similar (default $MADPAD_CACHE/embeddings, else none)")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, default=None, help="output folder (morphs + manifest.csv)")
    out.add_argument("--alpha", type=float, default=0.5,
                     help="morph weight when PAIRS.csv has no alpha column (landmark methods: weight of b; "
                          "default 0.5)")
    out.add_argument("--seed", type=int, default=0, help="job seed; each morph gets a seed derived from it and its id")
    out.add_argument("--limit", type=int, default=None, help="make only the first N requested morphs")
    out.add_argument("--format", default="png", choices=["png", "jpg"], help="image format (default png)")
    out.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")
    out.add_argument("--max-side", type=int, default=None, metavar="PIXELS",
                     help="cap on the working and output size: source images whose longer side exceeds it are "
                          "shrunk on reading, which bounds memory (default 2048; 0 = no cap)")
    run = p.add_argument_group("run")
    run.add_argument("--threads", type=int_arg(1), default=None, help="OpenCV/torch threads (default: library default)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("-v", "--verbose", action="count", default=0)
    return p


def _embedding_cache(cache_dir: Path | None):
    from madpad.io import env_path

    if cache_dir is not None:
        from madpad.face import EmbeddingCache

        return EmbeddingCache(cache_dir)
    if env_path("MADPAD_CACHE") is not None:
        from madpad.face import EmbeddingCache

        return EmbeddingCache()
    return None


def _requests_from_manifest(args) -> list:
    from madpad.data import load_images
    from madpad.morph.batch import requests_from_pairs, write_pairs_csv
    from madpad.morph.pairs import select_pairs

    if args.n_pairs is None:
        raise UsageError("--manifest needs --n-pairs N (how many pairs to select)")
    images = load_images(args.manifest, root=args.root)
    images = [r for r in images if r.label == "bona_fide"]
    if args.capture:
        images = [r for r in images if r.capture == args.capture]
    if len(images) < 2:
        raise UsageError(f"{args.manifest}: fewer than two bona fide images"
                         + (f" with capture {args.capture!r}" if args.capture else ""))
    embeddings = None
    if args.strategy == "most_similar":
        from madpad.face import embed_batch, get_embedder
        from madpad.face.comparisons import parse_system

        spec = parse_system(args.fr_system)
        batch = embed_batch([str(r.path) for r in images], get_embedder(spec.name, **spec.params),
                            cache=_embedding_cache(args.cache_dir), progress=not args.no_progress,
                            desc=f"embed {spec.label}")
        embeddings = batch.embeddings
        for i, st, err in batch.failures():
            log.warning("pair selection: %s left out (%s: %s)", images[i].id, st, err)
    pairs = select_pairs(images, strategy=args.strategy, n_pairs=args.n_pairs, seed=args.seed,
                         embeddings=embeddings, age_band=args.age_band, same_gender=args.same_gender,
                         max_per_subject=args.max_per_subject)
    requests = requests_from_pairs(pairs, alpha=args.alpha)
    args.out.mkdir(parents=True, exist_ok=True)
    write_pairs_csv(args.out / "pairs.csv", requests)
    return requests


def _generate(argv: Sequence[str]) -> int:
    from madpad.morph import MORPH_METHODS

    pre, _ = _base_parser(add_help=False).parse_known_args(argv)
    parser = _base_parser(add_help=True)
    if pre.method:
        method = MORPH_METHODS.load(pre.method)  # unknown name -> UnknownComponentError (exit 2)
        method.add_cli_arguments(parser.add_argument_group(f"{pre.method} options"))
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if args.list_methods:
        for d in MORPH_METHODS.describe():
            extra = f"  [pip install 'madpad[{d['extra']}]']" if d["extra"] else ""
            print(f"{d['name']:18s} {d['description']}{extra}")
        return 0
    if not args.method:
        raise UsageError("--method is required (see --list-methods)")
    if args.out is None:
        raise UsageError("--out DIR is required")
    if (args.pairs is None) == (args.manifest is None):
        raise UsageError("give exactly one of --pairs PAIRS.csv or --manifest IMAGES.csv")
    if not 0.0 <= args.alpha <= 1.0:
        raise UsageError(f"--alpha must be in [0, 1]; got {args.alpha}")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be >= 1; got {args.limit}")
    check_output_dir(args.out, option="--out")
    if args.max_side is not None and args.max_side < 64:
        raise UsageError(f"--max-side must be 0 (no cap) or at least 64 pixels; got {args.max_side}")
    apply_runtime_options(threads=args.threads)

    from madpad.morph.batch import DEFAULT_MAX_SIDE, read_pairs_csv, run_morph_job

    if args.pairs is not None:
        requests = read_pairs_csv(args.pairs, default_alpha=args.alpha, subject_pattern=args.subject_pattern)
    else:
        requests = _requests_from_manifest(args)
    if args.limit is not None:
        requests = requests[: args.limit]
    if not requests:
        raise UsageError("no morphs to make (no pairs selected)")
    generator = MORPH_METHODS.load(args.method).from_cli(args)
    summary = run_morph_job(requests, generator, args.out, method=args.method, seed=args.seed, fmt=args.format,
                            quality=args.quality, progress=False if args.no_progress else None,
                            max_side=DEFAULT_MAX_SIDE if args.max_side is None else args.max_side)
    for line in summary.lines():
        print(line, file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- compare
def _compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"{PROG} compare",
        description="Compare morphs with probe images of their contributors, and bona fide references with "
                    "probes (genuine and zero-effort impostor comparisons that set the FR thresholds), with one "
                    "or more FR systems. Writes the comparison-score CSV read by "
                    "'python -m madpad.report vulnerability'. Scores: cosine similarity, higher = more similar.")
    p.add_argument("--morphs", type=Path, required=True, help="morph manifest (DIR/manifest.csv of a generate job)")
    p.add_argument("--morph-root", type=Path, default=None, help="root of the morph paths (default: its folder)")
    p.add_argument("--probes", type=Path, required=True, help="image manifest of bona fide probe images")
    p.add_argument("--probe-capture", default=None, help="use only probe rows with this capture (e.g. probe)")
    p.add_argument("--references", type=Path, default=None,
                   help="image manifest of bona fide enrolment images (default: the --probes manifest)")
    p.add_argument("--reference-capture", default=None,
                   help="use only reference rows with this capture (e.g. enrolment)")
    p.add_argument("--root", type=Path, default=None,
                   help="dataset root of --probes/--references (default: each manifest's folder)")
    p.add_argument("--systems", nargs="+", default=["dlib"], metavar="SPEC",
                   help="FR systems, separated by spaces or commas: NAME[:key=value,...][@LABEL] (default dlib), "
                        "e.g. dlib,mobileface,hse_faceres,faceapi_resnet128 or "
                        "arcface_onnx:model_path=w600k_r50.onnx@arcface; 'offline' = every offline system whose "
                        "model file is found (dlib + the ONNX networks in $MADPAD_SHARED/models/fr). "
                        "faceapi_resnet128 is a port of dlib's ResNet, not an independent system")
    p.add_argument("--out", type=Path, required=True, help="comparison scores CSV to write")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="embedding cache (default $MADPAD_CACHE/embeddings, else <out folder>/embedding_cache)")
    p.add_argument("--no-cache", action="store_true", help="do not cache embeddings")
    p.add_argument("--threads", type=int_arg(1), default=None)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p


_PARAM_ITEM = re.compile(r"^\s*[A-Za-z_][\w.-]*\s*=")


def split_system_args(values: Sequence[str]) -> list[str]:
    """``--systems`` values -> one spec per FR system. Systems may be separated by spaces or
    commas; a comma-separated ``key=value`` item continues the previous system's parameters
    (``arcface_onnx:model_path=m.onnx,color=BGR@arc,dlib`` is two systems). ``offline`` expands to
    every offline system whose model file is found (:func:`madpad.face.fr_onnx.available_fr_systems`;
    the ones left out are logged).

    >>> split_system_args(["dlib,mobileface", "arcface_onnx:model_path=m.onnx,color=BGR@arc,hse_faceres"])
    ['dlib', 'mobileface', 'arcface_onnx:model_path=m.onnx,color=BGR@arc', 'hse_faceres']
    """
    out: list[str] = []
    for value in values:
        for i, piece in enumerate(str(value).split(",")):
            if not piece.strip():
                continue
            if i > 0 and out and _PARAM_ITEM.match(piece) and ":" in out[-1] and "@" not in out[-1]:
                out[-1] += "," + piece.strip()
            else:
                out.append(piece.strip())
    expanded: list[str] = []
    for spec in out:
        if spec == "offline":
            from madpad.face.fr_onnx import available_fr_systems

            found, notes = available_fr_systems()
            for n in notes:
                log.warning("%s", n)
            expanded += found
        else:
            expanded.append(spec)
    expanded = list(dict.fromkeys(expanded))  # "offline,dlib" names dlib once
    if not expanded:
        raise UsageError("--systems: no FR system given (e.g. --systems dlib,mobileface)")
    return expanded


def _compare(argv: Sequence[str]) -> int:
    from madpad.data import load_images, load_morphs
    from madpad.face.comparisons import (
        compute_comparisons,
        parse_system,
        write_comparisons,
    )
    from madpad.io import env_path

    args = _compare_parser().parse_args(argv)
    setup_logging(args.verbose)
    check_output_file(args.out, option="--out")
    if args.cache_dir is not None:
        check_output_dir(args.cache_dir, option="--cache-dir")
    apply_runtime_options(threads=args.threads)
    specs = [parse_system(s) for s in split_system_args(args.systems)]
    morphs = load_morphs(args.morphs, root=args.morph_root)
    probes = load_images(args.probes, root=args.root)
    if args.probe_capture:
        probes = [r for r in probes if r.capture == args.probe_capture]
        if not probes:
            raise UsageError(f"{args.probes}: no rows with capture {args.probe_capture!r}")
    refs = load_images(args.references or args.probes, root=args.root)
    if args.reference_capture:
        refs = [r for r in refs if r.capture == args.reference_capture]
        if not refs:
            raise UsageError(f"{args.references or args.probes}: no rows with capture {args.reference_capture!r}")
    cache = None
    if not args.no_cache:
        from madpad.face import EmbeddingCache

        if args.cache_dir is not None:
            cache = EmbeddingCache(args.cache_dir)
        elif env_path("MADPAD_CACHE") is not None:
            cache = EmbeddingCache()
        else:
            cache = EmbeddingCache(args.out.resolve().parent / "embedding_cache")
    result = compute_comparisons(morphs=morphs, probes=probes, references=refs, systems=specs, cache=cache,
                                 progress=sys.stderr.isatty() and not args.no_progress)
    out, failed = write_comparisons(args.out, result)
    for line in result.lines():
        print(line, file=sys.stderr)
    print(f"wrote {len(result.rows)} comparison(s) to {out}" + (f"; failures listed in {failed}" if failed else ""),
          file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- entry point
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compare":
        body, prog = (lambda: _compare(argv[1:])), f"{PROG} compare"
    else:
        body, prog = (lambda: _generate(argv)), PROG
    try:
        return run_main(body, prog=prog)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2, message already printed)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2


if __name__ == "__main__":
    sys.exit(main())

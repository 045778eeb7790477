"""``python -m madpad.report pad|vulnerability|compare ...`` -- metric reports from score files.

Examples::

    python -m madpad.report pad --scores scores.csv --out reports/pad
    python -m madpad.report pad --scores eval.csv --dev dev.csv --kind mad --out reports/mad
    python -m madpad.report vulnerability --scores comparisons.csv --out reports/vuln --fmr 0.001 0.01
    python -m madpad.report compare --scores a.csv b.csv --names A B --out reports/cmp

Each writes ``report.json``, ``report.md`` and a self-contained ``report.html`` into
``--out``. Bad input files end with exit code 2 and a one-line message naming the file,
the row and the field.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from madpad.cli import run_main, setup_logging
from madpad.errors import UsageError

PROG = "python -m madpad.report"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description="ISO/IEC 30107-3 PAD reports and morphing-vulnerability "
                                 "reports (JSON, Markdown, self-contained HTML).")
    sub = ap.add_subparsers(dest="command", required=True, metavar="{pad,vulnerability,compare}")

    p = sub.add_parser("pad", help="PAD/MAD report from a scores CSV (id,score,label,species)",
                       description="PAD/MAD report from a scores CSV with columns id,score,label,species "
                                   "(label bona_fide|attack; species empty for bona fide; higher score = attack; "
                                   "an optional 'subject' column enables the subject bootstrap).")
    p.add_argument("--scores", required=True, help="PAD scores CSV (the evaluation scores when --dev is given)")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--dev", default=None, metavar="DEV.csv",
                   help="development scores: thresholds are fixed on them at every target and applied to --scores "
                        "(report.json: dev_eval)")
    _common_pad_options(p)

    c = sub.add_parser("compare", help="several detectors on the same samples (joined by id), paired bootstrap",
                       description="Compare PAD/MAD detectors scored on the same samples: one DET plot, one table "
                                   "with intervals, and paired bootstrap intervals of each difference to the first "
                                   "system (by subject when a subject column is given).")
    c.add_argument("--scores", required=True, nargs="+", metavar="CSV", help="two or more PAD scores CSVs")
    c.add_argument("--names", nargs="+", default=None, help="system names (default: the file names)")
    c.add_argument("--out", required=True, help="output folder (created)")
    _common_pad_options(c)

    v = sub.add_parser("vulnerability", help="MMPMR/ProdAvg-MMPMR/RMMR/MAP from a comparison-scores CSV",
                       description="Morphing vulnerability from a comparison-scores CSV with columns "
                                   "system,kind,reference,probe,reference_subjects,probe_subject,score.")
    v.add_argument("--scores", required=True, help="comparison scores CSV")
    v.add_argument("--out", required=True, help="output folder (created)")
    v.add_argument("--fmr", type=float, nargs="+", default=[0.001, 0.01],
                   help="target FMRs at which FR thresholds are set (default: 0.001 0.01)")
    v.add_argument("--match-rule", choices=[">=", ">"], default=">=",
                   help="a comparison matches when score >= threshold (default) or > threshold")
    v.add_argument("--thumbnails", default=None, metavar="DIR_OR_MANIFEST",
                   help="morph manifest CSV (id,path; paths relative to its folder) or image folder, to show "
                        "example morphs in the HTML")
    v.add_argument("--title", default=None)
    v.add_argument("-v", "--verbose", action="count", default=0)
    return ap


def _common_pad_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=["pad", "mad"], default="pad",
                   help="pad: ISO/IEC 30107-3 vocabulary (APCER/BPCER); mad: morphing attack detection in ISO/IEC "
                        "20059 vocabulary (MACER/BSCER) with the NIST FATE MORPH operating points (default: pad)")
    p.add_argument("--title", default=None)
    p.add_argument("--targets", type=float, nargs="+", default=[0.01, 0.05, 0.1, 0.2],
                   help="APCER/BPCER targets for BPCER@APCER and APCER@BPCER (default: 0.01 0.05 0.1 0.2)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap resamples for confidence intervals; 0 disables (default: 1000)")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument("--lower-is-attack", action="store_true",
                   help="scores are higher = bona fide (bob style); flipped at the boundary")
    p.add_argument("-v", "--verbose", action="count", default=0)


def _check_pad_options(args) -> list[float]:
    targets = _rate_list(args.targets, "--targets", open_low=False)
    if args.bootstrap < 0:
        raise UsageError(f"--bootstrap must be >= 0; got {args.bootstrap}")
    if not 0 < args.confidence < 1:
        raise UsageError(f"--confidence must be in (0, 1); got {args.confidence}")
    return targets


def _rate_list(values: Sequence[float], opt: str, *, open_low: bool) -> list[float]:
    for x in values:
        if not (0 < x < 1 if open_low else 0 <= x <= 1):
            raise UsageError(f"{opt} values must be in {'(0, 1)' if open_low else '[0, 1]'}; got {x}")
    return list(values)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        from madpad.cli import check_output_dir

        setup_logging(args.verbose)
        check_output_dir(args.out, option="--out")  # before reading and bootstrapping
        if args.command == "pad":
            from madpad.report.pad import write_pad_report

            targets = _check_pad_options(args)
            rep = write_pad_report(args.scores, args.out, title=args.title, targets=targets,
                                   n_bootstrap=args.bootstrap, confidence=args.confidence, seed=args.seed,
                                   higher_is_attack=not args.lower_is_attack, kind=args.kind, dev=args.dev)
            fta = rep.get("failure_to_acquire") or {}
            failed = f"; {fta['n_failed']} failed to acquire" if fta.get("n_failed") else ""
            print(f"{'MAD' if args.kind == 'mad' else 'PAD'} report: {rep['n_bona_fide']} bona fide, "
                  f"{rep['n_attack']} attacks in {len(rep['species'])} species{failed}; D-EER {100 * rep['d_eer']:.2f}%")
        elif args.command == "compare":
            from madpad.report.compare import write_compare_report

            targets = _check_pad_options(args)
            if len(args.scores) < 2:
                raise UsageError("compare needs at least two --scores files")
            rep = write_compare_report(args.scores, args.out, names=args.names, targets=targets,
                                       higher_is_attack=not args.lower_is_attack, n_bootstrap=args.bootstrap,
                                       confidence=args.confidence, seed=args.seed, title=args.title, kind=args.kind)
            for e in rep["systems"]:
                print(f"{e['name']}: D-EER {100 * e['d_eer']:.2f}%")
        else:
            from madpad.report.vulnerability import write_vulnerability_report

            fmrs = _rate_list(args.fmr, "--fmr", open_low=True)
            if args.thumbnails is not None and not Path(args.thumbnails).exists():
                raise UsageError(f"--thumbnails {args.thumbnails}: no such file or folder")
            rep = write_vulnerability_report(args.scores, args.out, fmrs=fmrs, match_rule=args.match_rule,
                                             title=args.title, thumbnails=args.thumbnails)
            for name, s in rep["systems"].items():
                bits = ", ".join(f"FMR {float(k):g}: MMPMR {100 * a['mmpmr']:.1f}%" for k, a in s["at_fmr"].items())
                print(f"{name}: {bits}")
        for path in rep["files"].values():
            print(f"wrote {path}")
        return 0

    return run_main(body, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())

"""``python -m madpad.pipeline run|show|status PIPELINE.yaml`` - run staged YAML pipelines.

    python -m madpad.pipeline run pipelines/example_small.yaml --workers 2
    python -m madpad.pipeline run pipelines/example_small.yaml --from summary --set params.fail_ids=[]
    python -m madpad.pipeline run pipelines/example_small.yaml --executor ray [--address auto]
    python -m madpad.pipeline show pipelines/example_small.yaml
    python -m madpad.pipeline status pipelines/example_small.yaml

Exit codes: 0 every selected stage ran or was up to date; 1 a stage failed (the summary names
it; rerun the same command to resume); 2 bad input (pipeline file, unknown stage, --set key, or
a stage that failed on a bad manifest / usage error: the first such error is printed).

A run first removes what a killed run left in the workdir (``.madpad/tmp/`` folders, temporary
files) and says what it removed; worker processes end with the run that started them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from madpad.cli import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    dump_config,
    run_main,
    setup_logging,
)
from madpad.errors import UsageError

PROG = "python -m madpad.pipeline"


def _pipeline_path(name: str) -> Path:
    p = Path(name)
    if p.is_file():
        return p
    for cand in (Path("pipelines") / name, Path("pipelines") / f"{name}.yaml"):
        if cand.is_file():
            return cand
    raise UsageError(f"pipeline file not found: {name}")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description="Run staged YAML pipelines (content-addressed cache, "
                                                       "resume, local process pool or Ray).")
    sub = ap.add_subparsers(dest="command", required=True, metavar="{run,show,status}")

    def common(p):
        p.add_argument("pipeline", help="pipeline YAML (pipelines/NAME.yaml, or NAME)")
        p.add_argument("--workdir", help="run folder (default: the YAML's workdir, relative to the YAML file)")
        p.add_argument("--set", dest="set_items", action="append", default=[], metavar="KEY=VALUE",
                       help="override params.NAME=VALUE or stages.STAGE.params.NAME=VALUE (repeatable)")
        p.add_argument("-v", "--verbose", action="count", default=0)

    run = sub.add_parser("run", help="run the pipeline (skips up-to-date stages)")
    common(run)
    g = run.add_mutually_exclusive_group()
    g.add_argument("--from", dest="from_stage", metavar="STAGE", help="run STAGE and every stage after it")
    g.add_argument("--only", metavar="STAGE", help="run only STAGE (its inputs must exist)")
    run.add_argument("--executor", choices=["local", "ray", "serial"], default="local",
                     help="where per-item work runs (default: %(default)s process pool)")
    run.add_argument("--address", help="Ray cluster address (e.g. auto or ray://HOST:10001); default: local Ray")
    run.add_argument("--workers", type=int, help="worker processes / local Ray CPUs (default: min(2, CPUs))")
    run.add_argument("--force", action="store_true", help="rerun the selected stages even if up to date")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    show = sub.add_parser("show", help="print the resolved stages in execution order")
    common(show)
    status = sub.add_parser("status", help="which stages are up to date, stale (and why) or waiting")
    common(status)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    def body():
        from madpad.pipeline.spec import load_pipeline

        setup_logging(args.verbose)
        spec = load_pipeline(_pipeline_path(args.pipeline), set_items=args.set_items, workdir=args.workdir)
        if args.command == "show":
            out = {"name": spec.name, "workdir": str(spec.workdir), "order": spec.order, "params": spec.params,
                   "stages": {n: {"fn": s.fn, "depends_on": s.deps, "inputs": {k: str(v) for k, v in s.inputs.items()},
                                  "outputs": {k: str(spec.output_path(n, k)) for k in s.outputs},
                                  "params": s.params} for n, s in spec.stages.items()}}
            print(dump_config(out), end="")
            return EXIT_OK
        if args.command == "status":
            from madpad.pipeline.runner import pipeline_status

            for row in pipeline_status(spec):
                why = f": {'; '.join(row['why'])}" if row["why"] else ""
                print(f"{row['stage']}: {row['state']}{why}")
            return EXIT_OK
        if args.workers is not None and args.workers < 1:
            raise UsageError(f"--workers must be >= 1; got {args.workers}")
        if args.address and args.executor != "ray":
            raise UsageError("--address is for --executor ray")
        from madpad.cli import check_output_dir
        from madpad.pipeline.runner import run_pipeline

        check_output_dir(spec.workdir, option="--workdir" if args.workdir else "workdir")
        summary = run_pipeline(spec, from_stage=args.from_stage, only=args.only, executor=args.executor,
                               workers=args.workers, address=args.address, force=args.force,
                               progress=not args.no_progress and sys.stderr.isatty(), verbose=args.verbose > 0)
        print(f"run summary: {spec.workdir / 'run_summary.json'}")
        if summary.bad_input:
            s = next(s for s in summary.stages if s.status == "failed" and s.bad_input)
            print(f"{PROG}: error: stage {s.stage}: {s.error.strip().splitlines()[0] if s.error.strip() else 'bad input'}",
                  file=sys.stderr)
            return EXIT_USAGE
        return EXIT_OK if summary.ok else EXIT_FAILURE

    return run_main(body, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())

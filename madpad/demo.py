"""``python -m madpad.demo``: the main jobs of madpad end to end on the bundled FRLL sample.

::

    python -m madpad.demo [--out madpad-demo] [--data sample|frll|MANIFEST|FOLDER] [--root ROOT]
        [--pairs 24] [--steps generate,vulnerability,detect,tshirt,segmentation] [--seed 0]
        [--dcmorph-base-model M --dcmorph-ip-adapter F --dcmorph-face-encoder SPEC]
        [--clip-checkpoint FILE|DIR --clip-model NAME] [--yolo-weights FILE] [--rembg-models DIR]

The demo is the pipeline ``pipelines/demo.yaml`` (stage functions in
:mod:`madpad.pipeline.stages.demo`), run by :func:`madpad.pipeline.run_pipeline`; this module is
its command line: it checks the options, maps them onto the pipeline's params, runs the stages
of the selected steps (each step prints a numbered line and tqdm bars of its parts;
``docs/demo.md``), always runs the report stage and prints the path of ``report.html``.

1. ``generate`` - landmark morphs (full and spliced) of same-gender pairs of the enrolment
   (neutral) images, pairs chosen within a subject-disjoint train/test split (seeded);
   with ``--dcmorph-*`` also DCMorph diffusion morphs of the same pairs.
2. ``vulnerability`` - dlib face recognition: morphs compared with the contributors' probe
   (smiling) images; thresholds at FMR 0.1 % and 1 % from the bona fide genuine/impostor
   comparisons; MMPMR, ProdAvg-MMPMR, RMMR per morph method.
3. ``detect`` - differential MAD: suspect = enrolment image or morph, live capture = a varied
   (simulated) capture of the smiling image; dlib-embedding difference + logistic regression /
   RBF SVM trained on the train subjects, the untrained dlib distance, and (with
   ``--clip-checkpoint``) the open_clip + LoRA foundation detector; ISO/IEC 30107-3 figures on
   the test subjects.
4. ``tshirt`` - synthetic T-shirt presentation attacks built from the sample and scored with
   the rule-based spatial-consistency detector (MediaPipe pose + dlib HOG faces; YOLO with
   ``--yolo-weights``).
5. ``segmentation`` - a short background-segmentation study: the stages of
   ``pipelines/segmentation_study.yaml`` (MediaPipe selfie, landmark hull, GrabCut, and rembg
   IS-Net when its model file is in ``--rembg-models`` / ``$U2NET_HOME``).

Outputs in ``--out`` (the pipeline's workdir): ``report.html`` (self-contained: DET curves,
tables, thumbnails), ``report.json`` (every figure), one folder per stage (``data/``,
``generate/``, ``vulnerability/``, ``detect/``, ``tshirt/``, ``seg_*/``, ``segmentation/``,
``report/``; each step's ``status.json``), ``logs/`` and ``cache/``. Rerunning the same command
reuses every stage whose inputs, params and code are unchanged (the pipeline's
content-addressed cache), and a run after an interrupted one finishes the rest. Scores
everywhere: higher = more likely attack; attack when ``score >= threshold``.

Exit codes: 0 when every selected step ran (per-item failures are listed in the report),
1 when a step failed (the report says which and why), 2 for bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from madpad.cli import int_arg, parse_component_spec
from madpad.errors import UsageError
from madpad.pipeline.stages.demo.common import (
    DATA_STAGE,
    NEEDS,
    REPORT_STAGE,
    STATUS_NAME,
    STEP_STAGES,
    STEP_TITLES,
    STEPS,
    DemoData,
    load_data,
    read_status,
)

PROG = "python -m madpad.demo"
DEFAULT_OUT = "madpad-demo"
PIPELINE = "demo"


# =========================================================================== options
@dataclass
class DemoOptions:
    """Every option of the demo (the command line maps onto it one to one)."""

    out: Path = Path(DEFAULT_OUT)
    data: str = "sample"
    root: Path | None = None
    pairs: int = 24
    steps: tuple = STEPS
    seed: int = 0
    live_variants: int = 2
    tshirt_wearers: int = 12
    seg_subjects: int = 6
    n_bootstrap: int = 200
    dcmorph_base_model: str | None = None
    dcmorph_ip_adapter: str | None = None
    dcmorph_face_encoder: str | None = None
    dcmorph_steps: int = 30
    dcmorph_device: str = "auto"
    clip_checkpoint: str | None = None
    clip_model: str = "ViT-B-16"
    clip_epochs: int = 5
    clip_device: str = "auto"
    yolo_weights: str | None = None
    rembg_models: str | None = None
    workers: int | None = None
    progress: bool = True
    force: bool = False

    def as_dict(self) -> dict:
        d = asdict(self)
        d["out"] = str(self.out)
        d["root"] = None if self.root is None else str(self.root)
        d["steps"] = list(self.steps)
        return d


_positive_int = int_arg(1)
_non_negative_int = int_arg(0)


def parse_steps(text: str) -> tuple:
    """``"generate,detect"`` -> ``("generate", "detect")`` in the demo's order; ``all`` = every step.
    Raises :class:`UsageError` naming an unknown step."""
    import difflib

    items = [s.strip().lower() for s in str(text).split(",") if s.strip()]
    if not items:
        raise UsageError(f"--steps is empty; choose from {','.join(STEPS)} (or 'all')")
    if items == ["all"]:
        return STEPS
    bad = [s for s in items if s not in STEPS]
    if bad:
        hint = difflib.get_close_matches(bad[0], STEPS, n=1)
        raise UsageError(f"--steps: unknown step {bad[0]!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                         + f"; choose from {','.join(STEPS)}")
    return tuple(s for s in STEPS if s in items)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="madpad end to end on the bundled FRLL sample (or your data): landmark morphs, face-recognition "
                    "vulnerability, differential morph detection, synthetic T-shirt attacks and their detection, "
                    "a background-segmentation study; one self-contained HTML report. Scores: higher = more likely "
                    "attack. Rerun the same command to resume.",
        epilog="See docs/demo.md. Example: python -m madpad.demo --out madpad-demo")
    ap.add_argument("--out", type=Path, default=Path(DEFAULT_OUT),
                    help=f"output folder (default ./{DEFAULT_OUT}): the pipeline's workdir; finished stages in it are reused")
    ap.add_argument("--data", default="sample",
                    help="'sample' (bundled 24-subject FRLL sample, default), 'frll' (an FRLL folder: --root or "
                         "$MADPAD_SHARED/data/frll), an FRLL-layout folder, or an image manifest CSV/JSONL "
                         "(id,path,subject,label,... with capture enrolment/probe and optional gender)")
    ap.add_argument("--root", type=Path, default=None,
                    help="dataset root: the FRLL folder for --data frll, or the folder a manifest's paths are "
                         "relative to (default: the manifest's folder)")
    ap.add_argument("--pairs", type=_positive_int, default=24,
                    help="morph pairs per morph method (default 24; split over the train and test subjects)")
    ap.add_argument("--steps", default=",".join(STEPS),
                    help=f"comma list of steps to run (default all): {','.join(STEPS)}")
    ap.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    ap.add_argument("--force", action="store_true", help="redo the selected steps even when their finished outputs are up to date")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars (the step lines stay)")
    ap.add_argument("-v", "--verbose", action="count", default=0)
    size = ap.add_argument_group("sizes")
    size.add_argument("--live-variants", type=_positive_int, default=2,
                      help="simulated live captures per subject for the D-MAD pairs (default 2)")
    size.add_argument("--tshirt-wearers", type=_positive_int, default=12,
                      help="wearers of synthetic T-shirt attacks (default 12; 4 attack species + 2 bona fide each)")
    size.add_argument("--seg-subjects", type=_positive_int, default=6,
                      help="subjects in the segmentation study (default 6)")
    size.add_argument("--bootstrap", type=_non_negative_int, default=200,
                      help="bootstrap resamples for the confidence intervals of the PAD figures (default 200; 0 = off)")
    size.add_argument("--workers", type=_positive_int, default=None,
                      help="worker processes of the pipeline's per-item work (default: min(2, CPU count))")
    real = ap.add_argument_group("real model weights (optional; nothing is downloaded)")
    real.add_argument("--dcmorph-base-model", default=None, metavar="MODEL",
                      help="adds a DCMorph attack family: Stable Diffusion 1.5/SDXL-class base model (diffusers "
                           "folder or single .safetensors file); needs the two options below")
    real.add_argument("--dcmorph-ip-adapter", default=None, metavar="FILE",
                      help="IP-Adapter FaceID checkpoint (.bin/.safetensors) for DCMorph")
    real.add_argument("--dcmorph-face-encoder", default=None, metavar="NAME[:k=v,...]",
                      help="512-D ArcFace identity encoder for DCMorph, e.g. arcface_onnx:model_path=w600k_r50.onnx")
    real.add_argument("--dcmorph-steps", type=_positive_int, default=30, help="DCMorph DDIM steps (default 30)")
    real.add_argument("--dcmorph-device", default="auto", help="DCMorph torch device (default: cuda if available)")
    real.add_argument("--clip-checkpoint", default=None, metavar="FILE|DIR",
                      help="adds the foundation detector (open_clip ViT + LoRA, DifFoundMAD-style): an open_clip "
                           "checkpoint FILE of --clip-model to fine-tune on the train pairs, or a detector folder "
                           "saved by 'python -m madpad.detect train' (detector.json) to evaluate as is")
    real.add_argument("--clip-model", default="ViT-B-16",
                      help="open_clip architecture of --clip-checkpoint (default ViT-B-16; a shipped config name "
                           "such as madpad-tiny-vit also works)")
    real.add_argument("--clip-epochs", type=_positive_int, default=5, help="foundation fine-tuning epochs (default 5)")
    real.add_argument("--clip-device", default="auto", help="foundation detector device (default: cuda if available)")
    real.add_argument("--yolo-weights", default=None, metavar="FILE",
                      help="adds an ultralytics YOLO person detector (.pt) to the T-shirt detection")
    real.add_argument("--rembg-models", default=None, metavar="DIR",
                      help="folder with rembg model files (isnet-general-use.onnx); default $U2NET_HOME. rembg "
                           "IS-Net joins the segmentation study when its file is there")
    return ap


def _looks_like_path(value: str) -> bool:
    return os.sep in value or "/" in value or value.endswith((".safetensors", ".bin", ".pt", ".pth", ".onnx", ".ckpt"))


def options_from_args(args: argparse.Namespace) -> DemoOptions:
    """Validate the parsed command line (clear :class:`UsageError` messages naming the option)."""
    steps = parse_steps(args.steps)
    o = DemoOptions(out=args.out, data=str(args.data), root=args.root, pairs=args.pairs, steps=steps, seed=args.seed,
                    live_variants=args.live_variants, tshirt_wearers=args.tshirt_wearers,
                    seg_subjects=args.seg_subjects, n_bootstrap=args.bootstrap,
                    dcmorph_base_model=args.dcmorph_base_model, dcmorph_ip_adapter=args.dcmorph_ip_adapter,
                    dcmorph_face_encoder=args.dcmorph_face_encoder, dcmorph_steps=args.dcmorph_steps,
                    dcmorph_device=args.dcmorph_device, clip_checkpoint=args.clip_checkpoint,
                    clip_model=args.clip_model, clip_epochs=args.clip_epochs, clip_device=args.clip_device,
                    yolo_weights=args.yolo_weights, rembg_models=args.rembg_models, workers=args.workers,
                    progress=not args.no_progress, force=args.force)
    validate_options(o)
    return o


def validate_options(o: DemoOptions) -> None:
    """Checks that need no heavy import: the real-weight options name existing files, come in
    complete groups, and the output folder is usable."""
    from madpad.cli import check_output_dir

    check_output_dir(o.out, option="--out")  # a file, a path under a file, or a read-only folder
    dc = {"--dcmorph-base-model": o.dcmorph_base_model, "--dcmorph-ip-adapter": o.dcmorph_ip_adapter,
          "--dcmorph-face-encoder": o.dcmorph_face_encoder}
    given = [k for k, v in dc.items() if v]
    if given and len(given) < 3:
        missing = [k for k in dc if k not in given]
        raise UsageError(f"{given[0]} adds the DCMorph attack family, which also needs {' and '.join(missing)} "
                         "(base model, IP-Adapter FaceID checkpoint and a 512-D ArcFace face encoder)")
    if given:
        if _looks_like_path(o.dcmorph_base_model) and not Path(o.dcmorph_base_model).expanduser().exists():
            raise UsageError(f"--dcmorph-base-model: {o.dcmorph_base_model} not found (a diffusers folder or a "
                             ".safetensors file; nothing is downloaded)")
        if not Path(o.dcmorph_ip_adapter).expanduser().is_file():
            raise UsageError(f"--dcmorph-ip-adapter: file not found: {o.dcmorph_ip_adapter}")
        _check_component_files(o.dcmorph_face_encoder, option="--dcmorph-face-encoder")
    if o.clip_checkpoint:
        p = Path(o.clip_checkpoint).expanduser()
        if not p.exists():
            raise UsageError(f"--clip-checkpoint: not found: {o.clip_checkpoint} (an open_clip checkpoint file or "
                             "a folder written by 'python -m madpad.detect train')")
        if p.is_dir() and not (p / "detector.json").is_file():
            raise UsageError(f"--clip-checkpoint: folder {p} has no detector.json (expected a detector saved by "
                             "'python -m madpad.detect train'; give an open_clip checkpoint file to fine-tune)")
    if o.yolo_weights and not Path(o.yolo_weights).expanduser().is_file():
        raise UsageError(f"--yolo-weights: file not found: {o.yolo_weights} (an ultralytics .pt checkpoint)")
    if o.rembg_models and not Path(o.rembg_models).expanduser().is_dir():
        raise UsageError(f"--rembg-models: folder not found: {o.rembg_models}")


def _check_component_files(spec: str, *, option: str) -> None:
    """``NAME:model_path=FILE,...`` -> every ``*path*``/``*file*`` value must exist."""
    _, params = parse_component_spec(spec, what=option)
    for k, v in params.items():
        if ("path" in k or "file" in k) and not Path(str(v)).expanduser().exists():
            raise UsageError(f"{option}: {k}={v}: file not found")




# =========================================================================== options -> pipeline params
def rembg_dir(o: DemoOptions) -> str | None:
    """The rembg model folder: ``--rembg-models``, else ``$U2NET_HOME``, else None."""
    from madpad.io import env_path

    if o.rembg_models:
        return str(Path(o.rembg_models).expanduser().resolve())
    env = env_path("U2NET_HOME")
    return str(env) if env else None


def _resolved(value: str | None) -> str | None:
    if not value:
        return None
    p = Path(value).expanduser()
    return str(p.resolve()) if p.exists() else value


def dcmorph_params(o: DemoOptions) -> dict | None:
    """Options of the DCMorph generator built from ``--dcmorph-*`` (``madpad.morph.dcmorph``;
    everything else keeps the reference defaults); None without ``--dcmorph-base-model``."""
    if not o.dcmorph_base_model:
        return None
    return {"base_model": _resolved(o.dcmorph_base_model), "ip_adapter": _resolved(o.dcmorph_ip_adapter),
            "face_encoder": o.dcmorph_face_encoder, "steps": o.dcmorph_steps, "device": o.dcmorph_device}


def clip_params(o: DemoOptions) -> dict | None:
    """The foundation D-MAD detector's settings from ``--clip-*``; None without ``--clip-checkpoint``."""
    if not o.clip_checkpoint:
        return None
    return {"checkpoint": _resolved(o.clip_checkpoint), "model": o.clip_model, "epochs": o.clip_epochs,
            "device": o.clip_device}


def pipeline_params(o: DemoOptions, data: DemoData | None = None) -> dict:
    """The params of ``pipelines/demo.yaml`` for these options (and the data they name, which
    also feeds the segmentation study's ``seg_root``/``seg_manifest``)."""
    from madpad.pipeline.stages.demo.segmentation import demo_segmenters

    rembg = rembg_dir(o)
    params = {
        "data": o.data if o.data in ("sample", "frll") else str(Path(o.data).expanduser().resolve()),
        "root": None, "seed": o.seed, "pairs": o.pairs, "dcmorph": dcmorph_params(o),
        "live_variants": o.live_variants, "clip": clip_params(o), "bootstrap": o.n_bootstrap,
        "tshirt_wearers": o.tshirt_wearers, "yolo_weights": _resolved(o.yolo_weights),
        "seg_subjects": o.seg_subjects, "segmenters": demo_segmenters(rembg)[0], "rembg_dir": rembg or "",
    }
    if data is not None:
        params["root"] = None if data.source in ("sample", "folder") or data.root is None else str(data.root)
        params["seg_root"] = str(data.root)
        params["seg_manifest"] = str(data.manifest) if data.source in ("sample", "manifest") and data.manifest else ""
    elif o.root is not None:
        params["root"] = str(Path(o.root).expanduser().resolve())
    return params


def pipeline_file(name: str = PIPELINE) -> Path | None:
    """``pipelines/<name>.yaml`` of the source tree madpad runs from, else the copy a wheel
    installs under ``<prefix>/share/madpad/pipelines`` (a virtual environment or the system) or
    ``<user base>/share/madpad/pipelines`` (``pip install --user``); None when none exists."""
    import site

    places = [Path(__file__).resolve().parents[1] / "pipelines", Path(sys.prefix) / "share" / "madpad" / "pipelines"]
    with contextlib.suppress(Exception):  # site.getuserbase can fail in embedded interpreters
        places.append(Path(site.getuserbase()) / "share" / "madpad" / "pipelines")
    for folder in places:
        p = folder / f"{name}.yaml"
        if p.is_file():
            return p
    return None


def load_demo_pipeline(o: DemoOptions, data: DemoData | None = None):
    """``pipelines/demo.yaml`` with the params of these options and ``--out`` as its workdir."""
    from madpad.cli import check_keys, load_yaml
    from madpad.pipeline import pipeline_from_dict

    path = pipeline_file()
    if path is None:
        raise UsageError(f"pipelines/{PIPELINE}.yaml not found in the source tree, {sys.prefix}/share/madpad/pipelines "
                         "or <user base>/share/madpad/pipelines (reinstall madpad, or run from a source checkout)")
    raw = load_yaml(path)
    params = pipeline_params(o, data)
    check_keys(params, raw.get("params") or {}, where=f"{path}: params")
    raw = {**raw, "params": {**(raw.get("params") or {}), **params}}
    return pipeline_from_dict(raw, path=path, workdir=o.out)


def command_line(o: DemoOptions) -> str:
    """The demo command that reproduces a run (shown in the report)."""
    parts = [PROG, f"--out {o.out}"]
    if o.data != "sample":
        parts.append(f"--data {o.data}")
    if o.root:
        parts.append(f"--root {o.root}")
    if o.pairs != 24:
        parts.append(f"--pairs {o.pairs}")
    if tuple(o.steps) != STEPS:
        parts.append(f"--steps {','.join(o.steps)}")
    if o.seed:
        parts.append(f"--seed {o.seed}")
    for flag, val in (("--dcmorph-base-model", o.dcmorph_base_model), ("--dcmorph-ip-adapter", o.dcmorph_ip_adapter),
                      ("--dcmorph-face-encoder", o.dcmorph_face_encoder), ("--clip-checkpoint", o.clip_checkpoint),
                      ("--yolo-weights", o.yolo_weights), ("--rembg-models", o.rembg_models)):
        if val:
            parts.append(f"{flag} {val}")
    if o.clip_checkpoint:
        parts.append(f"--clip-model {o.clip_model}")
    return " ".join(parts)


# =========================================================================== driver
@dataclass
class DemoResult:
    report_html: Path
    report_json: Path
    steps: dict                 # step -> {"status": ok | skipped | failed | not run, "reason"/"error": ...}
    seconds: float

    @property
    def failed(self) -> list[str]:
        return [k for k, r in self.steps.items() if r.get("status") == "failed"]


class _Runs:
    """Runs groups of the demo pipeline's stages (one ``run_pipeline`` call per step, so the
    numbered step lines come between them) and keeps every stage's result for the run summary."""

    def __init__(self, spec, opts: DemoOptions):
        from madpad.pipeline.runner import HashMemo

        self.spec = spec
        self.opts = opts
        self.results: list = []
        self.memo = HashMemo(spec.workdir / ".madpad" / "hashes.json")

    def sub(self, names: Sequence[str], replace: dict | None = None):
        return dataclasses.replace(self.spec, stages={n: (replace or {}).get(n, self.spec.stages[n]) for n in names})

    def run(self, names: Sequence[str], *, force: bool = False, replace: dict | None = None):
        from madpad.pipeline import run_pipeline

        quiet = len(names) == 1 or not self.opts.progress
        summary = run_pipeline(self.sub(names, replace), executor="local", workers=self.opts.workers, force=force,
                               progress=self.opts.progress, quiet=quiet)
        self.results += summary.stages
        return summary

    def up_to_date(self, names: Sequence[str]) -> bool:
        """Every stage of ``names`` finished with the inputs, params and code it would have now."""
        from madpad.pipeline.runner import (
            StageFailed,
            import_stage_fn,
            read_record,
            stage_fingerprint,
            stale_reasons,
        )

        for name in names:
            st = self.spec.stages[name]
            try:
                fp = stage_fingerprint(st, import_stage_fn(st), self.memo)
            except StageFailed:
                return False
            final = self.spec.stage_dir(name)
            if stale_reasons(read_record(final), fp, st, final):
                return False
        return True

    def write_summary(self, seconds: float, started_at: str) -> None:
        from madpad.io import atomic_write_json
        from madpad.pipeline import RunSummary

        s = RunSummary(pipeline=self.spec.name, workdir=self.spec.workdir, executor="local", stages=self.results,
                       seconds=seconds, started_at=started_at)
        atomic_write_json(self.spec.workdir / "run_summary.json", s.as_dict())


@contextlib.contextmanager
def _one_demo_at_a_time(out: Path):
    """One demo run per ``--out`` at a time (POSIX advisory lock, released when the process ends)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    lock = out / ".madpad" / "demo.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UsageError(f"another demo run is using {out}; wait for it to finish or choose another --out") from None
        yield


def run_demo(opts: DemoOptions, *, echo: Callable[[str], None] | None = None) -> DemoResult:
    """Run the stages of the selected steps of ``pipelines/demo.yaml`` (reusing finished ones),
    then the report stage; copies ``report.html`` and ``report.json`` to the top of ``--out``."""
    import datetime as _dt

    def _echo(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    echo = echo or _echo
    t_start = time.perf_counter()
    started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    data = load_data(opts.data, opts.root)
    if "generate" in opts.steps:
        from madpad.pipeline.stages.demo.generate import select_pairs

        select_pairs(data, n_pairs=opts.pairs, seed=opts.seed)  # too few subjects: exit 2 before any work
    spec = load_demo_pipeline(opts, data)
    out = Path(spec.workdir)
    out.mkdir(parents=True, exist_ok=True)
    with _one_demo_at_a_time(out):
        echo(f"madpad demo: {data.description}, {len(data.subjects)} subjects -> {opts.out}")
        for n in data.notes:
            echo(f"  note: {n}")
        runs = _Runs(spec, opts)
        try:
            return _run_steps(runs, opts, echo, t_start)
        finally:
            runs.write_summary(time.perf_counter() - t_start, started_at)


def _run_steps(runs: _Runs, opts: DemoOptions, echo: Callable[[str], None], t_start: float) -> DemoResult:
    from madpad.io import atomic_write_bytes
    from madpad.pipeline import StageFailed

    out = Path(runs.spec.workdir)
    # the data stage reads the image files every run (quick); unchanged data -> identical outputs,
    # so the later stages still find their cache keys
    data_run = runs.run([DATA_STAGE], force=True)
    if not data_run.ok:
        if data_run.bad_input:  # a bad manifest / option: the CLI's one-line error and exit 2
            raise UsageError(f"the data stage failed: {data_run.stages[0].error}")
        raise StageFailed(f"the data stage failed: {data_run.stages[0].error} (log: {data_run.stages[0].log})")
    for name, dep in NEEDS.items():
        if name in opts.steps and dep not in opts.steps and not runs.up_to_date(STEP_STAGES[dep]):
            raise UsageError(f"step {name!r} needs the morphs of step {dep!r}, which are not in {opts.out} for these "
                             f"options: add {dep} to --steps")
    this_run: dict[str, dict] = {}   # steps of this run without a status file to read (failed, blocked)
    current: set[str] = set()        # steps whose status.json matches this run's data and options
    n = len(opts.steps)
    for i, name in enumerate(opts.steps, start=1):
        echo(f"[{i}/{n}] {name}: {STEP_TITLES[name]}")
        dep = NEEDS.get(name)
        if dep in this_run:
            this_run[name] = {"status": "skipped", "reason": f"needs the outputs of step {dep!r}, which failed"}
            echo(f"      skipped: {this_run[name]['reason']}")
            continue
        t0 = time.perf_counter()
        summary = runs.run(STEP_STAGES[name], force=opts.force)
        bad = [s for s in summary.stages if s.status not in ("ran", "skipped")]
        if bad:
            s = bad[0]
            error = (s.error or s.reason or s.status).strip().splitlines()[0]
            log = os.path.relpath(s.log, out) if s.log else ""
            this_run[name] = {"status": "failed", "error": error, "log": log, "bad_input": bool(s.bad_input),
                              "seconds": round(time.perf_counter() - t0, 1)}
            echo(f"      FAILED: {error}" + (f" (details in {out / log})" if log else ""))
            continue
        current.add(name)
        status = read_status(out / name / STATUS_NAME) or {}
        if all(s.status == "skipped" for s in summary.stages):
            echo(f"      done before, reusing {out / name}"
                 + (f" (skipped: {status.get('reason')})" if status.get("status") == "skipped" else ""))
        elif status.get("status") == "ok":
            echo(f"      done in {time.perf_counter() - t0:.1f} s")
    # steps not selected this time: shown when their finished outputs match the data and options
    current |= {name for name in STEPS if name not in opts.steps and runs.up_to_date(STEP_STAGES[name])}
    echo(f"[report] writing {out / 'report.html'}")
    st = runs.spec.stages[REPORT_STAGE]
    run_info = {"options": opts.as_dict(), "command": command_line(opts),
                "seconds": round(time.perf_counter() - t_start, 1), "steps": this_run}
    report = dataclasses.replace(st, inputs={k: v for k, v in st.inputs.items() if k not in STEPS or k in current},
                                 input_refs={k: v for k, v in st.input_refs.items() if k not in STEPS or k in current},
                                 params={**st.params, "run": run_info})
    summary = runs.run([REPORT_STAGE], replace={REPORT_STAGE: report})
    if not summary.ok:
        s = summary.stages[0]
        raise StageFailed(f"the report could not be written: {s.error} (log: {s.log})")
    paths = []
    for name in ("report.html", "report.json"):
        src = runs.spec.output_path(REPORT_STAGE, "html" if name.endswith("html") else "json")
        paths.append(atomic_write_bytes(out / name, src.read_bytes()))
    steps = {}
    for name in STEPS:
        if name in this_run:
            steps[name] = this_run[name]
        elif name in current:
            steps[name] = {k: v for k, v in (read_status(out / name / STATUS_NAME) or {}).items() if k != "result"}
        else:
            steps[name] = {"status": "not run"}
    return DemoResult(Path(paths[0]), Path(paths[1]), steps, time.perf_counter() - t_start)


def _quiet_native_logs(verbose: int) -> None:
    """Keep the terminal readable: hide protobuf's deprecation warning that MediaPipe triggers
    on every model load, unless ``-v``. Called from :func:`main` only (never at import).
    (MediaPipe's own C++ absl lines cannot be silenced from Python and still appear.)"""
    if verbose:
        return
    import warnings

    warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated")


def main(argv: Sequence[str] | None = None) -> int:
    from madpad.cli import run_main, setup_logging
    from madpad.pipeline import StageFailed

    args = build_parser().parse_args(list(argv) if argv is not None else None)

    def body() -> int:
        setup_logging(args.verbose)
        _quiet_native_logs(args.verbose)
        opts = options_from_args(args)
        try:
            res = run_demo(opts)
        except StageFailed as exc:  # the data or report stage (a step's failure is in the report)
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 1
        for name in res.failed:
            print(f"{PROG}: step {name} failed: {res.steps[name].get('error', '')}", file=sys.stderr)
        print(f"finished in {res.seconds:.0f} s; report: {res.report_html.resolve()}", file=sys.stderr)
        print(str(res.report_html.resolve()))
        if any(res.steps[name].get("bad_input") for name in res.failed):
            return 2  # a step failed on bad input (a manifest or option), not on its own
        return 1 if res.failed else 0

    return run_main(body, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())

"""``python -m madpad.demo``: the main jobs of madpad end to end on the bundled FRLL sample.

::

    python -m madpad.demo [--out madpad-demo] [--data sample|frll|MANIFEST|FOLDER] [--root ROOT]
        [--pairs 24] [--steps generate,vulnerability,detect,tshirt,segmentation] [--seed 0]
        [--dcmorph-base-model M --dcmorph-ip-adapter F --dcmorph-face-encoder SPEC]
        [--clip-checkpoint FILE|DIR --clip-model NAME] [--yolo-weights FILE] [--rembg-models DIR]

Steps (each prints a numbered line and tqdm bars of its parts; ``docs/demo.md``):

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
5. ``segmentation`` - a short background-segmentation study through the pipeline runner
   (``pipelines/segmentation_study.yaml``): MediaPipe selfie, landmark hull, GrabCut, and
   rembg IS-Net when its model file is in ``--rembg-models`` / ``$U2NET_HOME``.

Outputs in ``--out``: one self-contained ``report.html`` (DET curves, tables, thumbnails),
``report.json`` (every figure), and the per-step folders (``morphs/``, ``vulnerability/``,
``detect/``, ``tshirt/``, ``segmentation/``, ``steps/<step>.json``). Rerunning the same
command reuses finished steps (and finished items inside an interrupted step). Scores
everywhere: higher = more likely attack; attack when ``score >= threshold``.

Exit codes: 0 when every selected step ran (per-item failures are listed in the report),
1 when a step failed (the report says which and why), 2 for bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from madpad.cli import int_arg, parse_component_spec
from madpad.errors import MadpadError, UsageError

PROG = "python -m madpad.demo"
log = logging.getLogger("madpad.demo")

STEPS = ("generate", "vulnerability", "detect", "tshirt", "segmentation")
STEP_TITLES = {
    "generate": "landmark morphs (full and spliced) of same-gender pairs",
    "vulnerability": "face-recognition vulnerability (dlib): MMPMR, ProdAvg-MMPMR, RMMR",
    "detect": "differential MAD: train and evaluate detectors",
    "tshirt": "synthetic T-shirt attacks and their detection",
    "segmentation": "short background-segmentation study (pipeline runner)",
}
#: which earlier step's outputs a step reads
NEEDS = {"vulnerability": "generate", "detect": "generate"}
LANDMARK_METHODS = ("landmark", "landmark_spliced")
SPLIT_NAMES = ("train", "test")
SPLIT_FRACTIONS = (0.5, 0.5)
FMRS = (0.001, 0.01)
APCER_TARGETS = (0.05, 0.1, 0.2)
#: dlib face finding used by the embedders (portraits: no HOG upsampling needed)
DLIB_EMBEDDER = {"detector": {"name": "dlib_hog", "upsample": 0}}
DEFAULT_OUT = "madpad-demo"
STEP_RECORD_VERSION = 1


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
                    help=f"output folder (default ./{DEFAULT_OUT}); finished steps in it are reused")
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
    ap.add_argument("--force", action="store_true", help="redo the selected steps even when finished outputs exist")
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
                      help="worker processes of the segmentation pipeline (default: the CPU count)")
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
    if o.out.exists() and not o.out.is_dir():
        raise UsageError(f"--out {o.out} exists and is not a folder")
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


# =========================================================================== data
@dataclass
class DemoData:
    """The images the demo works on: one enrolment and one probe image per subject."""

    description: str
    source: str                 # "sample" | "frll" | "manifest" | "folder"
    root: Path | None
    manifest: Path | None       # the manifest the segmentation study reads (None: FRLL folder layout)
    enrolment: list             # ImageRecord, one per subject (sorted by subject)
    probe: list                 # ImageRecord, one per subject (same order)
    is_frll: bool
    notes: list = field(default_factory=list)

    @property
    def subjects(self) -> list[str]:
        return [r.subject for r in self.enrolment]

    def gender(self, subject: str) -> str:
        rec = next(r for r in self.enrolment if r.subject == subject)
        return str((rec.extra or {}).get("gender", "")).strip().lower()

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for r in self.enrolment + self.probe:
            p = Path(r.path)
            size = p.stat().st_size if p.is_file() else -1
            h.update(f"{r.id}|{r.subject}|{p}|{size}\n".encode())
        return h.hexdigest()[:16]


def load_data(data: str, root: Path | None) -> DemoData:
    """Resolve ``--data``/``--root`` into :class:`DemoData` (errors name the file or option)."""
    from madpad.data import load_images

    source, manifest, is_frll = data, None, False
    if data == "sample":
        from madpad.data.sample import (
            sample_manifest,
            sample_manifest_path,
            sample_root,
        )

        if root is not None:
            raise UsageError("--root applies to --data frll or a manifest, not to the bundled sample")
        records = list(sample_manifest())
        root, manifest, is_frll = sample_root(), sample_manifest_path(), True
        desc = "bundled FRLL sample (madpad/sample_data/frll24)"
    elif data == "frll" or (Path(data).expanduser().is_dir()):
        from madpad.data.frll import frll_images
        from madpad.io import env_path

        if data == "frll":
            if root is None:
                shared = env_path("MADPAD_SHARED")
                if shared is None:
                    raise UsageError("--data frll needs --root FOLDER (FRLL layout: neutral/, smiling/, subjects.csv) "
                                     "or $MADPAD_SHARED (then $MADPAD_SHARED/data/frll is used)")
                root = shared / "data" / "frll"
        else:
            root = Path(data).expanduser()
        if not Path(root).is_dir():
            raise UsageError(f"FRLL folder not found: {root}")
        records = list(frll_images(root))
        source, is_frll = ("frll" if data == "frll" else "folder"), True
        desc = f"FRLL-layout folder {root}"
    else:
        p = Path(data).expanduser()
        if not p.is_file():
            raise UsageError(f"--data {data!r}: not 'sample', 'frll', a folder or an existing manifest file")
        records = list(load_images(p, root=root))
        root = root if root is not None else p.resolve().parent
        source, manifest = "manifest", p.resolve()
        is_frll = any("frll" in str(r.source).lower() for r in records)
        desc = f"image manifest {p}"
    enrol, probe, notes = pick_enrolment_and_probe(records)
    if len(enrol) < 4:
        raise UsageError(f"{desc}: need at least 4 subjects with an enrolment and a probe image (capture "
                         f"'enrolment'/'probe', or two bona fide images); found {len(enrol)}")
    return DemoData(desc, source, Path(root) if root else None, manifest, enrol, probe, is_frll, notes)


def pick_enrolment_and_probe(records) -> tuple[list, list, list]:
    """One enrolment and one probe image per subject: captures ``enrolment``/``probe`` when
    present, else the first two bona fide images of the subject in id order. Subjects with a
    single image are left out (and noted)."""
    by_subject: dict[str, list] = {}
    for r in records:
        if r.label != "bona_fide" or len(r.subjects) != 1:
            continue
        by_subject.setdefault(r.subject, []).append(r)
    enrol, probe, dropped = [], [], []
    for subj in sorted(by_subject):
        recs = sorted(by_subject[subj], key=lambda r: r.id)
        e = next((r for r in recs if r.capture == "enrolment"), None)
        pr = next((r for r in recs if r.capture == "probe"), None)
        if e is None or pr is None:
            rest = [r for r in recs if r is not e and r is not pr]
            e = e or (rest.pop(0) if rest else None)
            pr = pr or (rest.pop(0) if rest else None)
        if e is None or pr is None:
            dropped.append(subj)
            continue
        enrol.append(e)
        probe.append(pr)
    notes = []
    if dropped:
        notes.append(f"{len(dropped)} subject(s) with a single image left out (e.g. {', '.join(dropped[:5])})")
    return enrol, probe, notes


# =========================================================================== run context
class StepSkipped(Exception):
    """Raised inside a step that cannot run for a reason that is not an error (named in the report)."""


@dataclass
class DemoContext:
    opts: DemoOptions
    data: DemoData
    out: Path
    progress: bool
    echo: Callable[[str], None]

    def step_dir(self, name: str) -> Path:
        d = self.out / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def cache_dir(self) -> Path:
        return self.out / "cache"

    def morph_methods(self) -> list[str]:
        return list(LANDMARK_METHODS) + (["dcmorph"] if self.opts.dcmorph_base_model else [])

    def splits(self) -> dict[str, set]:
        """The subject-disjoint train/test split shared by pair selection and the D-MAD pairs
        (``build_dmad_pairs`` makes the same call, so no morph straddles the split)."""
        from madpad.data import split_by_subject

        return split_by_subject(self.data.subjects, fractions=SPLIT_FRACTIONS, seed=self.opts.seed, names=SPLIT_NAMES)


def step_config(ctx: DemoContext, name: str) -> dict:
    """What a step's outputs depend on; a finished step with the same config is reused."""
    o = ctx.opts
    base = {"version": STEP_RECORD_VERSION, "data": ctx.data.fingerprint(), "seed": o.seed}
    morph = {"pairs": o.pairs, "methods": ctx.morph_methods(),
             "dcmorph": [o.dcmorph_base_model, o.dcmorph_ip_adapter, o.dcmorph_face_encoder, o.dcmorph_steps]
             if o.dcmorph_base_model else None}
    if name == "generate":
        return {**base, **morph}
    if name == "vulnerability":
        return {**base, **morph, "fmrs": list(FMRS)}
    if name == "detect":
        return {**base, **morph, "live_variants": o.live_variants, "bootstrap": o.n_bootstrap,
                "clip": [o.clip_checkpoint, o.clip_model, o.clip_epochs] if o.clip_checkpoint else None}
    if name == "tshirt":
        return {**base, "wearers": o.tshirt_wearers, "bootstrap": o.n_bootstrap, "yolo": o.yolo_weights}
    if name == "segmentation":
        return {**base, "subjects": o.seg_subjects, "rembg": _rembg_dir(o)}
    raise KeyError(name)


def _rembg_dir(o: DemoOptions) -> str | None:
    from madpad.io import env_path

    if o.rembg_models:
        return str(Path(o.rembg_models).expanduser().resolve())
    env = env_path("U2NET_HOME")
    return str(env) if env else None


def _record_path(out: Path, name: str) -> Path:
    return out / "steps" / f"{name}.json"


def read_record(out: Path, name: str) -> dict | None:
    p = _record_path(out, name)
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _write_record(out: Path, name: str, record: dict) -> None:
    from madpad.io import atomic_write_json
    from madpad.report.pad import clean_json

    p = _record_path(out, name)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(p, clean_json(record))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


# =========================================================================== step 1: generate
def step_generate(ctx: DemoContext) -> dict:
    from madpad.morph.batch import requests_from_pairs, run_morph_job, write_pairs_csv

    o = ctx.opts
    out = ctx.step_dir("morphs")
    pairs, notes = select_pairs(ctx)
    requests = requests_from_pairs(pairs)
    write_pairs_csv(out / "pairs.csv", requests)
    split_of = {s: n for n, ss in ctx.splits().items() for s in ss}
    methods = {}
    for method in ctx.morph_methods():
        gen = _morph_generator(ctx, method)
        ctx.echo(f"      {method}: {len(requests)} morph(s) -> {out / method}")
        job = run_morph_job(requests, gen, out / method, method=method, seed=o.seed, fmt="jpg", quality=95,
                            progress=ctx.progress)
        methods[method] = {"requested": job.total, "made": job.made, "reused": job.skipped, "failed": job.failed,
                           "failures": [{"id": i, "error": e} for i, e in job.failures[:20]],
                           "manifest": str(job.manifest.relative_to(ctx.out)), "seconds": round(job.seconds, 1)}
    return {"pairs": len(requests), "pairs_csv": str((out / "pairs.csv").relative_to(ctx.out)),
            "pairs_per_split": {n: sum(split_of[r.subject_a] == n for r in requests) for n in SPLIT_NAMES},
            "methods": methods, "notes": notes}


def select_pairs(ctx: DemoContext) -> tuple[list, list]:
    """Same-gender pairs of enrolment images, chosen inside each split (train/test) so that every
    morph's contributors stay on one side of the subject-disjoint split. Without gender
    information, random pairs."""
    from madpad.morph.pairs import random_pairs, same_gender_pairs

    o = ctx.opts
    splits = ctx.splits()
    notes = []
    have_gender = all(ctx.data.gender(s) for s in ctx.data.subjects)
    if not have_gender:
        notes.append("no gender for every subject: pairs are random (not same-gender)")
    n_train = (o.pairs + 1) // 2
    wanted = {"train": n_train, "test": o.pairs - n_train}
    pairs = []
    for k, name in enumerate(SPLIT_NAMES):
        recs = [r for r in ctx.data.enrolment if r.subject in splits[name]]
        if wanted[name] == 0 or len(recs) < 2:
            continue
        fn = same_gender_pairs if have_gender else random_pairs
        got = fn(recs, n_pairs=wanted[name], seed=o.seed + k)
        if len(got) < wanted[name]:
            notes.append(f"{name} split: only {len(got)} of {wanted[name]} pairs possible "
                         f"({len(recs)} subjects, one pair per subject pair)")
        pairs += got
    if not pairs:
        raise UsageError("no morph pairs could be formed (too few subjects of the same gender in a split)")
    return pairs, notes


def dcmorph_params(o: DemoOptions) -> dict:
    """Options of the DCMorph generator built from ``--dcmorph-*`` (``madpad.morph.dcmorph``;
    everything else keeps the reference defaults)."""
    def path(v: str) -> str:
        p = Path(v).expanduser()
        return str(p.resolve()) if p.exists() else v

    return {"base_model": path(o.dcmorph_base_model), "ip_adapter": path(o.dcmorph_ip_adapter),
            "face_encoder": o.dcmorph_face_encoder, "steps": o.dcmorph_steps, "device": o.dcmorph_device}


def _morph_generator(ctx: DemoContext, method: str):
    from madpad.morph import get_morph_method

    if method == "dcmorph":
        return get_morph_method("dcmorph", **dcmorph_params(ctx.opts))
    return get_morph_method(method)


def _load_morph_manifests(ctx: DemoContext) -> dict:
    """method -> MorphRecords (from the generate step's folders)."""
    from madpad.data import load_morphs

    out = {}
    for method in ctx.morph_methods():
        f = ctx.out / "morphs" / method / "manifest.csv"
        if not f.is_file():
            raise StepSkipped(f"needs the generate step's morphs ({f} is missing): add 'generate' to --steps")
        out[method] = list(load_morphs(f))
    return out


# =========================================================================== step 2: vulnerability
def step_vulnerability(ctx: DemoContext) -> dict:
    from madpad.face import EmbeddingCache, get_embedder
    from madpad.report.pad import clean_json
    from madpad.report.scores import read_comparison_scores
    from madpad.report.vulnerability import vulnerability_report
    from madpad.vulnerability import compute_comparisons, write_comparisons

    out = ctx.step_dir("vulnerability")
    morphs = _load_morph_manifests(ctx)
    cache = EmbeddingCache(ctx.cache_dir / "embeddings")
    emb = get_embedder("dlib", **DLIB_EMBEDDER)
    methods = {}
    for method, recs in morphs.items():
        ok = [m for m in recs if m.ok]
        if not ok:
            methods[method] = {"status": "skipped", "reason": "no morph of this method was made"}
            continue
        res = compute_comparisons(morphs=ok, probes=ctx.data.probe, references=ctx.data.enrolment, systems=["dlib"],
                                  cache=cache, progress=ctx.progress, embedders={"dlib": emb})
        csv_path, fail_path = write_comparisons(out / f"comparisons_{method}.csv", res)
        rep = clean_json(vulnerability_report(read_comparison_scores(csv_path), fmrs=FMRS,
                                              title=f"Morphing vulnerability: {method}"))
        sysrep = rep["systems"]["dlib"]
        methods[method] = {
            "status": "ok", "comparisons": str(csv_path.relative_to(ctx.out)),
            "failures_csv": None if fail_path is None else str(fail_path.relative_to(ctx.out)),
            "n_morphs": sysrep["n_morphs"], "n_genuine": sysrep["n_genuine"], "n_impostor": sysrep["n_impostor"],
            "eer": sysrep["eer"], "at_fmr": {k: {kk: v[kk] for kk in ("threshold", "fmr", "fnmr", "tmr", "mmpmr",
                                                                     "prodavg_mmpmr", "rmmr", "fmr_resolvable")}
                                             for k, v in sysrep["at_fmr"].items()},
            "embedding_failures": len(res.failures), "notes": rep.get("notes", []),
        }
    return {"system": "dlib (ResNet, 128-D)", "fmr_targets": list(FMRS), "methods": methods}


# =========================================================================== step 3: detect
def step_detect(ctx: DemoContext) -> dict:
    from madpad.mad.cache import FeatureCache
    from madpad.mad.pairs import BuildConfig, build_dmad_pairs, read_pairs_csv

    o = ctx.opts
    out = ctx.step_dir("detect")
    morphs = [m for recs in _load_morph_manifests(ctx).values() for m in recs]
    # the enrolment/probe choice of load_data (captures set explicitly: a manifest may have none)
    images = ([dataclasses.replace(r, capture="enrolment") for r in ctx.data.enrolment]
              + [dataclasses.replace(r, capture="probe") for r in ctx.data.probe])
    cfg = BuildConfig(fractions=SPLIT_FRACTIONS, split_names=SPLIT_NAMES, seed=o.seed, live_variants=o.live_variants)
    ctx.echo(f"      building D-MAD pairs (suspect images, {o.live_variants} simulated live capture(s) per subject)")
    built = build_dmad_pairs(images, morphs, out / "pairs", config=cfg, progress=ctx.progress)
    train = read_pairs_csv(built.files["train"], require_labels=True)
    test = read_pairs_csv(built.files["test"], require_labels=True)
    for name, ps in (("train", train), ("test", test)):
        n_att = sum(p.label == "attack" for p in ps)
        if n_att == 0 or n_att == len(ps):
            raise StepSkipped(f"the {name} split has {len(ps) - n_att} bona fide and {n_att} attack pairs; both "
                              "are needed (raise --pairs)")
    cache = FeatureCache(ctx.cache_dir / "mad-features")
    detectors = mad_detectors(ctx)
    results, score_files = {}, {}
    for label, (name, params, trained_dir) in detectors.items():
        ctx.echo(f"      detector {label}")
        try:
            det, fit_s = _fit_detector(ctx, name, params, trained_dir, train, cache, out / label)
            scores, status, errors = _score(det, test, cache)
        except (MadpadError, ImportError) as exc:
            results[label] = {"status": "failed", "error": _first_line(exc)}
            continue
        from madpad.mad.pairs import write_scores_csv

        f = write_scores_csv(out / label / "scores_test.csv", test, scores, status=status, errors=errors)
        score_files[label] = f
        rep = _pad_report(scores, test, status, n_bootstrap=o.n_bootstrap, seed=o.seed,
                          title=f"D-MAD {label} (test subjects)")
        from madpad.io import atomic_write_json

        atomic_write_json(out / label / "pad_report.json", rep)
        results[label] = {"status": "ok", "detector": name, "train_seconds": round(fit_s, 1),
                          "scores": str(f.relative_to(ctx.out)), "report": str((out / label / "pad_report.json")
                                                                               .relative_to(ctx.out)),
                          **_pad_summary(rep)}
    return {"counts": built.counts, "dropped_morphs": built.dropped_morphs, "pair_failures": len(built.failures),
            "pairs_dir": str((out / "pairs").relative_to(ctx.out)), "detectors": results,
            "live_capture": "simulated: crop, scale, rotation, colour, blur, noise and JPEG of the probe (smiling) "
                            "image, seeded (madpad.mad.pairs.vary_live_capture)"}


def mad_detectors(ctx: DemoContext) -> dict:
    """label -> (registry name, params, saved detector dir or None)."""
    o = ctx.opts
    emb = {"embedder": "dlib", "embedder_params": DLIB_EMBEDDER, "progress": ctx.progress}
    dets = {
        "dlib_distance": ("embedding_distance", dict(emb), None),
        "dlib_diff_logreg": ("embedding_logreg", {**emb, "features": ["diff"], "classifier": "logreg"}, None),
        "dlib_diff_svm": ("embedding_svm", {**emb, "features": ["diff"], "classifier": "rbf_svm"}, None),
    }
    if o.clip_checkpoint:
        p = Path(o.clip_checkpoint).expanduser()
        if p.is_dir():
            dets["foundation"] = ("foundation", {}, p)
        else:
            params = foundation_params(ctx, p)
            dets["foundation"] = ("foundation", params, None)
    return dets


def foundation_params(ctx: DemoContext, checkpoint: Path) -> dict:
    """The shipped DifFoundMAD-style config with the user's checkpoint and architecture."""
    import yaml

    from madpad.mad.foundation import shipped_model_configs

    cfg_file = Path(__file__).resolve().parent / "configs" / "detect" / "foundation_lora.yaml"
    params = dict(yaml.safe_load(cfg_file.read_text(encoding="utf-8"))["params"])
    o = ctx.opts
    params.update(backbone=o.clip_model, pretrained=str(checkpoint.resolve()), epochs=o.clip_epochs,
                  device=o.clip_device, seed=o.seed, progress=ctx.progress,
                  checkpoint_dir=str(ctx.out / "detect" / "foundation" / "_train_state"))
    if o.clip_model in shipped_model_configs():
        params["model_config"] = o.clip_model
    return params


def _fit_detector(ctx, name, params, trained_dir, train, cache, out_dir: Path):
    import inspect

    from madpad.mad import get_detector, load_detector

    t0 = time.perf_counter()
    if trained_dir is not None:
        return load_detector(trained_dir), 0.0
    det = get_detector(name, **params)
    kwargs = {"cache": cache} if "cache" in inspect.signature(det.fit).parameters else {}
    det.fit(train, **kwargs)
    det.save(out_dir)
    return det, time.perf_counter() - t0


def _score(det, pairs, cache):
    if hasattr(det, "score_pairs"):
        r = det.score_pairs(pairs, cache=cache)
        return np.asarray(r.scores, dtype=np.float64), list(r.status), list(r.error)
    s = np.asarray(det.score(pairs), dtype=np.float64)
    return s, ["ok" if np.isfinite(v) else "failed" for v in s], ["" for _ in s]


def _pad_report(scores, items, status, *, n_bootstrap: int, seed: int, title: str, subjects=None) -> dict:
    """ISO/IEC 30107-3 report of the items that got a score (failed items are counted apart)."""
    from madpad.report.pad import clean_json, pad_report

    scores = np.asarray(scores, dtype=np.float64)
    ok = np.array([st == "ok" for st in status]) & np.isfinite(scores)
    def get(p, k):
        return p.get(k) if isinstance(p, dict) else getattr(p, k, None)

    labels = [get(p, "label") for p in items]
    species = [get(p, "species") or "" for p in items]
    ids = [get(p, "id") for p in items]
    if subjects is None:
        subjects = [(p.extra or {}).get("live_subject") or ";".join(p.subjects) for p in items]
    sel = np.flatnonzero(ok)
    rep = pad_report(scores[sel], [labels[i] for i in sel],
                     [species[i] if labels[i] == "attack" else "" for i in sel], ids=[ids[i] for i in sel],
                     subjects=[subjects[i] for i in sel], targets=APCER_TARGETS, n_bootstrap=n_bootstrap, seed=seed,
                     title=title)
    rep["n_failed"] = int((~ok).sum())
    rep["n_failed_by_label"] = {lab: int(sum(1 for i in np.flatnonzero(~ok) if labels[i] == lab))
                                for lab in ("bona_fide", "attack")}
    return clean_json(rep)


def _pad_summary(rep: dict) -> dict:
    return {"n_bona_fide": rep["n_bona_fide"], "n_attack": rep["n_attack"], "n_failed": rep.get("n_failed", 0),
            "species": rep["species"], "d_eer": rep["d_eer"], "d_eer_ci": rep.get("d_eer_ci"),
            "d_eer_per_species": rep["d_eer_per_species"],
            "bpcer_at_apcer": {k: v["bpcer"] for k, v in rep["bpcer_at_apcer"].items()},
            "apcer_at_bpcer": {k: v["apcer"] for k, v in rep["apcer_at_bpcer"].items()}}


# =========================================================================== step 4: tshirt
def step_tshirt(ctx: DemoContext) -> dict:
    from madpad.io import atomic_write_json, read_image
    from madpad.pad.detector import TshirtDetector
    from madpad.pad.spatial import RuleConfig
    from madpad.pad.synth import SynthConfig

    o = ctx.opts
    out = ctx.step_dir("tshirt")
    synth_dir = out / "synth"
    manifest = _tshirt_synth(ctx, synth_dir)
    import csv

    with open(manifest, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise StepSkipped("the synthetic T-shirt generator made no image (see tshirt/synth/failures.csv)")
    rules = RuleConfig.from_dict({**RuleConfig().to_dict(), "no_face_score": 0.0})
    configs = tshirt_detectors(o)
    results = {}
    from tqdm.auto import tqdm

    for label, (person, face) in configs.items():
        ctx.echo(f"      detector {label} (rules scorer)")
        try:
            pad = TshirtDetector.from_names(person=person, face=face, rules=rules)
        except (MadpadError, ImportError, ValueError) as exc:
            results[label] = {"status": "failed", "error": _first_line(exc)}
            continue
        scores, status, errors, expl = [], [], [], []
        for r in tqdm(rows, desc=f"T-shirt PAD {label}", unit="img", disable=not ctx.progress):
            try:
                res = pad.analyze(read_image(synth_dir / r["path"]))
                scores.append(float(res.score))
                status.append("ok")
                errors.append("")
                expl.append(res.row())
            except (MadpadError, ValueError, RuntimeError, OSError) as exc:
                scores.append(float("nan"))
                status.append("failed")
                errors.append(_first_line(exc))
                expl.append({})
        close = getattr(pad.person_detector, "close", None)
        if close:
            close()
        score_rows = [{"id": r["id"], "score": s, "label": r["label"], "species": r["species"] if
                       r["label"] == "attack" else "", "status": st, "error": e,
                       "n_faces": x.get("n_faces", ""), "n_persons": x.get("n_persons", ""),
                       "fired": x.get("fired", "")} for r, s, st, e, x in zip(rows, scores, status, errors, expl)]
        from madpad.data import write_table

        sf = write_table(out / label / "scores.csv", score_rows,
                         columns=["id", "score", "label", "species", "status", "error", "n_faces", "n_persons",
                                  "fired"])
        rep = _pad_report(scores, rows, status, n_bootstrap=o.n_bootstrap, seed=o.seed,
                          title=f"T-shirt PAD {label}", subjects=[r["subject"] for r in rows])
        atomic_write_json(out / label / "pad_report.json", rep)
        results[label] = {"status": "ok", "person_detector": person.split(":")[0], "face_detector": face,
                          "scores": str(sf.relative_to(ctx.out)),
                          "report": str((out / label / "pad_report.json").relative_to(ctx.out)), **_pad_summary(rep)}
    counts: dict = {}
    for r in rows:
        key = r["species"] if r["label"] == "attack" else f"bona fide ({r['capture']})"
        counts[key] = counts.get(key, 0) + 1
    return {"images": len(rows), "wearers": len({r['subject'] for r in rows}), "counts": counts,
            "synth_manifest": str(manifest.relative_to(ctx.out)), "detectors": results,
            "synth_config": asdict(SynthConfig(seed=o.seed))}


def tshirt_detectors(o: DemoOptions) -> dict:
    """label -> (person detector spec, face detector spec) for :meth:`TshirtDetector.from_names`."""
    configs = {"pose+dlib_hog": ("mediapipe_pose", "dlib_hog")}
    if o.yolo_weights:
        configs["yolo+dlib_hog"] = (f"yolo:weights={Path(o.yolo_weights).expanduser().resolve()}", "dlib_hog")
    return configs


def _tshirt_synth(ctx: DemoContext, synth_dir: Path) -> Path:
    """Generate (or reuse) the synthetic set: wearers = the first N enrolment images (seeded
    choice), printed faces = every other subject's enrolment image."""
    from madpad.pad.synth import (
        Source,
        SynthConfig,
        _read_tem_eyes,
        find_tem,
        generate_set,
    )

    o = ctx.opts
    cfg = SynthConfig(seed=o.seed)
    manifest = synth_dir / "manifest.csv"
    sources = []
    for r in ctx.data.enrolment:
        tem = find_tem(Path(r.path))
        sources.append(Source(path=Path(r.path), subject=r.subject, eyes=_read_tem_eyes(tem) if tem else None))
    rng = np.random.default_rng(o.seed)
    n = min(o.tshirt_wearers, len(sources))
    wearers = [sources[i] for i in sorted(rng.choice(len(sources), size=n, replace=False))]
    key = {"config": asdict(cfg), "wearers": [str(w.path) for w in wearers]}
    key_file = synth_dir / "demo_key.json"
    if manifest.is_file() and key_file.is_file():
        try:
            if json.loads(key_file.read_text(encoding="utf-8")) == json.loads(json.dumps(key, default=str)):
                ctx.echo(f"      reusing the synthetic set in {synth_dir}")
                return manifest
        except (OSError, json.JSONDecodeError):
            pass
    ctx.echo(f"      synthesising T-shirt attacks for {n} wearer(s) -> {synth_dir}")
    manifest = generate_set(wearers=wearers, faces=sources, out_dir=synth_dir, cfg=cfg, progress=ctx.progress)
    from madpad.io import atomic_write_text

    atomic_write_text(key_file, json.dumps(key, default=str, indent=1))
    return manifest


# =========================================================================== step 5: segmentation
def segmentation_pipeline_file() -> Path | None:
    """``pipelines/segmentation_study.yaml`` of the source tree madpad runs from, else the copy a
    wheel installs under ``<prefix>/share/madpad/pipelines``; None when neither exists."""
    import sys

    for p in (Path(__file__).resolve().parents[1] / "pipelines" / "segmentation_study.yaml",
              Path(sys.prefix) / "share" / "madpad" / "pipelines" / "segmentation_study.yaml"):
        if p.is_file():
            return p
    return None


def step_segmentation(ctx: DemoContext) -> dict:
    from madpad.pipeline import load_pipeline, run_pipeline

    o = ctx.opts
    yaml_file = segmentation_pipeline_file()
    if yaml_file is None:
        raise StepSkipped("pipelines/segmentation_study.yaml not found in the source tree or under "
                          "<prefix>/share/madpad/pipelines (reinstall madpad, or run from a source checkout)")
    segmenters = ["mediapipe_selfie", "landmark_hull", "grabcut"]
    notes = []
    rembg_dir = _rembg_dir(o)
    if rembg_dir and (Path(rembg_dir) / "isnet-general-use.onnx").is_file():
        segmenters.append("rembg_isnet")
    else:
        notes.append("rembg IS-Net not used: isnet-general-use.onnx not found in "
                     + (rembg_dir if rembg_dir else "--rembg-models / $U2NET_HOME (neither is set)"))
    root = ctx.data.root
    set_items = [f"params.root={root}", f"params.n_subjects={o.seg_subjects}", f"params.seed={o.seed}",
                 f"params.segmenters=[{', '.join(segmenters)}]", "params.skip_unavailable=true",
                 "params.note=madpad demo: a short run on a few subjects; see docs/segmentation.md for the full study"]
    if ctx.data.source in ("sample", "manifest") and ctx.data.manifest is not None:
        set_items.append(f"params.manifest={ctx.data.manifest}")
    if rembg_dir:
        set_items.append(f"params.model_dir={rembg_dir}")
    workdir = ctx.out / "segmentation"
    spec = load_pipeline(yaml_file, set_items=set_items, workdir=workdir)
    ctx.echo(f"      pipeline {yaml_file.name}: {o.seg_subjects} subjects, segmenters {', '.join(segmenters)} "
             f"-> {workdir}")
    summary = run_pipeline(spec, executor="local", workers=o.workers, progress=ctx.progress, quiet=not ctx.progress,
                           force=o.force)
    stages = {s.stage: {"status": s.status, "seconds": round(s.seconds, 1), "error": s.error} for s in summary.stages}
    if not summary.ok:
        bad = {k: v for k, v in stages.items() if v["status"] not in ("ran", "skipped")}
        raise RuntimeError(f"segmentation pipeline stages did not finish: {bad} (logs in {workdir})")
    stage_out = {name: workdir / name for name in spec.stages}
    study = {}
    sj = stage_out["report"] / "summary.json"
    if sj.is_file():
        study = json.loads(sj.read_text(encoding="utf-8"))
    from madpad.pipeline.stages._common import read_csv

    seg_rows = read_csv(stage_out["segment"] / "segmented.csv")
    rec_rows = read_csv(stage_out["recognition"] / "recognition.csv")
    det_rows = read_csv(stage_out["detection"] / "detection.csv")
    seg_notes = json.loads((stage_out["segment"] / "segment_notes.json").read_text(encoding="utf-8")).get("notes", [])
    per_seg: dict = {}
    for r in seg_rows:
        d = per_seg.setdefault(r["segmenter"], {"ok": 0, "failed": 0, "foreground_share": []})
        d["ok" if r["status"] == "ok" else "failed"] += 1
        if r.get("foreground_share"):
            d["foreground_share"].append(float(r["foreground_share"]))
    for d in per_seg.values():
        fs = d.pop("foreground_share")
        d["mean_foreground_share"] = float(np.mean(fs)) if fs else None
    return {"pipeline": str(yaml_file), "workdir": str(workdir.relative_to(ctx.out)), "segmenters": segmenters,
            "subjects": o.seg_subjects, "stages": stages, "segmenter_counts": per_seg,
            "recognition": rec_rows, "detection": det_rows, "study_summary": study,
            "study_report": str((stage_out["report"] / "report.html").relative_to(ctx.out)),
            "notes": notes + list(seg_notes)}


STEP_FUNCTIONS: dict[str, Callable[[DemoContext], dict]] = {
    "generate": step_generate, "vulnerability": step_vulnerability, "detect": step_detect, "tshirt": step_tshirt,
    "segmentation": step_segmentation,
}


# =========================================================================== driver
@dataclass
class DemoResult:
    report_html: Path
    report_json: Path
    records: dict
    seconds: float

    @property
    def failed(self) -> list[str]:
        return [k for k, r in self.records.items() if r and r.get("status") == "failed"]


def run_demo(opts: DemoOptions, *, echo: Callable[[str], None] | None = None) -> DemoResult:
    """Run the selected steps (reusing finished ones), then write ``report.html`` and ``report.json``."""
    from madpad.report.pad import clean_json

    def _echo(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    echo = echo or _echo
    t_start = time.perf_counter()
    data = load_data(opts.data, opts.root)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(opts=opts, data=data, out=out, progress=opts.progress, echo=echo)
    echo(f"madpad demo: {data.description}, {len(data.subjects)} subjects -> {out}")
    for n in data.notes:
        echo(f"  note: {n}")
    _check_dependencies(ctx)
    records: dict[str, dict | None] = {}
    n = len(opts.steps)
    for i, name in enumerate(opts.steps, start=1):
        cfg = step_config(ctx, name)
        prev = read_record(out, name)
        head = f"[{i}/{n}] {name}: {STEP_TITLES[name]}"
        if prev and prev.get("status") == "ok" and prev.get("config") == json.loads(json.dumps(cfg)) and not opts.force:
            echo(f"{head} -- done before, reusing {_record_path(out, name)}")
            records[name] = prev
            continue
        echo(head)
        t0 = time.perf_counter()
        record: dict[str, Any] = {"step": name, "config": cfg, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        try:
            record["result"] = STEP_FUNCTIONS[name](ctx)
            record["status"] = "ok"
        except StepSkipped as exc:
            record.update(status="skipped", reason=str(exc))
            echo(f"      skipped: {exc}")
        except UsageError:
            raise
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing step is reported; the other steps still run
            record.update(status="failed", error=_first_line(exc), traceback=traceback.format_exc(limit=8))
            echo(f"      FAILED: {_first_line(exc)} (details in {_record_path(out, name)})")
        record["seconds"] = round(time.perf_counter() - t0, 1)
        if record["status"] == "ok":
            echo(f"      done in {record['seconds']:.1f} s")
        _write_record(out, name, record)
        records[name] = read_record(out, name)
    # steps not selected this time: reuse their finished outputs when they match the data and options
    for name in STEPS:
        if name in records:
            continue
        prev = read_record(out, name)
        if prev and prev.get("status") == "ok" and prev.get("config") == json.loads(json.dumps(step_config(ctx, name))):
            records[name] = prev
        else:
            records[name] = None
    total = time.perf_counter() - t_start
    from madpad.demo_report import build_report_json, render_report
    from madpad.io import atomic_write_json, atomic_write_text

    echo(f"[report] writing {out / 'report.html'}")
    doc = clean_json(build_report_json(ctx, records, seconds=total))
    json_path = atomic_write_json(out / "report.json", doc)
    html_path = atomic_write_text(out / "report.html", render_report(ctx, doc))
    return DemoResult(Path(html_path), Path(json_path), records, time.perf_counter() - t_start)


def _check_dependencies(ctx: DemoContext) -> None:
    """A step that reads another step's outputs needs them in ``--out`` or the other step selected."""
    for name, dep in NEEDS.items():
        if name not in ctx.opts.steps or dep in ctx.opts.steps:
            continue
        prev = read_record(ctx.out, dep)
        if not (prev and prev.get("status") == "ok"
                and prev.get("config") == json.loads(json.dumps(step_config(ctx, dep)))):
            raise UsageError(f"step {name!r} needs the morphs of step {dep!r}, which are not in {ctx.out} for these "
                             f"options: add {dep} to --steps")


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

    args = build_parser().parse_args(list(argv) if argv is not None else None)

    def body() -> int:
        setup_logging(args.verbose)
        _quiet_native_logs(args.verbose)
        opts = options_from_args(args)
        res = run_demo(opts)
        for name in res.failed:
            rec = res.records[name] or {}
            print(f"{PROG}: step {name} failed: {rec.get('error', '')}", file=sys.stderr)
        print(f"finished in {res.seconds:.0f} s; report: {res.report_html.resolve()}", file=sys.stderr)
        print(str(res.report_html.resolve()))
        return 1 if res.failed else 0

    return run_main(body, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())

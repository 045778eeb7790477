"""What the demo's stages share: step names and titles, the demo data, status files, PAD figures.

A demo *step* is one stage of ``pipelines/demo.yaml`` (``segmentation`` is the study's stages
``seg_*`` plus a summary stage). Each step stage ends in :func:`run_step`, which writes the
step's ``status.json``::

    {"step": "detect", "status": "ok" | "skipped", "reason": "...", "result": {...},
     "seconds": 12.3, "started": "2025-01-01 12:00:00 UTC"}

A step that cannot run for a reason that is not an error raises :class:`StepSkipped`; the
report shows the reason. Any other exception fails the stage (the runner records it and the
demo command passes the error to the report). Paths inside ``result`` are relative to the run
folder (the pipeline's workdir, the demo's ``--out``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from madpad.errors import UsageError

STEPS = ("generate", "vulnerability", "detect", "tshirt", "segmentation")
STEP_TITLES = {
    "generate": "landmark morphs (full and spliced) of same-gender pairs",
    "vulnerability": "face-recognition vulnerability (every FR system found): MMPMR, ProdAvg-MMPMR, RMMR, MAP",
    "detect": "differential MAD: train and evaluate detectors",
    "tshirt": "synthetic T-shirt attacks and their detection",
    "segmentation": "short background-segmentation study (pipeline stages)",
}
#: which earlier step's outputs a step reads (an input reference in pipelines/demo.yaml)
NEEDS = {"vulnerability": "generate", "detect": "generate"}
#: the stages of pipelines/segmentation_study.yaml, run in the demo as ``seg_<stage>``
SEGMENTATION_STUDY_STAGES = ("images", "faces", "segment", "morphs", "embed", "recognition", "quality", "detection",
                             "report")
#: the pipeline stages of each step, in execution order (the step's status is its last stage's)
STEP_STAGES = {step: (step,) for step in STEPS}
STEP_STAGES["segmentation"] = tuple(f"seg_{s}" for s in SEGMENTATION_STUDY_STAGES) + ("segmentation",)
DATA_STAGE = "data"
REPORT_STAGE = "report"
STATUS_NAME = "status.json"

LANDMARK_METHODS = ("landmark", "landmark_spliced")
SPLIT_NAMES = ("train", "test")
SPLIT_FRACTIONS = (0.5, 0.5)
FMRS = (0.001, 0.01)
APCER_TARGETS = (0.05, 0.1, 0.2)
#: dlib face finding used by the embedders (portraits: no HOG upsampling needed)
DLIB_EMBEDDER = {"detector": {"name": "dlib_hog", "upsample": 0}}


class StepSkipped(Exception):
    """Raised inside a step that cannot run for a reason that is not an error (named in the report)."""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


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

    def splits(self, seed: int) -> dict[str, set]:
        """The subject-disjoint train/test split shared by pair selection and the D-MAD pairs
        (``build_dmad_pairs`` makes the same call, so no morph straddles the split)."""
        from madpad.data import split_by_subject

        return split_by_subject(self.subjects, fractions=SPLIT_FRACTIONS, seed=seed, names=SPLIT_NAMES)

    def info(self) -> dict:
        """The JSON the data stage writes (``data.json``) beside the image table."""
        return {"description": self.description, "source": self.source,
                "root": None if self.root is None else str(self.root),
                "manifest": None if self.manifest is None else str(self.manifest), "is_frll": self.is_frll,
                "notes": list(self.notes), "subjects": self.subjects}

    @classmethod
    def read(cls, images_csv: str | Path, info_json: str | Path) -> DemoData:
        """The data the data stage wrote: ``images.csv`` (capture enrolment/probe, paths relative
        to ``info["root"]``) and ``data.json``."""
        from madpad.data import load_images

        info = json.loads(Path(info_json).read_text(encoding="utf-8"))
        recs = list(load_images(images_csv, root=info["root"]))
        enrol = sorted((r for r in recs if r.capture == "enrolment"), key=lambda r: r.subject)
        probe = sorted((r for r in recs if r.capture == "probe"), key=lambda r: r.subject)
        return cls(info["description"], info["source"], Path(info["root"]) if info["root"] else None,
                   Path(info["manifest"]) if info.get("manifest") else None, enrol, probe, bool(info["is_frll"]),
                   list(info.get("notes") or []))


def load_data(data: str, root: str | Path | None) -> DemoData:
    """Resolve the demo's ``--data``/``--root`` into :class:`DemoData` (errors name the file or option)."""
    from madpad.data import load_images

    root = Path(root) if root not in (None, "") else None
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
    root = Path(root).resolve() if root else None
    return DemoData(desc, source, root, manifest, enrol, probe, is_frll, notes)


def pick_enrolment_and_probe(records) -> tuple[list, list, list]:
    """One enrolment and one probe image per subject: captures ``enrolment``/``probe`` when
    present, else the first two bona fide images of the subject in id order. Subjects with a
    single image are left out (and noted). The records returned carry those captures."""
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
        enrol.append(dataclasses.replace(e, capture="enrolment"))
        probe.append(dataclasses.replace(pr, capture="probe"))
    notes = []
    if dropped:
        notes.append(f"{len(dropped)} subject(s) with a single image left out (e.g. {', '.join(dropped[:5])})")
    return enrol, probe, notes


# =========================================================================== steps
@dataclass
class StepRun:
    """What a step's body works with: the runner's stage context, its params, the demo data."""

    ctx: Any
    data: DemoData | None

    @property
    def params(self) -> dict:
        return self.ctx.params

    @property
    def out(self) -> Path:
        """The run folder (the demo's ``--out``): result paths are relative to it."""
        return Path(self.ctx.workdir)

    @property
    def progress(self) -> bool:
        return bool(getattr(self.ctx, "progress", True))

    @property
    def cache_dir(self) -> Path:
        """Content-addressed caches shared by the steps (embeddings, D-MAD features)."""
        return self.out / "cache"

    @property
    def seed(self) -> int:
        return int(self.params.get("seed", 0))

    def echo(self, msg: str) -> None:
        echo(self.ctx, msg)

    def rel(self, path: str | Path) -> str:
        """The final location of ``path`` (written inside the running stage's folder),
        relative to the run folder, e.g. ``generate/morphs/landmark/manifest.csv``."""
        p = Path(path)
        try:
            inside = p.relative_to(self.ctx.stage_dir)
        except ValueError:
            return p.relative_to(self.out).as_posix()
        return (Path(self.ctx.final_dir).relative_to(self.out) / inside).as_posix()

    def resumable(self, name: str) -> Path:
        """A folder for per-item work that survives a failed or interrupted run of this stage
        (the runner's ``cache_dir``); :func:`publish` moves it into an output when done."""
        d = Path(self.ctx.cache_dir) / name
        d.mkdir(parents=True, exist_ok=True)
        return d


def echo(ctx, msg: str) -> None:
    """A progress line on stderr (and in the stage's log)."""
    print(msg, file=sys.stderr, flush=True)
    log = getattr(ctx, "log", None)
    if log is not None:
        log.info("%s", msg.strip())


def publish(src: Path, dst: Path) -> Path:
    """Move the finished folder ``src`` to the (empty) output folder ``dst``."""
    import os
    import shutil

    dst = Path(dst)
    if dst.is_dir() and not any(dst.iterdir()):
        dst.rmdir()
    if dst.exists():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
    return dst


def run_step(ctx, step: str, body: Callable[[StepRun], dict], *,
             earlier_seconds: Callable[[dict], float] | None = None) -> dict:
    """Run a step's ``body`` on the demo data (inputs ``images`` and ``data`` of the data stage,
    when the stage has them) and write ``status.json`` (output ``status``); returns the status
    without its result.
    :class:`StepSkipped` gives status ``skipped`` with the reason; other exceptions propagate
    (the stage fails). ``earlier_seconds(result)``: time spent on this step by earlier stages of the
    pipeline (the segmentation study's own stages), added to the step's ``seconds``."""
    from madpad.io import atomic_write_json

    data = DemoData.read(ctx.inputs["images"], ctx.inputs["data"]) if "images" in ctx.inputs else None
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    try:
        status: dict[str, Any] = {"step": step, "status": "ok", "result": body(StepRun(ctx, data))}
    except StepSkipped as exc:
        status = {"step": step, "status": "skipped", "reason": str(exc)}
        echo(ctx, f"      skipped: {exc}")
    seconds = time.perf_counter() - t0
    if earlier_seconds is not None and status["status"] == "ok":
        seconds += float(earlier_seconds(status["result"]))
    status.update(seconds=round(seconds, 1), started=started)
    atomic_write_json(ctx.outputs["status"], status)
    return {k: v for k, v in status.items() if k != "result"}


def read_status(path: str | Path) -> dict | None:
    """A step's ``status.json`` (None when missing or unreadable)."""
    p = Path(path)
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def needs_status(run: StepRun, step: str) -> dict:
    """The ``status.json`` of the earlier ``step`` this one reads (input of the same name);
    :class:`StepSkipped` when that step was skipped."""
    st = read_status(run.ctx.inputs[step])
    if st is None or st.get("status") != "ok":
        why = (st or {}).get("reason") or "it did not finish"
        raise StepSkipped(f"needs the outputs of step {step!r}, which was skipped: {why}")
    return st

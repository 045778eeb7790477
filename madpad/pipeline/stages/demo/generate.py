"""Demo step 1, stage ``generate``: landmark morphs (full and spliced) of same-gender pairs of the
enrolment images, chosen inside the subject-disjoint train/test split; with ``dcmorph`` params
also DCMorph diffusion morphs of the same pairs.

inputs: ``images``, ``data`` (the data stage). params: ``pairs``, ``seed``, ``dcmorph`` (None, or
the options of :func:`madpad.morph.get_morph_method` ``"dcmorph"``: ``base_model``,
``ip_adapter``, ``face_encoder``, ``steps``, ``device``). outputs: ``morphs/`` (``pairs.csv`` and
``<method>/`` with the images, ``manifest.csv``, ``ATTRIBUTION.md``), ``status``.
Morphs made before an interruption are kept and reused by the next run.
"""

from __future__ import annotations

from madpad.errors import UsageError
from madpad.pipeline.stages.demo.common import (
    LANDMARK_METHODS,
    SPLIT_NAMES,
    DemoData,
    StepRun,
    publish,
    run_step,
)


def generate(ctx) -> dict:
    return run_step(ctx, "generate", _generate)


def morph_methods(params: dict) -> list[str]:
    """The attack families of this run: the landmark methods, and DCMorph when configured."""
    return list(LANDMARK_METHODS) + (["dcmorph"] if params.get("dcmorph") else [])


def morph_generator(method: str, dcmorph: dict | None = None):
    from madpad.morph import get_morph_method

    if method == "dcmorph":
        return get_morph_method("dcmorph", **dict(dcmorph or {}))
    return get_morph_method(method)


def select_pairs(data: DemoData, *, n_pairs: int, seed: int) -> tuple[list, list]:
    """Same-gender pairs of enrolment images, chosen inside each split (train/test) so that every
    morph's contributors stay on one side of the subject-disjoint split. Without gender
    information, random pairs. Raises :class:`UsageError` when no pair can be formed."""
    from madpad.morph.pairs import random_pairs, same_gender_pairs

    splits = data.splits(seed)
    notes = []
    have_gender = all(data.gender(s) for s in data.subjects)
    if not have_gender:
        notes.append("no gender for every subject: pairs are random (not same-gender)")
    n_train = (n_pairs + 1) // 2
    wanted = {"train": n_train, "test": n_pairs - n_train}
    pairs = []
    for k, name in enumerate(SPLIT_NAMES):
        recs = [r for r in data.enrolment if r.subject in splits[name]]
        if wanted[name] == 0 or len(recs) < 2:
            continue
        fn = same_gender_pairs if have_gender else random_pairs
        got = fn(recs, n_pairs=wanted[name], seed=seed + k)
        if len(got) < wanted[name]:
            notes.append(f"{name} split: only {len(got)} of {wanted[name]} pairs possible "
                         f"({len(recs)} subjects, one pair per subject pair)")
        pairs += got
    if not pairs:
        raise UsageError("no morph pairs could be formed (too few subjects of the same gender in a split)")
    return pairs, notes


def _generate(run: StepRun) -> dict:
    from madpad.morph.batch import requests_from_pairs, run_morph_job, write_pairs_csv

    p = run.params
    pairs, notes = select_pairs(run.data, n_pairs=int(p["pairs"]), seed=run.seed)
    requests = requests_from_pairs(pairs)
    work = run.resumable("morphs")
    write_pairs_csv(work / "pairs.csv", requests)
    split_of = {s: n for n, ss in run.data.splits(run.seed).items() for s in ss}
    final = run.ctx.final_dir / "morphs"
    jobs = {}
    for method in morph_methods(p):
        gen = morph_generator(method, p.get("dcmorph"))
        run.echo(f"      {method}: {len(requests)} morph(s) -> {final / method}")
        jobs[method] = run_morph_job(requests, gen, work / method, method=method, seed=run.seed, fmt="jpg",
                                     quality=95, progress=run.progress)
    out = publish(work, run.ctx.outputs["morphs"])
    methods = {m: {"requested": job.total, "made": job.made, "reused": job.skipped, "failed": job.failed,
                   "failures": [{"id": i, "error": e} for i, e in job.failures[:20]],
                   "manifest": run.rel(out / m / job.manifest.name), "seconds": round(job.seconds, 1)}
               for m, job in jobs.items()}
    return {"pairs": len(requests), "pairs_csv": run.rel(out / "pairs.csv"),
            "pairs_per_split": {n: sum(split_of[r.subject_a] == n for r in requests) for n in SPLIT_NAMES},
            "methods": methods, "notes": notes}


def read_morphs(run: StepRun) -> dict:
    """method -> MorphRecords of the generate step (inputs ``generate``, its status, and ``morphs``)."""
    from pathlib import Path

    from madpad.data import load_morphs
    from madpad.pipeline.stages.demo.common import StepSkipped, needs_status

    gen = needs_status(run, "generate")
    folder = Path(run.ctx.inputs["morphs"])
    out = {}
    for method in gen["result"]["methods"]:
        f = folder / method / "manifest.csv"
        if not f.is_file():
            raise StepSkipped(f"needs the generate step's morphs ({f} is missing): add 'generate' to --steps")
        out[method] = list(load_morphs(f))
    return out
